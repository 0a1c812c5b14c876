"""Every docstring example of the package runs and prints what it says (``doctest``).

Examples that need a fit are marked ``+SKIP`` in the source; the rest are checked here, so
a changed output or a renamed function breaks the suite, not a reader.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import bayes_sarcoma

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(bayes_sarcoma.__path__, prefix="bayes_sarcoma.")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(verbose=False, optionflags=doctest.ELLIPSIS)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (above)"
