# bayes_sarcoma: `make demo` and `make test` build .venv/ themselves on a fresh machine.
SHELL := /bin/sh
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Tests and the demo run on all cores; keep BLAS from oversubscribing them.
export OMP_NUM_THREADS ?= 1
export PYTHONHASHSEED ?= 0

.PHONY: help venv demo test test-fast test-slow lint format docs bench clean

help:
	@echo "make demo       build .venv and run the NETSARC-style analysis end to end"
	@echo "make test       build .venv and run the whole test suite (slow tests in their small CI versions)"
	@echo "make test-slow  also run the slow tests (NETSARC-size recovery, full SBC)"
	@echo "make lint       ruff check + format check"
	@echo "make docs       build the Sphinx docs with warnings as errors"
	@echo "make bench      run the benchmarks in tests/benchmarks/"

$(STAMP): pyproject.toml scripts/find-python
	@set -e; py=$$(scripts/find-python); echo "using $$py ($$($$py --version))"; \
	  [ -x $(PY) ] || $$py -m venv $(VENV); \
	  $(PY) -m pip install --quiet --upgrade pip; \
	  $(PY) -m pip install --quiet -e ".[dev,docs]"
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/bayes-sarcoma demo --out out/demo

test: $(STAMP)
	$(PY) -m pytest -m "not slow" --timeout=900 -q

test-slow: $(STAMP)
	$(PY) -m pytest --timeout=3600 -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

docs: $(STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

bench: $(STAMP)
	$(PY) tests/benchmarks/fit_netsarc.py

clean:
	rm -rf $(VENV) docs/_build out .pytest_cache .ruff_cache
