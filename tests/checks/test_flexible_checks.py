"""Checks of a flexible-baseline fit: replicated event times follow the model (KS test), the
integrated log-likelihood equals per-centre quadrature, and on a rise-then-fall hazard the
M-spline recovers the true standardized survival and wins LOO where the Weibull fails."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from flexible_hazards import TIMES, loglogistic_table, true_standardized, weibull_h0, weibull_table
from scipy import integrate, stats

import bayes_sarcoma as bs
from bayes_sarcoma.checks import compare, ppc
from bayes_sarcoma.math import mspline
from bayes_sarcoma.model.hierarchical import SamplerWarning
from bayes_sarcoma.predict.standardize import standardized_survival


def test_replicated_event_times_follow_the_fitted_spline(mspline_model_and_fit):
    _, dt = mspline_model_and_fit
    fi = ppc.fitted_inputs(dt, num_draws=1)
    n = 4000  # one posterior draw repeated: its times for patient 0 are i.i.d.
    fi.params = {k: np.repeat(v[:1], n, axis=0) for k, v in fi.params.items()}
    fi.chain, fi.draw = np.zeros(n, int), np.arange(n)
    t = fi.sample_times(np.random.default_rng(1))[:, 0]
    eta = fi.eta()[0, 0]
    knots = bs.HierarchicalWeibull.from_datatree(dt).baseline_.knots

    def cdf(s):
        return -np.expm1(
            -mspline.cumulative_hazard(s, eta, fi.params["baseline_coef"][0], knots=knots)
        )

    assert stats.kstest(t, cdf).pvalue > 0.01
    assert (t > knots[-1]).any()  # the constant hazard past the last knot is sampled too


def test_km_check_and_posterior_predictive_run_on_a_spline_fit(mspline_model_and_fit):
    _, dt = mspline_model_and_fit
    check = ppc.km_check(dt, num_draws=100, random_seed=2)
    assert float(check.data["inside"].sel(stratum="all").mean()) > 0.8
    pp = ppc.add_posterior_predictive(dt, num_draws=50, random_seed=2)
    assert np.all(pp["posterior_predictive"]["time"] > 0)


def test_integrated_log_likelihood_of_a_centre_is_its_quadrature(mspline_model_and_fit):
    _, dt = mspline_model_and_fit
    ll = compare.integrated_log_likelihood(dt, unit="center", num_draws=2)
    fi = ppc.fitted_inputs(dt, num_draws=2)
    obs = dt["observed_data"]
    time, event = obs["time"].to_numpy(), obs["event"].to_numpy()
    knots = bs.HierarchicalWeibull.from_datatree(dt).baseline_.knots
    eta = fi.eta(with_centers=False)
    for d in range(2):
        for c in (0, 5):
            rows = fi.center_index == c
            sd, coef = fi.params["center_sd"][d], fi.params["baseline_coef"][d]

            def f(u, rows=rows, d=d, sd=sd, coef=coef):
                ll_u = mspline.log_likelihood(
                    time[rows], event[rows], eta[d, rows] + u, coef, knots=knots
                )
                return np.exp(ll_u.sum() + 200.0) * stats.norm.pdf(u, 0.0, sd)

            value, _ = integrate.quad(f, -8 * sd, 8 * sd, epsabs=0, epsrel=1e-11, limit=200)
            got = float(ll.stack(s=("chain", "draw")).isel(s=d, center=c))
            assert got == pytest.approx(np.log(value) - 200.0, abs=1e-6)


def _fit(data, baseline, **kw):
    model = bs.HierarchicalWeibull(
        time="time",
        event="event",
        terms=["treated", "age"],
        cluster="center",
        treatment="treated",
        baseline=baseline,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplerWarning)
        return model.fit(data, progressbar=False, **kw)


def _covers(dt, data, truth, ci_prob=0.94):
    s = standardized_survival(dt, data, list(TIMES))
    lo, hi = (1 - ci_prob) / 2, (1 + ci_prob) / 2
    out = []
    for arm in ("treated", "control"):
        q = s[arm].quantile([lo, hi], dim=("chain", "draw")).to_numpy()
        out += list((q[0] <= truth[arm]) & (truth[arm] <= q[1]))
    return np.array(out)


@pytest.mark.slow
def test_mspline_recovers_a_rise_then_fall_hazard_where_the_weibull_fails():
    """600 patients in 40 centres; measured: the M-spline covers all 8 truths, the Weibull 2."""
    data = loglogistic_table(600, n_centers=40, random_seed=1)
    truth = true_standardized(data)
    kw = dict(draws=500, tune=500, chains=2, random_seed=1)
    fits = {name: _fit(data, name, **kw) for name in ("mspline", "weibull")}
    assert _covers(fits["mspline"], data, truth).all()
    assert not _covers(fits["weibull"], data, truth).all()
    table = compare.compare_models(fits).table
    assert table.index[0] == "mspline"
    assert table.loc["weibull", "elpd_diff"] < -2 * table.loc["weibull", "dse"]


@pytest.mark.slow
def test_loo_does_not_prefer_the_mspline_meaningfully_on_weibull_data():
    data = weibull_table(600, n_centers=40, random_seed=1)
    truth = true_standardized(data, h0=weibull_h0)
    kw = dict(draws=500, tune=500, chains=2, random_seed=1)
    fits = {name: _fit(data, name, **kw) for name in ("mspline", "weibull")}
    assert _covers(fits["mspline"], data, truth).all()
    table = compare.compare_models(fits).table
    other = table.index[1]
    assert abs(table.loc[other, "elpd_diff"]) < 2 * table.loc[other, "dse"]


def test_small_loo_prefers_the_mspline_on_a_rise_then_fall_hazard(
    mspline_model_and_fit, mspline_table
):
    """The CI version of the slow recovery test: 300 patients, 300 draws per model."""
    _, dt = mspline_model_and_fit
    weibull = _fit(mspline_table, "weibull", draws=150, tune=300, chains=2, random_seed=3)
    table = compare.compare_models({"mspline": dt, "weibull": weibull}).table
    assert table.index[0] == "mspline"
    assert table.loc["weibull", "elpd_diff"] < -2 * table.loc["weibull", "dse"]
    truth = true_standardized(mspline_table)
    assert _covers(dt, mspline_table, truth).all()
