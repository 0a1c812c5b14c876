"""Standardized survival (g-computation): the binned Taylor shortcut against brute force,
medians and RMSTs against root finding and numerical integration, and coverage of the
simulator's true standardized survival."""

import matplotlib
import numpy as np
import pytest
from scipy import integrate

import bayes_sarcoma as bs
from bayes_sarcoma.math import weibull
from bayes_sarcoma.predict import standardize
from bayes_sarcoma.predict import survival as predict
from bayes_sarcoma.predict.standardize import PatientMixture

matplotlib.use("Agg")

TRUTH_TIMES = [12.0, 24.0, 60.0]


@pytest.fixture(scope="module")
def fit(os_model_and_fit):
    return os_model_and_fit[1]


def brute_force(dt, data, times, value, center="new", num_draws=None):
    """Mean over patients of every patient's survival with the treatment set to ``value``."""
    s = predict.predict_survival(
        dt, data.assign(expert_center=value), times, center=center, num_draws=num_draws
    )
    return s.mean("patient")


# -- the Stirling numbers of the derivatives of g --------------------------------------------
def test_stirling_numbers_of_the_second_kind():
    s2 = standardize._stirling2(11)
    assert s2.shape == (12, 12)
    assert s2.dtype == np.float64
    assert s2[0, 0] == 1.0
    assert s2[5, 2] == 15.0
    assert s2[7, 3] == 301.0
    assert s2[10, 3] == 9330.0
    assert s2[10, 5] == 42525.0
    assert s2[11, 5] == 246730.0
    n = np.arange(1, 12)
    np.testing.assert_array_equal(s2[n, n], 1.0)
    np.testing.assert_array_equal(s2[n, 0], 0.0)
    np.testing.assert_array_equal(s2[n, 1], 1.0)
    assert not np.triu(s2, 1).any()  # S(n, k) = 0 for k > n
    # Row sums are the Bell numbers.
    bell = [1, 1, 2, 5, 15, 52, 203, 877, 4140, 21147, 115975, 678570]
    np.testing.assert_array_equal(s2.sum(axis=1), bell)
    # The module's table covers the Taylor terms' derivatives.
    np.testing.assert_array_equal(
        standardize._S2, standardize._stirling2(standardize.TAYLOR_TERMS + 1)
    )


# -- the shortcut is exact -----------------------------------------------------------------
@pytest.mark.parametrize("spread", [0.3, 1.5, 4.0])
def test_patient_mixture_equals_the_direct_mean(spread):
    rng = np.random.default_rng(1)
    eta = rng.normal(-2.0, spread, (3, 2000))
    eta[0, :5] = [-25.0, 8.0, 8.0, -3.0, 0.0]  # extreme patients
    mix = PatientMixture(eta)
    s = np.linspace(-12, 6, 40)[None, :].repeat(3, axis=0)
    x = s[..., None] + eta[:, None, :]
    g = np.exp(-np.exp(x))
    value, slope = mix.survival_and_derivative(s)
    np.testing.assert_allclose(value, g.mean(-1), rtol=0, atol=2e-12)
    np.testing.assert_allclose(slope, (-np.exp(x) * g).mean(-1), rtol=0, atol=2e-12)
    # RMST: tau * r(shape log tau + eta) is the closed-form RMST to tau.
    shape = np.array([0.6, 1.0, 1.7])
    tau = np.array([1.0, 12.0, 60.0])
    xr_ = shape[:, None] * np.log(tau)[None, :]
    direct = weibull.restricted_mean(
        tau[None, :, None], eta[:, None, :], shape[:, None, None]
    ).mean(-1)
    np.testing.assert_allclose(tau * mix.restricted(xr_, shape), direct, rtol=1e-11)


def test_matches_brute_force_g_computation(fit, registry_small):
    times = [0.0, 6.0, 12.0, 24.0, 60.0, 120.0]
    for center in ("new", "typical"):
        std = standardize.standardized_survival(
            fit, registry_small, times, center=center, num_draws=20
        )
        for arm, value in (("treated", True), ("control", False)):
            direct = brute_force(fit, registry_small, times, value, center, num_draws=20)
            np.testing.assert_allclose(std[arm], direct, rtol=0, atol=1e-12)
        np.testing.assert_allclose(std["treated"].sel(time=0.0), 1.0, atol=1e-14)


def curve(eta, offsets, shape, w):
    """The standardized survival of one draw, directly: mean over patients and nodes."""

    def s(t):
        h = np.exp(eta[:, None] + offsets[None, :]) * t**shape
        return float((np.exp(-h) @ w).mean())

    return s


def test_median_and_rmst_of_the_standardized_curve(fit, registry_small):
    std = standardize.standardized_survival(fit, registry_small, [60.0], num_draws=6)
    p = {
        arm: predict.Predictor.from_fit(
            fit, registry_small, set_term=("expert_center", value), num_draws=6
        )
        for arm, value in (("treated", 1.0), ("control", 0.0))
    }
    for arm, pred in p.items():
        eta, shape, off = pred.eta(), pred.shape(), pred.offsets()
        _, w = pred.nodes()
        medians = std[f"median_{arm}"].to_numpy().ravel()
        rmsts = std[f"rmst_{arm}"].to_numpy().ravel()
        for d in range(len(shape)):
            s = curve(eta[d], off[d], shape[d], w)
            assert s(medians[d]) == pytest.approx(0.5, abs=1e-9)
            area = integrate.quad(s, 0.0, 60.0, epsabs=1e-10, epsrel=1e-11, limit=200)[0]
            assert rmsts[d] == pytest.approx(area, rel=1e-9)


# -- contract, subgroup, summary, plot, errors ------------------------------------------------
def test_contract(os_model_and_fit, registry_small):
    _model, dt = os_model_and_fit
    std = bs.standardized_survival(dt, registry_small, TRUTH_TIMES, num_draws=100)
    for name in ("treated", "control", "difference", "ratio"):
        assert std[name].dims == ("chain", "draw", "time")
    for name in ("median_difference", "rmst_difference"):
        assert std[name].dims == ("chain", "draw")
    np.testing.assert_allclose(std["difference"], std["treated"] - std["control"])
    np.testing.assert_allclose(std["ratio"], std["treated"] / std["control"])
    np.testing.assert_allclose(std["median_difference"], std.median_treated - std.median_control)
    assert std.attrs["treatment"] == "expert_center"
    assert std.attrs["horizon"] == 60.0
    assert std.attrs["n_patients"] == len(registry_small)
    # The expert centre helps in this simulated registry (true OS HR 0.65).
    assert float((std["difference"].sel(time=60.0) > 0).mean()) > 0.95


def test_subgroup_through_the_data_argument(fit, registry_small):
    r1 = registry_small[registry_small.margin == "R1"]
    std = standardize.standardized_survival(fit, r1, [24.0, 60.0], num_draws=20)
    assert std.attrs["n_patients"] == len(r1)
    direct = brute_force(fit, r1, [24.0, 60.0], True, num_draws=20)
    np.testing.assert_allclose(std["treated"], direct, atol=1e-12)
    everyone = standardize.standardized_survival(fit, registry_small, [60.0], num_draws=20)
    assert not np.allclose(std["control"].sel(time=60.0), everyone["control"].sel(time=60.0))


def test_summary_table_and_plot(fit, registry_small, tmp_path):
    std = standardize.standardized_survival(
        fit, registry_small, np.linspace(0, 120, 25), num_draws=100, horizon=60.0
    )
    table = standardize.standardized_summary(std, ci_prob=0.9)
    assert list(table.columns) == [
        "quantity",
        "time",
        "horizon",
        "mean",
        "median",
        "lower",
        "upper",
    ]
    assert set(table.quantity) >= {"treated", "control", "difference", "ratio", "rmst_difference"}
    assert (table.loc[table.quantity == "rmst_treated", "horizon"] == 60.0).all()
    row = table[(table.quantity == "difference") & (table.time == 60.0)].iloc[0]
    draws = std["difference"].sel(time=60.0).to_numpy().ravel()
    assert row["lower"] == pytest.approx(np.quantile(draws, 0.05))
    fig = standardize.plot_standardized(std)
    left, right = fig.axes
    assert left.get_xlabel() == "months since surgery"
    assert "survival" in left.get_ylabel()
    assert "difference" in right.get_ylabel()
    fig.savefig(tmp_path / "std.png")


def test_bad_arguments(fit, registry_small):
    with pytest.raises(ValueError, match="own centre"):
        standardize.standardized_survival(fit, registry_small, [12.0], center="known")
    with pytest.raises(ValueError, match="binary"):
        standardize.standardized_survival(fit, registry_small, [12.0], treatment="age")
    with pytest.raises(ValueError, match="terms"):
        standardize.standardized_survival(fit, registry_small, [12.0], treatment="center_id")


# -- coverage of the simulator's truth ---------------------------------------------------------
def covers_truth(dt, df, endpoint, ci_prob=0.94):
    std = standardize.standardized_survival(dt, df, TRUTH_TIMES)
    truth = df.attrs["truth"][endpoint]["standardized"]
    misses = []
    for arm, key in (("treated", "expert"), ("control", "other")):
        for t in TRUTH_TIMES:
            draws = std[arm].sel(time=t).to_numpy().ravel()
            lo, hi = np.quantile(draws, [(1 - ci_prob) / 2, (1 + ci_prob) / 2])
            value = truth[key][int(t)]
            if not lo <= value <= hi:
                misses.append((endpoint, arm, t, round(value, 4), round(lo, 4), round(hi, 4)))
    return misses


def test_covers_the_true_standardized_survival(
    os_model_and_fit, lrfs_model_and_fit, registry_small
):
    misses = covers_truth(os_model_and_fit[1], registry_small, "OS")
    misses += covers_truth(lrfs_model_and_fit[1], registry_small, "LRFS")
    assert not misses, misses


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", ["OS", "LRFS", "RFS"])
def test_covers_the_true_standardized_survival_at_netsarc_size(endpoint):
    df = bs.simulate_registry(random_seed=2026)
    dt = bs.HierarchicalWeibull(endpoint).fit(df, random_seed=4, progressbar=False)
    misses = covers_truth(dt, df, endpoint)
    assert not misses, misses
