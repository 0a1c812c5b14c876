"""Sphinx configuration: pydata-sphinx-theme + MyST (the PyMC / ArviZ convention).

Built with warnings as errors (``make docs``: ``sphinx-build -W --keep-going``). Pages
are MyST Markdown; the API reference is generated from the numpydoc docstrings with
autodoc + napoleon. Nothing is fetched from the network (no intersphinx), so the docs
build offline.
"""

from __future__ import annotations

import re
from pathlib import Path

import bayes_sarcoma

project = "bayes_sarcoma"
author = "bayes_sarcoma developers"
copyright = "2026, bayes_sarcoma developers"
release = bayes_sarcoma.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "scripts", "**/.ipynb_checkpoints"]

# -- MyST ------------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# -- autodoc / napoleon (numpydoc-style docstrings) ------------------------------------------
# Members are listed per module in api.md (`:members:`), not by default: the package's
# automodule would otherwise document every re-exported name a second time.
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_class_signature = "mixed"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_preprocess_types = False

# -- HTML ------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"bayes_sarcoma {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_show_sourcelink = False

# -- pages written by other parts of the project, which may not exist yet --------------------
# The toctree of index.md names every planned page. A page that has not been written yet is
# left out of the toctree (and said so in the build log) instead of failing the build; a
# page of this package's core (not in OPTIONAL_PAGES) that is missing still fails it.
OPTIONAL_PAGES = (
    "reliability",
    "predictions",
    "causal",
    "diagnostics",
    "report",
    "sensitivity",
    "performance",
)


def _drop_missing_pages(app, docname, source):
    if docname != root_doc:
        return
    srcdir = Path(app.srcdir)
    for page in OPTIONAL_PAGES:
        if not (srcdir / f"{page}.md").exists():
            source[0] = re.sub(rf"(?m)^{page}\n", "", source[0])
            from sphinx.util import logging

            logging.getLogger(__name__).info(f"docs: {page}.md is not written yet")


def _reread_index(app, env, added, changed, removed):
    # Which optional pages exist can change between builds while index.md does not:
    # re-read it every time so that an incremental build never keeps a stale toctree.
    return [root_doc]


def setup(app):
    app.connect("source-read", _drop_missing_pages)
    app.connect("env-get-outdated", _reread_index)
