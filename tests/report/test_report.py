"""analysis_report: one self-contained HTML file with every section and the right numbers."""

import base64
import fnmatch
import re
import tomllib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from conftest import FAST

import bayes_sarcoma as bs
from bayes_sarcoma.checks import compare
from bayes_sarcoma.predict import effects
from bayes_sarcoma.report.analysis import analysis_report

SECTIONS = (
    "headline",
    "table1",
    "crude",
    "hr",
    "standardized",
    "margin",
    "diagnostics",
    "ppc",
    "comparison",
    "centres",
    "methods",
)

# The shared small fits of conftest are too short to pass diagnose(); fit() says so
# with a SamplerWarning, which these checks of other things do not need to see.
pytestmark = pytest.mark.filterwarnings("ignore::bayes_sarcoma.model.hierarchical.SamplerWarning")


@pytest.fixture(scope="module")
def report(tmp_path_factory, registry_small, os_model_and_fit):
    folder = tmp_path_factory.mktemp("report")
    before = registry_small.copy(deep=True)
    settings = {k: v for k, v in FAST.items() if k != "progressbar"}
    # Short test fits are flagged by diagnose(); the report says so once, at the end.
    with pytest.warns(bs.SamplerWarning, match="Diagnostics section"):
        result = analysis_report(
            registry_small,
            folder / "report.html",
            endpoints=("OS",),
            candidates=("weibull", "expert x margin"),
            fits={"OS": os_model_and_fit},
            random_seed=5,
            figures_dir=folder / "figures",
            num_draws=200,
            **settings,
        )
    pd.testing.assert_frame_equal(registry_small, before)
    return result


def test_the_report_is_one_self_contained_html_file(report):
    html = report.path.read_text(encoding="utf-8")
    assert html == report.html
    assert html.startswith("<!DOCTYPE html>")
    for section in SECTIONS:
        assert f'id="{section}"' in html, section
    # No external resource: every image is an embedded PNG.
    assert not re.search(r'(src|href)="(https?:)?//', html)
    images = re.findall(r'<img src="([^"]+)"', html)
    assert len(images) >= 9
    for uri in images:
        assert uri.startswith("data:image/png;base64,")
        assert base64.b64decode(uri.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(report.figures) == len(set(images))
    for name in ("crude_km", "hazard_ratios_forest", "standardized_OS", "ppc_km_OS", "rank_OS"):
        assert (report.path.parent / "figures" / f"{name}.png").stat().st_size > 5_000
    assert "nan" not in re.sub(r"<[^>]+>", " ", html).lower().split()


def test_the_report_shows_the_fits_numbers(report, os_model_and_fit, registry_small):
    _, dt = os_model_and_fit
    html = report.html
    hr = effects.hazard_ratios(dt, ci_prob=0.95).loc["expert_center"]
    headline = report.tables["headline"]
    assert list(headline.columns) == ["OS"]
    cell = headline.loc["expert HR (95% CrI)", "OS"]
    assert cell == f"{hr['median']:.2f} ({hr['lower']:.2f} to {hr['upper']:.2f})"
    assert cell in html
    assert headline.loc["P(HR < 1)", "OS"] == f"{hr['prob_lt_1']:.3f}"
    # The simulator's truth and the published NETSARC figures sit beside the estimates.
    truth = registry_small.attrs["truth"]["OS"]
    assert headline.loc["true expert HR", "OS"] == f"{np.exp(truth['beta']['expert_center']):.2f}"
    at60 = {
        arm: {float(k): v for k, v in truth["standardized"][arm].items()}[60.0]
        for arm in ("expert", "other")
    }
    true_diff = 100 * (at60["expert"] - at60["other"])
    assert headline.loc["true difference at 60 months", "OS"] == f"{true_diff:.1f} pp"
    outcomes = report.tables["outcomes"].set_index("quantity")
    assert outcomes.loc["LRFS median (KM)", "published expert"] == "60.0"
    assert outcomes.loc["RFS median (KM)", "published other"] == "21.0"
    # Table 1 shows the confounding: expert centres have larger, higher-grade tumours.
    table1 = report.tables["table1"].set_index("quantity")
    size = table1.loc["median tumour size (cm)"]
    assert float(size["expert"]) > float(size["other"])
    # Sections computed from the package's functions.
    assert report.tables["ppc_OS"].loc["all", "patients"] == len(registry_small)
    assert set(report.tables["loo_OS"].index) == {"weibull", "expert x margin"}
    margin = report.tables["effect_by_margin_OS"]
    assert list(margin.index) == ["R0", "R1", "R2", "Rx", "common"]
    assert headline.loc["sampling diagnostics", "OS"].startswith(("OK", "PROBLEMS"))
    assert set(report.fits["OS"]) == {"weibull", "expert x margin"}
    assert report.fits["OS"]["weibull"][1] is dt  # the given fit is used, not refitted


@pytest.mark.slow
def test_full_report_at_netsarc_size(tmp_path):
    df = bs.simulate_registry(random_seed=2026)
    result = analysis_report(df, tmp_path / "netsarc.html", random_seed=1)
    headline = result.tables["headline"]
    assert list(headline.columns) == ["LRFS", "RFS", "OS"]
    assert headline.loc["sampling diagnostics"].str.startswith("OK").all()  # main fits
    for endpoint in ("LRFS", "RFS", "OS"):
        assert result.tables[f"loo_{endpoint}"].index[0] != "exponential"


def test_a_report_from_given_candidate_fits_fits_nothing(
    report, registry_small, tmp_path, monkeypatch
):
    def no_fitting(*args, **kwargs):
        raise AssertionError("the report refitted a model it was given")

    monkeypatch.setattr(compare, "fit_candidates", no_fitting)
    again = analysis_report(
        registry_small,
        tmp_path / "again.html",
        endpoints=("OS",),
        candidates=("weibull",),  # the margin fit is given, so it is reported all the same
        fits=report.fits,
        random_seed=5,
        num_draws=200,
    )
    for name in ("weibull", "expert x margin"):
        assert again.fits["OS"][name][1] is report.fits["OS"][name][1]
    pd.testing.assert_frame_equal(
        again.tables["effect_by_margin_OS"], report.tables["effect_by_margin_OS"]
    )
    assert "OS expert x margin" in again.html  # the settings line names the given fits
    with pytest.raises(ValueError, match="unknown candidates"):
        analysis_report(registry_small, tmp_path / "x.html", fits={"OS": {"cox": None}})


def test_the_templates_are_package_data():
    # An installed wheel holds only the files pyproject.toml names as package data.
    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["bayes_sarcoma"]
    package = root / "bayes_sarcoma"
    templates = sorted((package / "report" / "templates").glob("*"))
    assert templates
    for path in templates:
        name = path.relative_to(package).as_posix()
        assert any(fnmatch.fnmatch(name, p) for p in patterns), name
