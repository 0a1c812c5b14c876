"""analysis_report: one self-contained HTML file with every section and the right numbers."""

import base64
import fnmatch
import json
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
from bayes_sarcoma.inference.diagnose import fit_diagnosis
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
    cell = headline.loc["expert HR, median (95% CrI)", "OS"]
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
    # main fits: R-hat and ESS pass ("CHECK" when the rank test at 1% flags a parameter)
    assert headline.loc["sampling diagnostics"].str.match(r"^(OK|CHECK)").all()
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
    assert "200 of the 600 posterior draws (thinned evenly within chains)" in again.html
    for name in ("weibull", "expert x margin"):
        assert again.fits["OS"][name][1] is report.fits["OS"][name][1]
    pd.testing.assert_frame_equal(
        again.tables["effect_by_margin_OS"], report.tables["effect_by_margin_OS"]
    )
    assert "OS expert x margin" in again.html  # the settings line names the given fits
    with pytest.raises(ValueError, match="unknown candidates"):
        analysis_report(registry_small, tmp_path / "x.html", fits={"OS": {"cox": None}})


def test_one_core_gives_the_same_report(report, registry_small, tmp_path):
    """Sections computed here or in the worker give the same tables, figures and HTML."""
    settings = {k: v for k, v in FAST.items() if k != "progressbar"}
    alone = analysis_report(  # the fits are given: nothing is fitted again
        registry_small,
        tmp_path / "report.html",
        endpoints=("OS",),
        candidates=("weibull", "expert x margin"),
        fits=report.fits,
        random_seed=5,
        cores=1,
        **settings,
    )
    assert {t.where for t in report.timings.values()} >= {"here", "worker"}
    assert {t.where for t in alone.timings.values()} <= {"here", ""}
    assert list(alone.tables) == list(report.tables)
    for name, table in report.tables.items():
        pd.testing.assert_frame_equal(alone.tables[name], table)
    assert list(alone.figures) == list(report.figures)
    assert alone.figures == report.figures
    # all but the time of writing and the list of given fits (the margin fit is given here)
    strip = re.compile(r"Generated [^<]*|\(fits given with their own settings[^)]*\)")
    assert strip.sub("", alone.html) == strip.sub("", report.html)


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


# -- the review of the demo's report (issue: verdicts, intervals, thinning, priors ...) --------
INTERVAL = re.compile(r"-?\d+\.\d+ \(-?\d+\.\d+ to -?\d+\.\d+\)")


@pytest.fixture(scope="module")
def single(tmp_path_factory, registry_small, os_model_and_fit):
    """A report of one given fit and nothing else: no comparison, thinned standardization."""
    folder = tmp_path_factory.mktemp("single")
    return analysis_report(  # fits nothing, so nothing to warn about
        registry_small,
        folder / "report.html",
        endpoints=("OS",),
        candidates=("weibull",),
        fits={"OS": os_model_and_fit},
        random_seed=5,
        num_draws=100,
    )


@pytest.fixture(scope="module")
def trial_arm_report(tmp_path_factory, registry_small):
    """A report whose main fit's treatment varies within centres (randomised ``chemo``)."""
    rng = np.random.default_rng(0)
    df = registry_small.assign(chemo=rng.permutation(np.arange(len(registry_small)) % 2))
    model = bs.HierarchicalWeibull("OS", terms=["expert_center", "age", "chemo"], treatment="chemo")
    dt = model.fit(df, random_seed=2, **FAST)
    return analysis_report(
        df,
        tmp_path_factory.mktemp("trial_arm") / "report.html",
        endpoints=("OS",),
        candidates=("weibull",),
        fits={"OS": (model, dt)},
        random_seed=5,
        num_draws=100,
    )


def test_a_report_of_a_patient_level_treatment_names_it_and_flags_no_centre(trial_arm_report):
    tables, html = trial_arm_report.tables, trial_arm_report.html
    assert "chemo HR, median (95% CrI)" in tables["headline"].index
    assert "survival at 60 months, chemo = 1" in tables["headline"].index
    assert "expert HR, median (95% CrI)" not in tables["headline"].index
    profile = tables["centres_OS"]
    assert profile.attrs["treatment"] is None
    assert "chemo" not in profile.columns
    centres = html.split('id="centres"')[1]
    assert "<th>expert</th>" not in centres
    assert "The treatment (chemo) varies within centres" in html
    assert "<th>chemo = 1</th>" in html.split('id="standardized"')[1]


def _tables(html):
    return re.findall(r"<table.*?</table>", html, flags=re.DOTALL)


def test_every_table_with_intervals_states_their_level(report):
    tables = [t for t in _tables(report.html) if INTERVAL.search(t)]
    assert len(tables) >= 5  # headline, hazard ratios, standardized, margin, centres
    for table in tables:
        head = re.search(r"<thead>.*?</thead>", table, flags=re.DOTALL).group(0)
        body = re.sub(r"<[^>]+>", " ", table)
        assert "95% CrI" in head or "95% CrI" in body, table[:300]


def test_tables_have_one_header_row_and_no_empty_header_cells_but_the_corner(report):
    for table in _tables(report.html):
        head = re.search(r"<thead>(.*?)</thead>", table, flags=re.DOTALL).group(1)
        assert head.count("<tr") == 1, head
        cells = re.findall(r"<th[^>]*>(.*?)</th>", head, flags=re.DOTALL)
        assert all(c.strip() for c in cells[1:]), cells


def test_the_headline_and_the_demo_give_the_same_numbers(report, os_model_and_fit, registry_small):
    from bayes_sarcoma.cli import demo

    _, dt = os_model_and_fit
    truth = registry_small.attrs["truth"]
    headline = report.tables["headline"]["OS"]
    hr = demo._hazard_ratio_row("os", dt, truth)
    assert hr["expert HR, median (95% CrI)"] == headline["expert HR, median (95% CrI)"]
    assert hr["P(HR < 1)"] == headline["P(HR < 1)"]
    contrasts = demo._standardized_row("os", dt, registry_small, truth)
    shared = [k for k in contrasts if k in headline.index]
    assert len(shared) == 4  # the three contrasts and the true difference
    for key in shared:
        assert contrasts[key] == headline[key].removesuffix(" *"), key


def test_thinning_is_stated_where_it_happens(report, single):
    assert "standardized survival: all 600 posterior draws of each main fit" in report.html
    assert "100 of the 600 posterior draws (thinned evenly within chains)" in single.html
    # km_check's 500 draws thin 600 by every 2nd draw: 300, and the report says so.
    assert "posterior predictive checks: 300 of the 600 posterior draws" in report.html
    assert (
        "PSIS-LOO and leave-centre-out: OS: weibull all 600; expert x margin all 600 posterior "
        "draws (every k-th draw of each chain)"
    ) in report.html


def test_the_best_model_cell_says_why_it_is_empty(single):
    assert single.tables["headline"].loc["best model (PSIS-LOO)", "OS"] == (
        "one model fitted: no comparison"
    )
    assert "one model fitted" in single.html


def test_methods_list_each_fits_priors(report, os_model_and_fit):
    from bayes_sarcoma.report import methods

    methods_html = report.html.split('id="methods"')[1]
    for text in (
        "intercept",
        "Normal(0, 1.25)",
        "Weibull shape: LogNormal(0, 0.35)",
        "log hazard ratios: Normal(0, 2.5) per SD of continuous terms (age: SD",
        "SD of the centre effects (log hazard): HalfNormal(0.5)",
        "OS expert x margin",
        "(interaction_sd): HalfNormal(0.25)",
    ):
        assert text in methods_html, text
    _, dt = os_model_and_fit
    spec = json.loads(dt.attrs["model"])
    spec["priors"] = {**spec["priors"], "center_sd": {"dist": "HalfNormal", "sigma": 0.3}}
    other = dt.copy()
    other.attrs = {**dt.attrs, "model": json.dumps(spec)}
    lines = methods.priors_text({"OS": {"weibull": dt, "strict": other}})
    assert len(lines) == 2
    assert "OS strict:" in lines[1]
    assert "HalfNormal(0.3)" in lines[1]


def test_continuous_terms_per_clinical_unit_keep_their_interval(report, os_model_and_fit):
    from bayes_sarcoma.report.plots import hazard_ratios_per_unit

    _, dt = os_model_and_fit
    table = report.tables["hazard_ratios"]
    hr_col = "OS HR, median (95% CrI)"
    for label, term, k in (
        ("age (per 10 years)", "age", 10),
        ("tumor_size_cm (per 5 cm)", "tumor_size_cm", 5),
    ):
        cell = table.loc[label, hr_col]
        median, lower, upper = map(float, re.findall(r"\d+\.\d+", cell))
        assert lower < median < upper  # not 1.02 (1.02 to 1.02)
        beta = dt.posterior["beta"].sel(term=term)
        assert median == pytest.approx(float(np.exp(k * beta).median()), abs=0.006)
    plain = effects.hazard_ratios(dt).loc["expert_center"]
    scaled = hazard_ratios_per_unit(dt).loc["expert_center"]
    assert scaled["median"] == plain["median"]
    assert scaled["per"] == 1.0


def test_the_rank_plots_test_and_the_verdict_agree(report, os_model_and_fit):
    from bayes_sarcoma.report import analysis, plots

    _, dt = os_model_and_fit
    p_values, alpha = plots.rank_test(dt)
    assert set(p_values) == {"intercept", "shape", "center_sd", "beta[expert_center]"}
    texts = [t.get_text() for ax in plots.plot_trace_rank(dt).axes for t in ax.texts]
    labelled = [t for t in texts if t.startswith("rank test p = ")]
    assert len(labelled) == 4
    assert not any(t.startswith("p=") for t in texts)
    verdict = analysis._verdict(True, {"center_sd": 0.001}, alpha)
    assert verdict.startswith("CHECK")
    assert "center_sd (p = 0.001)" in verdict
    assert analysis._verdict(True, {}, alpha) == "OK"
    cell = report.tables["headline"].loc["sampling diagnostics", "OS"]
    flagged = any(p < alpha for p in p_values.values())
    assert cell.startswith("OK") == (fit_diagnosis(dt).ok and not flagged)


def test_the_margin_legend_sits_below_the_data(os_model_and_fit, report):
    from bayes_sarcoma.report.plots import legend_below

    _, dt = report.fits["OS"]["expert x margin"]
    fig = legend_below(effects.plot_effect_by_modifier(dt))
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert legend is not None
    assert legend.get_window_extent().y1 <= ax.get_window_extent().y0


def test_the_centre_section_names_ratio_and_p_above(report):
    html = report.html.split('id="centres"')[1]
    assert "HR vs typical centre, median (95% CrI)" in html
    assert "P(HR &gt; 1.2)" in html
    assert "<th>expert</th>" in html  # the centre-level treatment flags centres
    assert "The expert-centre effect is a centre-level attribute" in report.html
    assert "smooth" in html
    assert "Poisson control limits" in html
    profile = report.tables["centres_OS"]
    assert {"ratio", "p_above"} <= set(profile.columns)


SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "screenshot_report.py"


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs /usr/bin/chromium")
def test_the_report_renders_in_headless_chromium_without_console_errors(single, tmp_path):
    import subprocess
    import sys

    def shoot(page, png, *extra):
        return subprocess.run(
            [sys.executable, str(SCRIPT), str(page), str(png), *extra],
            capture_output=True,
            text=True,
            timeout=180,
        )

    done = shoot(single.path, tmp_path / "first.png")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "first.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "first.png").stat().st_size > 20_000
    done = shoot(single.path, tmp_path / "centres.png", "--section", "centres", "--height", "1200")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "centres.png").stat().st_size > 20_000
    broken = tmp_path / "broken.html"
    broken.write_text("<html><head></head><body><script>notDefined();</script></body></html>")
    done = shoot(broken, tmp_path / "broken.png")
    assert done.returncode == 1
    assert "Uncaught ReferenceError" in done.stderr
