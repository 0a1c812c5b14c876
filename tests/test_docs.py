"""The docs say what the code does: cited tests exist, the CLI help shown is the real one,
every page of the toctree and every module of the package is in the docs.

The Sphinx build itself (warnings as errors) runs in CI: `make docs`.
"""

import re
from pathlib import Path

import pytest

import bayes_sarcoma as bs
from bayes_sarcoma.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MY_PAGES = [
    "getting_started",
    "model",
    "parameterisations",
    "data",
    "validation",
    "api",
    "simulator",
]


def cited_test_names():
    return {
        m
        for path in (ROOT / "tests").rglob("test_*.py")
        for m in re.findall(r"^def (test_\w+)", path.read_text(), flags=re.M)
    }


@pytest.mark.parametrize("page", MY_PAGES)
def test_every_cited_test_exists(page):
    text = (DOCS / f"{page}.md").read_text()
    cited = set(re.findall(r"`(?:tests/(?:\w+/)?test_\w+\.py::)?(test_\w+)`", text))
    assert not cited - cited_test_names(), f"{page}.md cites tests that do not exist"


def test_parameterisation_table_rows_are_all_tested():
    text = (DOCS / "parameterisations.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    body = rows[2:]  # header, then our own row
    assert len(body) >= 9
    for row in body:
        assert re.search(r"`test_\w+`", row), row


def test_cli_help_in_getting_started_is_current(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # argparse wraps to the terminal's width
    assert cli.main(["--help"]) == 0
    real = capsys.readouterr().out
    page = (DOCS / "getting_started.md").read_text()
    shown = page.split("$ bayes-sarcoma --help\n", 1)[1].split("```", 1)[0]
    assert shown.strip() == real.split("\noptions:")[0].strip()


def test_toctree_pages_exist_or_are_optional():
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_conf", DOCS / "conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    index = (DOCS / "index.md").read_text()
    trees = re.findall(r"```\{toctree\}\n(.*?)```", index, flags=re.S)
    pages = [line for tree in trees for line in tree.splitlines() if line and ":" not in line]
    for page in pages:
        assert (DOCS / f"{page}.md").exists() or page in conf.OPTIONAL_PAGES, page
    for page in MY_PAGES:
        assert page in pages


def test_api_reference_covers_every_module():
    package = ROOT / "bayes_sarcoma"
    modules = {
        ".".join(p.relative_to(package).with_suffix("").parts)
        for p in package.rglob("*.py")
        if p.stem != "__init__" and not p.stem.startswith("_")
    }
    documented = set(
        re.findall(r"automodule:: bayes_sarcoma\.([\w.]+)", (DOCS / "api.md").read_text())
    )
    assert modules - documented == set(), "add these modules to docs/api.md"


def test_api_page_lists_the_top_level_names():
    found = re.search(r"Top-level names: (.*?); each is documented", (DOCS / "api.md").read_text())
    assert found, "docs/api.md lost its list of top-level names"
    assert re.findall(r"`([^`]+)`", found.group(1)) == list(bs.__all__)
