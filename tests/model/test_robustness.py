"""Numerical robustness: finite log-density and gradient at extreme but valid data.

Times from 0.01 to 10,000 months, standardised covariates up to +-10, Weibull shapes from
0.3 to 3: the sampled log-density, its gradient, the stored pointwise log-likelihood and
the NumPy closed forms stay finite, and agree with independent computations (scipy's
Weibull, finite differences, numerical integration). Vague priors still initialise.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

import bayes_sarcoma as bs
from bayes_sarcoma.math import weibull
from bayes_sarcoma.model.posterior import pointwise_log_likelihood

T_MIN, T_MAX = 0.01, 10_000.0  # months
Z_MAX = 10.0  # standardised covariate
SHAPES = (0.3, 1.0, 3.0)
SPEC = dict(time="t", event="d", cluster="site", terms=["z", "arm"], id_column="subject")


def extreme_table(n: int = 400, random_seed: int = 0) -> pd.DataFrame:
    """Times log-uniform on [0.01, 10000] months (both ends present, events and censored),
    a covariate whose two outliers standardise to exactly +-10, 12 sites."""
    rng = np.random.default_rng(random_seed)
    t = np.exp(rng.uniform(np.log(T_MIN), np.log(T_MAX), n))
    t[:4] = [T_MIN, T_MIN, T_MAX, T_MAX]
    d = rng.integers(0, 2, n)
    d[:4] = [1, 0, 1, 0]
    x = rng.normal(0.0, 1.0, n)
    others = np.arange(n) >= 6  # rows 4, 5: the outliers (0-3: the extreme times)
    others[:4] = True
    x[others] -= x[others].mean()
    # two outliers at +-a keep the mean 0; z = a / sd with sd**2 = (S + 2 a**2) / n (ddof 0),
    # so z = 10 needs a**2 = 100 S / (n - 200)
    a = np.sqrt(Z_MAX**2 * np.sum(x[others] ** 2) / (n - 2 * Z_MAX**2))
    x[4:6] = [a, -a]
    site = np.arange(n) % 12
    return pd.DataFrame(
        {
            "subject": [f"S{i:03d}" for i in range(n)],
            "site": [f"site-{k:02d}" for k in site],
            "z": x,
            "arm": site % 2,
            "t": t,
            "d": d,
        }
    )


ENGINES = ("integrated", "sampled")


@pytest.fixture(scope="module", params=ENGINES)
def extreme(request):
    df = extreme_table()
    model = bs.HierarchicalWeibull(**SPEC, engine=request.param)
    pm_model = model.build_model(df)
    return df, model, pm_model, logp_and_gradient(pm_model)


def test_the_table_really_is_extreme(extreme):
    df, model, _, _ = extreme
    z = model.prepared_.arrays["X"][:, 0]
    assert np.abs(z).max() == pytest.approx(Z_MAX, rel=1e-9)
    assert df["t"].min() == T_MIN
    assert df["t"].max() == T_MAX


def logp_and_gradient(pm_model):
    """One compiled function of a point: (log-density, gradient)."""
    return pm_model.compile_fn([pm_model.logp(), pm_model.dlogp()], point_fn=True)


def _points(pm_model, rng):
    """Points (value space) over a grid of parameter values, extreme ones included."""
    base = pm_model.initial_point()
    for intercept, shape, beta, sd in itertools.product(
        (-5.0, 0.0, 5.0), SHAPES, ((-1.0, 1.0), (1.0, -1.0), (2.0, 2.0)), (0.01, 2.0)
    ):
        point = dict(base)
        point["intercept_c"] = np.asarray(intercept)
        point["shape_log__"] = np.asarray(np.log(shape))
        point["beta_std_Normal"] = np.asarray(beta)
        point["center_sd_log__"] = np.asarray(np.log(sd))
        if "center_raw" in base:  # the sampled engine
            point["center_raw"] = rng.normal(0.0, 1.0, base["center_raw"].size) * sd
        yield point


def test_log_density_and_gradient_are_finite_at_extremes(extreme):
    _, _, pm_model, both = extreme
    bad = []
    for point in _points(pm_model, np.random.default_rng(1)):
        value, grad = both(point)
        if not (np.isfinite(value) and np.isfinite(grad).all()):
            bad.append({k: np.round(v, 3).tolist() for k, v in point.items() if v.size == 1})
    assert not bad, bad


def _flat(pm_model, point):
    names = [v.name for v in pm_model.value_vars]
    sizes = [np.size(point[n]) for n in names]
    return names, sizes, np.concatenate([np.ravel(point[n]) for n in names])


def _unflat(names, sizes, vector, like):
    out, start = {}, 0
    for name, size in zip(names, sizes, strict=True):
        out[name] = vector[start : start + size].reshape(np.shape(like[name]))
        start += size
    return out


@pytest.mark.parametrize("shape", SHAPES)
def test_gradient_matches_finite_differences_at_extremes(extreme, shape):
    _, _, pm_model, both = extreme

    def logp(point):
        return both(point)[0]

    rng = np.random.default_rng(2)
    point = dict(pm_model.initial_point())
    point |= {
        "intercept_c": np.asarray(-1.0),
        "shape_log__": np.asarray(np.log(shape)),
        "beta_std_Normal": np.array([0.4, -0.3]),
        "center_sd_log__": np.asarray(np.log(0.5)),
    }
    if "center_raw" in point:
        point["center_raw"] = rng.normal(0, 0.5, point["center_raw"].size)
    names, sizes, x = _flat(pm_model, point)
    grad = both(point)[1]
    numeric = np.empty_like(x)
    for i in range(x.size):
        h = 1e-6 * max(1.0, abs(x[i]))
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        numeric[i] = (
            logp(_unflat(names, sizes, up, point)) - logp(_unflat(names, sizes, down, point))
        ) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6 * np.abs(grad).max())


def _scipy_loglik(t, d, eta, shape):
    """Per-patient log-likelihood from scipy.stats.weibull_min (scale exp(-eta / shape))."""
    dist = stats.weibull_min(shape, scale=np.exp(-eta / shape))
    return np.where(d == 1, dist.logpdf(t), dist.logsf(t))


@pytest.mark.parametrize("shape", SHAPES)
def test_closed_form_log_likelihood_matches_scipy_at_extremes(shape):
    t = np.array([T_MIN, 1.0, 60.0, T_MAX])[:, None]
    eta = np.linspace(-20, 20, 9)[None, :]
    for d in (0, 1):
        ours = weibull.log_likelihood(t, d, eta, shape)
        assert np.isfinite(ours).all()
        np.testing.assert_allclose(ours, _scipy_loglik(t, d, eta, shape), rtol=1e-9)


@pytest.mark.parametrize("shape", SHAPES)
def test_closed_forms_stay_finite_and_bounded_at_extremes(shape):
    t = np.array([T_MIN, T_MAX])[:, None]
    eta = np.linspace(-20, 20, 9)[None, :]
    s = weibull.survival(t, eta, shape)
    assert ((s >= 0) & (s <= 1)).all()
    for values in (
        weibull.cumulative_hazard(t, eta, shape),
        weibull.hazard(t, eta, shape),
        weibull.median(eta, shape),
        weibull.quantile(0.9, eta, shape),
    ):
        assert np.isfinite(values).all()
        assert (values > 0).all()
    rmst = weibull.restricted_mean(t, eta, shape)
    assert np.isfinite(rmst).all()
    assert (rmst <= t * (1 + 1e-12)).all()


@pytest.mark.parametrize(("eta", "shape"), list(itertools.product((-20.0, 0.0, 20.0), SHAPES)))
def test_restricted_mean_matches_numerical_integration(eta, shape):
    """RMST = integral of S over [0, tau], integrated on the log-time axis (smooth there)."""
    for tau in (T_MIN, T_MAX):

        def integrand(u):
            return float(weibull.survival(np.exp(u), eta, shape)) * np.exp(u)

        log_median = float(np.log(weibull.median(eta, shape)))
        top = np.log(tau)
        low = min(top, log_median) - 40.0
        mid = min(max(log_median, low), top)
        value = sum(
            integrate.quad(integrand, a, b, epsabs=0, epsrel=1e-12, limit=500)[0]
            for a, b in ((low, mid), (mid, top))
        )
        ours = float(weibull.restricted_mean(tau, eta, shape))
        assert ours == pytest.approx(value, rel=1e-8), (tau, ours, value)


def test_stored_pointwise_log_likelihood_is_finite_and_matches_scipy(extreme):
    _, model, _, _ = extreme
    prepared = model.prepared_
    rng = np.random.default_rng(3)
    draws = 6
    post = {
        "intercept": rng.normal(-2, 1, (1, draws)),
        "shape": np.array([SHAPES + SHAPES]),
        "beta": rng.normal(0, 0.5, (1, draws, 2)) / model.design.scale,
        "center_sd": np.full((1, draws), 0.5),
        "center_effect": rng.normal(0, 0.5, (1, draws, 12)),
    }
    ours = pointwise_log_likelihood(post, prepared)
    assert np.isfinite(ours).all()
    eta = (
        post["intercept"][..., None]
        + np.einsum("cdk,nk->cdn", post["beta"], prepared.raw_x)
        + post["center_effect"][..., prepared.center_index]
    )
    expected = _scipy_loglik(
        prepared.time, prepared.event.astype(int), eta, post["shape"][..., None]
    )
    np.testing.assert_allclose(ours, expected, rtol=1e-9)


def test_sampling_extreme_data_gives_finite_results(extreme):
    df, model, _, _ = extreme
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplerWarning)
        dt = bs.HierarchicalWeibull(**SPEC, engine=model.engine).fit(
            df, draws=200, tune=300, chains=2, random_seed=4, progressbar=False
        )
    for group in ("posterior", "log_likelihood"):
        for name, values in dt[group].dataset.data_vars.items():
            assert np.isfinite(values).all(), (group, name)


VAGUE = {
    "BUGS": {
        "intercept": bs.Prior("Normal", mu=0, sigma=100),
        "beta": bs.Prior("Normal", mu=0, sigma=100),
        "shape": bs.Prior("Exponential", lam=0.001),
        "center_sd": bs.Prior("Gamma", alpha=0.001, beta=0.001, on="precision"),
    },
    "uniform": {
        "intercept": bs.Prior("Uniform", lower=-1000, upper=1000),
        "shape": bs.Prior("Uniform", lower=0.01, upper=100),
        "center_sd": bs.Prior("Uniform", lower=0, upper=100),
    },
    "heavy tails and variance": {
        "intercept": bs.Prior("Normal", mu=0, sigma=1e4),
        "beta": bs.Prior("StudentT", nu=1, mu=0, sigma=100),
        "shape": bs.Prior("Gamma", alpha=0.01, beta=0.01),
        "center_sd": bs.Prior("InverseGamma", alpha=0.001, beta=0.001, on="variance"),
    },
}


@pytest.mark.parametrize("name", list(VAGUE))
def test_vague_priors_initialise_on_extreme_data(extreme, name):
    df, model, _, _ = extreme
    spec = SPEC | {"priors": VAGUE[name], "engine": model.engine}
    pm_model = bs.HierarchicalWeibull(**spec).build_model(df)
    value, grad = logp_and_gradient(pm_model)(pm_model.initial_point())
    assert np.isfinite(value)
    assert np.isfinite(grad).all()


@pytest.mark.parametrize("engine", ENGINES)
def test_delayed_entry_close_to_exit_stays_finite(engine):
    """-H(t) + H(a) with a just below t (cancellation), and a = 0 (no entry)."""
    df = extreme_table(random_seed=5)
    df["entry"] = np.where(np.arange(len(df)) % 2 == 0, df["t"] * (1 - 1e-9), 0.0)
    pm_model = bs.HierarchicalWeibull(**SPEC, entry="entry", engine=engine).build_model(df)
    both = logp_and_gradient(pm_model)
    for point in itertools.islice(_points(pm_model, np.random.default_rng(6)), 0, None, 5):
        value, grad = both(point)
        assert np.isfinite(value)
        assert np.isfinite(grad).all()
