"""Flexible baselines in the model: the graph's log-likelihood against the NumPy reference and
per-centre quadrature, the two engines against each other, the NumPy baseline (hazard,
inverse, time quadrature) against scipy, options, and the fit's round trip through a file."""

from __future__ import annotations

import warnings

import arviz_stats as azs
import numpy as np
import pytest
from flexible_hazards import loglogistic_table
from scipy import integrate, special

import bayes_sarcoma as bs
from bayes_sarcoma.math import mspline
from bayes_sarcoma.model.baselines import Baseline
from bayes_sarcoma.model.hierarchical import SamplerWarning
from bayes_sarcoma.model.io import recompute_log_likelihood

SPLINES = ("mspline", "piecewise")
SMALL = dict(draws=300, tune=300, chains=2, progressbar=False)


@pytest.fixture(scope="module")
def table():
    return loglogistic_table(300, n_centers=10, random_seed=1)


def _internal_coef(baseline: Baseline, sd: float, raw: np.ndarray) -> np.ndarray:
    """The simplex from the random walk, written out independently of Baseline.coef."""
    log_q = baseline.log_p0 + np.concatenate([[0.0], np.cumsum(sd * raw)])
    return special.softmax(log_q)


def _point(model, rng, sd, with_centres=False):
    n_terms, k = len(model.design.labels), model.baseline_.n_coef
    point = {
        "intercept_c": rng.normal(-0.5, 0.2),
        "beta_std_Normal": rng.normal(0, 0.3, n_terms),
        "baseline_sd_log__": np.log(sd),
        "baseline_raw": rng.normal(0, 1, k - 1),
    }
    if with_centres:
        point["center_sd_log__"] = np.log(0.4)
    return point


@pytest.mark.parametrize("baseline", SPLINES)
def test_graph_log_likelihood_is_the_numpy_reference_with_delayed_entry(table, baseline):
    data = table.assign(entry=np.where(np.arange(len(table)) % 3 == 0, table["time"] / 3, 0.0))
    model = bs.HierarchicalWeibull(
        time="time", event="event", terms=["treated", "age"], entry="entry", baseline=baseline
    )
    pm_model = model.build_model(data)
    potential = pm_model.compile_logp(vars=pm_model.potentials, jacobian=False)
    rng = np.random.default_rng(2)
    b, arrays = model.baseline_, model.prepared_.arrays
    for sd in (0.3, 1.5):
        point = _point(model, rng, sd)
        p = _internal_coef(b, sd, point["baseline_raw"])
        log_ref = np.log(p @ mspline.integrated_basis(model.prepared_.t_ref, b.knots, b.degree))
        eta = point["intercept_c"] + arrays["X"] @ point["beta_std_Normal"] - log_ref
        expected = mspline.log_likelihood(
            data["time"], data["event"], eta, p, knots=b.knots, degree=b.degree, entry=data["entry"]
        ).sum()
        assert float(potential(point)) == pytest.approx(expected, rel=1e-12)


def test_integrated_engine_equals_per_centre_quadrature_with_an_mspline(table):
    data = table.iloc[:150]
    model = bs.HierarchicalWeibull(
        time="time", event="event", terms=["treated", "age"], cluster="center", baseline="mspline"
    )
    pm_model = model.build_model(data)
    potential = pm_model.compile_logp(vars=pm_model.potentials, jacobian=False)
    point = _point(model, np.random.default_rng(3), 0.8, with_centres=True)
    prep, b = model.prepared_, model.baseline_
    p = _internal_coef(b, 0.8, point["baseline_raw"])
    log_ref = np.log(p @ prep.arrays["cumbasis_ref"])
    beta = point["beta_std_Normal"]
    patient = [j for j in range(beta.size) if j not in prep.center_terms]
    eta = prep.arrays["X"][:, patient] @ beta[patient] - log_ref
    mean = point["intercept_c"] + prep.arrays["X_center"] @ beta[list(prep.center_terms)]
    total = 0.0
    for c in range(len(prep.center_ids)):
        rows = prep.center_index == c

        def lik(v, rows=rows, c=c):
            ll = mspline.log_likelihood(
                prep.time[rows], prep.event[rows], eta[rows] + mean[c] + 0.4 * v, p, knots=b.knots
            )
            return np.exp(ll.sum() - 0.5 * v * v) / np.sqrt(2 * np.pi)

        value, _ = integrate.quad(lik, -12, 12, epsabs=0, epsrel=1e-12, limit=200)
        total += np.log(value)
    assert float(potential(point)) == pytest.approx(total, abs=1e-7)


@pytest.fixture(scope="module")
def engine_fits(table):
    fits = {}
    for engine in ("integrated", "sampled"):
        model = bs.HierarchicalWeibull(
            time="time",
            event="event",
            terms=["treated", "age"],
            cluster="center",
            baseline="mspline",
            n_basis=6,
            engine=engine,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SamplerWarning)
            fits[engine] = model.fit(table, random_seed=4, **(SMALL | {"draws": 500}))
    return fits


def test_both_engines_agree_within_monte_carlo_error(engine_fits):
    a, b = engine_fits["integrated"].posterior, engine_fits["sampled"].posterior
    assert a["baseline_coef"].dims == ("chain", "draw", "basis")
    np.testing.assert_allclose(a["baseline_coef"].sum("basis"), 1.0, rtol=1e-12)
    for name in ("intercept", "baseline_coef", "baseline_sd", "beta", "center_sd"):
        diff = a[name].mean(("chain", "draw")) - b[name].mean(("chain", "draw"))
        se = np.hypot(azs.mcse(a.dataset[[name]])[name], azs.mcse(b.dataset[[name]])[name])
        z = (diff / se).to_numpy().ravel()
        assert np.all(np.abs(z) < 4.5), (name, z)
    assert "shape" not in a


def test_the_fit_stores_its_knots_and_a_saved_fit_rebuilds_them(engine_fits, table, tmp_path):
    dt = engine_fits["integrated"]
    base = Baseline.from_fit(dt)
    expected = mspline.default_knots(table["time"], table["event"], n_basis=6)
    np.testing.assert_array_equal(base.knots, expected)
    loaded = bs.load(bs.save(dt, tmp_path / "fit.zarr", log_likelihood=False), data=table)
    assert Baseline.from_fit(loaded) == base
    assert bs.HierarchicalWeibull.from_datatree(loaded).baseline_ == base
    np.testing.assert_allclose(
        loaded["log_likelihood"]["time"], dt["log_likelihood"]["time"], rtol=1e-13
    )
    ll = recompute_log_likelihood(dt)["time"]
    np.testing.assert_allclose(ll, dt["log_likelihood"]["time"], rtol=1e-13)


@pytest.mark.parametrize("name", SPLINES)
def test_numpy_baseline_cumulative_hazard_integrates_its_hazard(name):
    b = Baseline(name, (0.0, 4.0, 9.0, 15.0, 30.0))
    rng = np.random.default_rng(5)
    p = {"baseline_coef": rng.dirichlet(np.ones(b.n_coef), size=3)}
    for t in (0.7, 9.0, 22.0, 45.0):
        for d in range(3):
            one = {"baseline_coef": p["baseline_coef"][d : d + 1]}
            value, _ = integrate.quad(
                lambda s, one=one: np.exp(b.log_hazard(one, np.array([s])))[0, 0],
                0,
                t,
                points=[k for k in b.knots if k < t] or None,
                epsabs=0,
                epsrel=1e-12,
                limit=200,
            )
            assert np.exp(b.log_cumulative(one, t))[0] == pytest.approx(value, rel=1e-9)


@pytest.mark.parametrize("name", SPLINES)
def test_inverse_of_the_cumulative_hazard_round_trips_inside_and_past_the_knots(name):
    b = Baseline(name, (0.0, 4.0, 9.0, 15.0, 30.0))
    rng = np.random.default_rng(6)
    p = {"baseline_coef": rng.dirichlet(np.ones(b.n_coef), size=4)}
    t = np.array([1e-3, 0.5, 4.0, 12.0, 29.9, 30.0, 55.0])
    log_h = b.log_cumulative(p, t)  # (4, 7)
    np.testing.assert_allclose(b.invert(p, log_h), np.broadcast_to(t, log_h.shape), rtol=1e-9)
    assert np.all(b.invert(p, np.full((4, 1), -np.inf)) == 0.0)


@pytest.mark.parametrize("name", SPLINES)
@pytest.mark.parametrize("level", [0.05, 1.0, 8.0])
def test_time_quadrature_integrates_survival_as_scipy_does(name, level):
    b = Baseline(name, (0.0, 4.0, 9.0, 15.0, 30.0))
    p = {"baseline_coef": np.random.default_rng(7).dirichlet(np.ones(b.n_coef), size=1)}

    def surv(s):
        return np.exp(-level * np.exp(b.log_cumulative(p, np.atleast_1d(s))))[0]

    for horizon in (3.0, 30.0, 60.0):
        nodes, weights = b.time_quadrature(horizon)
        value, _ = integrate.quad(
            lambda s: surv(s)[0], 0, horizon, points=[4, 9, 15, 30], epsabs=0, epsrel=1e-12
        )
        assert surv(nodes) @ weights == pytest.approx(value, rel=1e-9, abs=1e-12)


def test_options_are_checked_and_travel_with_the_specification():
    with pytest.raises(ValueError, match="baseline='gompertz'"):
        bs.HierarchicalWeibull("OS", baseline="gompertz")
    with pytest.raises(ValueError, match="not of baseline='weibull'"):
        bs.HierarchicalWeibull("OS", n_basis=6)
    with pytest.raises(ValueError, match="n_basis=3: a degree-3 basis needs at least 4"):
        bs.HierarchicalWeibull("OS", baseline="mspline", n_basis=3)
    with pytest.raises(ValueError, match="not both"):
        bs.HierarchicalWeibull("OS", baseline="mspline", n_basis=6, knots=[0, 5, 60])
    with pytest.raises(ValueError, match="strictly increasing"):
        bs.HierarchicalWeibull("OS", baseline="piecewise", knots=[0, 5, 5, 60])
    spec = bs.HierarchicalWeibull("OS", baseline="piecewise", knots=[0, 12, 36, 200]).to_dict()
    again = bs.HierarchicalWeibull.from_dict(spec)
    assert (again.baseline, again.knots, again.n_basis) == ("piecewise", [0, 12, 36, 200], None)


def test_given_knots_are_used_as_they_are(table):
    model = bs.HierarchicalWeibull(
        time="time", event="event", terms=["age"], baseline="piecewise", knots=[0, 10, 40, 200]
    )
    model.build_model(table)
    assert model.baseline_.knots == (0.0, 10.0, 40.0, 200.0)
    assert model.structure_.n_basis == 3
    assert model.prepared_.arrays["basis"].shape == (len(table), 3)
