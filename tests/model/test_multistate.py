"""The multi-state model: its likelihood from first principles and parameter recovery."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from bayes_sarcoma.math.multistate import TRANSITIONS
from bayes_sarcoma.model.multistate import MultiStateModel, record_loglik_numpy
from bayes_sarcoma.predict.multistate import predict_endpoints, standardized_endpoints
from bayes_sarcoma.simulate.multistate import population_survival, simulate_histories

SHAPE = np.array([0.8, 1.2, 1.4, 1.0])
ETA = np.array([-4.0, -5.0, -7.0, -3.0])  # per month, one patient, centre effect included


def _weibull(k):
    """scipy's Weibull with the PH cumulative hazard t**a exp(eta)."""
    return stats.weibull_min(c=SHAPE[k], scale=np.exp(-ETA[k] / SHAPE[k]))


def _log_h(k, t):
    w = _weibull(k)
    return w.logpdf(t) - w.logsf(t)


def _log_s(k, t):
    return _weibull(k).logsf(t)


HISTORY = pd.DataFrame(
    {
        "patient_id": ["P1"],
        "center_id": ["C1"],
        "expert_center": [True],
        "age": [60.0],
        "surgery_date": pd.to_datetime(["2010-01-01"]),
        "local_relapse_date": pd.to_datetime(["2011-06-01"]),
        "distant_relapse_date": pd.to_datetime(["2010-09-15"]),
        "death_date": pd.to_datetime(["2012-03-01"]),
        "last_followup_date": pd.to_datetime(["2012-03-01"]),
    }
)


@pytest.mark.parametrize("clock", ["forward", "reset"])
def test_a_history_s_likelihood_is_the_product_of_transition_densities_and_survivors(clock):
    rec = MultiStateModel(terms=[], clock=clock).records(HISTORY)
    ll = record_loglik_numpy(rec, SHAPE[rec.transition], ETA[rec.transition]).sum()
    days = {
        c: (HISTORY[c][0] - HISTORY["surgery_date"][0]).days / 30.4375
        for c in ("local_relapse_date", "distant_relapse_date", "death_date")
    }
    r, loc, m = days["distant_relapse_date"], days["local_relapse_date"], days["death_date"]
    L, D, M, R = range(4)
    # distant relapse at r (first), local relapse at loc, death at m, death after relapse
    expected = _log_h(D, r) + _log_s(L, loc) + _log_h(L, loc) + _log_s(D, r) + _log_s(M, r)
    if clock == "forward":
        expected += _log_h(R, m) + _log_s(R, m) - _log_s(R, r)
    else:
        expected += _log_h(R, m - r) + _log_s(R, m - r)
    assert ll == pytest.approx(expected, rel=1e-12)


def test_the_graph_s_likelihood_equals_the_numpy_one():
    df = simulate_histories(300, 20, random_seed=2)
    model = MultiStateModel(terms=["expert_center", "age"])
    rec = model.records(df)
    pm_model = model.build_model(rec)
    point = pm_model.initial_point()
    rng = np.random.default_rng(0)
    point["beta_std"] = rng.normal(0, 0.3, point["beta_std"].shape)
    point["intercept_c"] = rng.normal(-1, 0.3, 4)
    got = pm_model.compile_logp(vars=pm_model.potentials, jacobian=False, mode="NUMBA")(point)
    shape = np.exp(point["shape_log__"])
    beta = point["beta_std"] / rec.design.scale
    intercept = point["intercept_c"] - beta @ rec.design.mean - shape * np.log(rec.t_ref)
    x_raw = rec.x * rec.design.scale + rec.design.mean
    eta = intercept[rec.transition] + (x_raw @ beta.T)[rec.patient, rec.transition]
    # centre effects are 0 at the initial point (z = 0)
    ll = record_loglik_numpy(rec, shape[rec.transition], eta)
    assert float(got) == pytest.approx(ll.sum() + rec.event.sum() * np.log(rec.t_ref), rel=1e-10)


@pytest.fixture(scope="module")
def small_fit():
    df = simulate_histories(1500, 30, random_seed=11)
    dt = MultiStateModel(terms=["expert_center", "age"]).fit(
        df, draws=200, tune=200, chains=2, random_seed=3, progressbar=False
    )
    return df, dt


def test_a_fit_has_the_documented_results(small_fit):
    df, dt = small_fit
    post = dt.posterior
    assert post["hazard_ratio"].dims == ("chain", "draw", "transition", "term")
    assert list(post["transition"].to_numpy()) == list(TRANSITIONS)
    corr = post["center_corr"].to_numpy()
    np.testing.assert_allclose(np.diagonal(corr, axis1=-2, axis2=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(corr, np.swapaxes(corr, -1, -2), atol=1e-12)
    assert dt.log_likelihood["history"].sizes["patient"] == len(df)
    assert np.isfinite(dt.log_likelihood["history"]).all()


def test_a_small_fit_recovers_the_transition_effects(small_fit):
    """Every transition's age effect and shape within 3 posterior SDs of the truth.

    Eight quantities at once: 3 SDs keeps the family-wise false alarm near 2%, where
    eight 94% intervals would miss one 39% of the time.
    """
    df, dt = small_fit
    truth = df.attrs["truth"]
    post = dt.posterior
    for k in TRANSITIONS:
        for name, true in (("shape", truth["shape"][k]), ("beta", truth["beta"]["age"][k])):
            draws = post[name].sel(transition=k)
            if name == "beta":
                draws = draws.sel(term="age")
            z = (float(draws.mean()) - true) / float(draws.std())
            assert abs(z) < 3, (k, name, float(draws.mean()), true, z)


def test_derived_curves_are_ordered_in_every_draw(small_fit):
    df, dt = small_fit
    times = [6.0, 24.0, 60.0, 120.0]
    for center in ("new", "known"):
        out = predict_endpoints(dt, df.iloc[:25], times, center=center, num_draws=50)
        assert out["OS"].dims == ("chain", "draw", "patient", "time")
        assert (out["RFS"] <= out["LRFS"] + 1e-12).all()
        assert (out["LRFS"] <= out["OS"] + 1e-12).all()
        np.testing.assert_allclose(out["occupation"].sum("state"), 1.0, atol=1e-10)


def test_known_centres_use_each_patient_s_centre_effects(small_fit):
    """A patient's known-centre OS equals the closed form with its centre's effects."""
    df, dt = small_fit
    one = df.iloc[[0]]
    out = predict_endpoints(dt, one, [0.0, 36.0], center="known", num_draws=10)
    post = dt.posterior.to_dataset().stack(sample=("chain", "draw"))
    keep = np.linspace(0, post.sizes["sample"] - 1, 10).round().astype(int)
    post = post.isel(sample=keep)
    u = post["center_effect"].sel(center=one["center_id"].iloc[0])
    x = np.array([float(one["expert_center"].iloc[0]), float(one["age"].iloc[0])])
    eta = post["intercept"] + (post["beta"] * xr.DataArray(x, dims="term")).sum("term") + u
    # RFS = exp(-(H_L + H_D + H_M)) in closed form
    h = (
        (36.0 ** post["shape"] * np.exp(eta))
        .sel(transition=list(TRANSITIONS[:3]))
        .sum("transition")
    )
    np.testing.assert_allclose(out["RFS"].isel(time=1).to_numpy().ravel(), np.exp(-h), rtol=1e-10)
    assert (out["OS"].isel(time=0) == 1).all()


@pytest.fixture(scope="module")
def standardized(small_fit):
    df, dt = small_fit
    return standardized_endpoints(dt, df, [36.0], num_draws=200)


@pytest.fixture(scope="module")
def population_truth():
    return {
        arm: population_survival([36.0], expert=expert, n_patients=200_000, random_seed=7)
        for arm, expert in (("treated", True), ("control", False))
    }


@pytest.mark.parametrize("endpoint", ["LRFS", "RFS", "OS"])
@pytest.mark.parametrize("arm", ["treated", "control"])
def test_standardized_survival_covers_the_truth(standardized, population_truth, endpoint, arm):
    """94% intervals of expert and other survival at 36 months cover the truth.

    The truth is the survival of a very large uncensored population drawn by the
    simulator with every centre expert, and with none (ages drawn as the data's; the
    0.005 margin is its Monte Carlo error and the data's ages differing from the law's).
    """
    truth = population_truth[arm][endpoint][0]
    draws = standardized[arm].sel(endpoint=endpoint, time=36.0).to_numpy().ravel()
    lo, hi = np.quantile(draws, [0.03, 0.97])
    assert lo - 0.005 < truth < hi + 0.005, (lo, truth, hi)


def test_the_standardized_difference_is_the_arms_difference(standardized):
    diff = standardized["treated"] - standardized["control"]
    np.testing.assert_allclose(standardized["difference"], diff, atol=1e-14)
    assert (
        standardized["treated"].sel(endpoint="RFS")
        <= standardized["treated"].sel(endpoint="LRFS") + 1e-12
    ).all()


@pytest.mark.slow
def test_a_netsarc_size_fit_recovers_expert_effects_and_centre_correlations():
    """9,594 patients in 500 centres: the 94% intervals of the four expert log HRs and the
    six centre-effect correlations cover the truth.

    Ten intervals at once: a calibrated posterior misses one or more 46% of the time and
    three or more 1.8% of the time, so at most two may miss, and only narrowly (within 3
    posterior SDs). tests/benchmarks/multistate_fit.py fits the same registry.
    """
    df = simulate_histories(9594, 500, random_seed=20260101)
    truth = df.attrs["truth"]
    dt = MultiStateModel(terms=["expert_center", "age"]).fit(df, random_seed=1, progressbar=False)
    post = dt.posterior
    checks = [
        (k, post["beta"].sel(transition=k, term="expert_center"), truth["beta"]["expert_center"][k])
        for k in TRANSITIONS
    ]
    corr = np.asarray(truth["center_corr"])
    for i, j in zip(*np.triu_indices(len(TRANSITIONS), 1), strict=True):
        name = f"corr {TRANSITIONS[i]} / {TRANSITIONS[j]}"
        checks.append((name, post["center_corr"].isel(transition=i, transition_b=j), corr[i, j]))
    misses = []
    for name, da, true in checks:
        draws = da.to_numpy().ravel()
        lo, hi = np.quantile(draws, [0.03, 0.97])
        if not lo < true < hi:
            misses.append((name, lo, true, hi))
            assert abs(draws.mean() - true) < 3 * draws.std(), (name, lo, true, hi)
    assert len(misses) <= 2, misses
