"""Posterior predictive checks for censored data: KM machinery, censoring draws, coverage."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import xarray as xr
from conftest import FAST
from registry_factory import clustered_table
from scipy import stats

import bayes_sarcoma as bs
from bayes_sarcoma.checks import ppc
from bayes_sarcoma.math import weibull
from bayes_sarcoma.report import plots

# The shared small fits of conftest are too short to pass diagnose(); fit() says so
# with a SamplerWarning, which these checks of other things do not need to see.
pytestmark = pytest.mark.filterwarnings("ignore::bayes_sarcoma.model.hierarchical.SamplerWarning")


# -- the machinery -------------------------------------------------------------------------
def test_vectorised_kaplan_meier_equals_scipy_with_ties():
    rng = np.random.default_rng(0)
    time = rng.integers(1, 30, size=(6, 250)).astype(float)  # many ties
    event = rng.uniform(size=(6, 250)) < 0.6
    grid = np.concatenate([[0.0], np.linspace(0.5, 35, 80), np.arange(1.0, 30.0)])
    grid.sort()
    ours = ppc.km_curves(time, event, grid)
    assert ours.shape == (6, grid.size)
    for row in range(6):
        sf = stats.ecdf(stats.CensoredData.right_censored(time[row], ~event[row])).sf
        np.testing.assert_allclose(ours[row], sf.evaluate(grid), atol=1e-14)
    # Leading dims are kept; the last patient having the event takes S to 0.
    np.testing.assert_allclose(
        ppc.km_curves(time.reshape(2, 3, 250), event.reshape(2, 3, 250), grid).reshape(6, -1),
        ours,
    )
    assert ppc.km_curves([1.0, 2.0], [1, 1], [3.0])[0] == 0.0


def test_kaplan_meier_by_stratum_equals_each_stratum_alone():
    """One sort for every stratum gives each stratum's own curves, to the last bit."""
    rng = np.random.default_rng(2)
    time = rng.integers(1, 40, size=(5, 300)).astype(float)  # ties within and across strata
    event = rng.uniform(size=(5, 300)) < 0.5
    grid = np.linspace(0.0, 45.0, 61)
    group = rng.integers(0, 3, 300)
    masks = [np.ones(300, bool), group == 0, group == 1, group == 2]
    together = ppc.km_curves_by_stratum(time, event, grid, masks)
    assert together.shape == (4, 5, grid.size)
    for mask, curves in zip(masks, together, strict=True):
        for row in range(5):
            sf = stats.ecdf(stats.CensoredData.right_censored(time[row, mask], ~event[row, mask]))
            np.testing.assert_allclose(curves[row], sf.sf.evaluate(grid), atol=1e-14)
        np.testing.assert_array_equal(curves, ppc.km_curves(time[:, mask], event[:, mask], grid))


def test_imputed_censoring_times_follow_the_censoring_distribution():
    rng = np.random.default_rng(1)
    n = 20_000
    t = rng.exponential(60.0, n)
    c = rng.uniform(0.0, 100.0, n)  # independent censoring, known distribution
    time, event = np.minimum(t, c), (t <= c).astype(int)
    drawn = ppc.censoring_times(time, event, rng, 3)
    censored = event == 0
    np.testing.assert_array_equal(
        drawn[:, censored], np.broadcast_to(time[censored], (3, censored.sum()))
    )
    assert (drawn[:, ~censored] >= time[~censored]).all()
    # The imputed times are drawn from the *estimated* censoring distribution, so a KS
    # p-value would be too strict; the sup distance must be of the estimator's order
    # (~1 / sqrt(n)), far below the error of ignoring C > t or of G itself.
    for row in drawn:
        assert np.isfinite(row).mean() > 0.999
        # Observed and imputed censoring times together: a sample of Uniform(0, 100).
        assert stats.kstest(row, stats.uniform(0, 100).cdf).statistic < 0.02
        # Given C > t, C is Uniform(t, 100) for each patient with an event.
        u = (row[~censored] - time[~censored]) / (100.0 - time[~censored])
        assert stats.kstest(u, "uniform").statistic < 0.025
    given = ppc.censoring_times(time, event, rng, 2, potential=np.full(n, 120.0))
    assert (given[:, ~censored] == 120.0).all()
    with pytest.raises(ValueError, match="before the patient's event"):
        ppc.censoring_times(time, event, rng, 1, potential=np.zeros(n))


def test_strata_are_read_back_from_the_design(os_model_and_fit, registry_small):
    _, dt = os_model_and_fit
    strata = ppc.strata_from_design(dt, ["expert_center", "margin"])
    df = registry_small
    assert strata["expert_center=1"].sum() == df.expert_center.sum()
    for level in ("R0", "R1", "R2", "Rx"):
        np.testing.assert_array_equal(strata[f"margin={level}"], (df.margin == level).to_numpy())
    with pytest.raises(ValueError, match="continuous"):
        ppc.strata_from_design(dt, ["age"])


# -- the check on data simulated from the model ------------------------------------------------
def test_predictive_bands_cover_the_observed_km_when_the_model_is_true(os_model_and_fit, tmp_path):
    _, dt = os_model_and_fit  # OS of the simulator is exactly the fitted model
    check = ppc.km_check(dt, num_draws=400, random_seed=1)
    coverage = check.coverage()
    assert list(coverage.index) == [
        "all",
        "expert_center=1",
        "expert_center=0",
        "margin=R0",
        "margin=R1",
        "margin=R2",
        "margin=Rx",
    ]
    assert coverage["all"] >= 0.9, coverage
    assert (coverage >= 0.8).all(), coverage
    ds = check.data
    assert ds["replicated"].dims == ("sample", "stratum", "time")
    assert ds.sizes["sample"] == 300  # every other draw of 2 x 300
    assert (ds["lower"] <= ds["median"]).all()
    assert (ds["median"] <= ds["upper"]).all()
    table = check.table()
    assert table.loc["all", "patients"] == 1500
    assert 0.02 < table.loc["all", "p(60)"] < 0.98
    fig = plots.plot_km_check(check, path=tmp_path / "km.png")
    assert (tmp_path / "km.png").stat().st_size > 10_000
    assert fig.axes[0].get_ylabel() == "survival probability"
    assert fig.axes[0].get_xlabel() == "months since surgery"


def shape_two_table():
    """A clustered table simulated from the model with Weibull shape 2 (far from 1)."""
    return clustered_table(shape=2.0, sd=0.3, random_seed=11, intercept=-8.0, censor=(10.0, 60.0))


def test_a_misspecified_model_fails_the_check():
    df = shape_two_table()
    model = bs.HierarchicalWeibull(
        time="followup_years",
        event="died",
        cluster="site",
        terms=["dose_mg", "arm"],
        baseline="exponential",
    )
    dt = model.fit(df, random_seed=1, **FAST)
    check = ppc.km_check(dt, by=["arm"], random_seed=1)
    assert check.coverage()["all"] < 0.6


# -- ArviZ -------------------------------------------------------------------------------------
def test_posterior_predictive_group_works_with_arviz_plots(os_model_and_fit, tmp_path):
    _, dt = os_model_and_fit
    tree = ppc.add_posterior_predictive(dt, num_draws=200, random_seed=2)
    pp = tree["posterior_predictive"]["time"]
    assert pp.dims == ("chain", "draw", "patient")
    assert pp.sizes["chain"] * pp.sizes["draw"] <= 200
    assert (pp > 0).all()
    assert "posterior_predictive" not in dt.children  # the fit is not modified
    # Each patient's predicted time is below its own median half of the time.
    fi = ppc.fitted_inputs(dt, num_draws=200)
    below = pp.to_numpy().reshape(fi.n_samples, -1) <= weibull.median(fi.eta(), fi.shape[:, None])
    assert below.mean() == pytest.approx(0.5, abs=0.01)
    fig = plots.plot_ppc_censored(tree, path=tmp_path / "ppc.png")
    assert (tmp_path / "ppc.png").exists()
    assert fig.axes[0].get_xlim()[1] == pytest.approx(float(dt.observed_data["time"].max()))


# -- the fitted patients' linear predictor ---------------------------------------------------
def test_fitted_inputs_reproduce_the_stored_log_likelihood(os_model_and_fit, registry_small):
    """eta read back from the DataTree gives the sampler's pointwise log-likelihood."""
    margin_dt = bs.HierarchicalWeibull("OS", effect_modifier="margin").fit(
        registry_small, random_seed=4, **FAST
    )
    for dt in (os_model_and_fit[1], margin_dt):
        fi = ppc.fitted_inputs(dt, num_draws=50)
        obs = dt.observed_data
        ll = weibull.log_likelihood(
            obs["time"].to_numpy(), obs["event"].to_numpy(), fi.eta(), fi.shape[:, None]
        )
        sample = {"chain": ("sample", fi.chain), "draw": ("sample", fi.draw)}
        stored = dt.log_likelihood["time"].sel(
            {k: xr.DataArray(v, dims=d) for k, (d, v) in sample.items()}
        )
        np.testing.assert_allclose(ll, stored.to_numpy(), rtol=1e-10, atol=1e-10)
    check = ppc.km_check(margin_dt, num_draws=100, random_seed=1)
    assert "margin=R2" in check.coverage().index
