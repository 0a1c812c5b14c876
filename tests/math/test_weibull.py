"""The NumPy closed forms against scipy.stats, PyMC's Weibull and lifelines' AFT fit."""

import numpy as np
import pymc as pm
import pytest
from scipy import integrate, stats

from bayes_sarcoma.math import weibull

RNG = np.random.default_rng(20261129)


def _scipy(eta, shape):
    """scipy's weibull_min with the same PH parameters: scale = exp(-eta / shape)."""
    return stats.weibull_min(c=shape, scale=np.exp(-eta / shape))


@pytest.mark.parametrize(("eta", "shape"), [(-3.0, 0.7), (0.4, 1.0), (-6.2, 1.8)])
def test_survival_hazard_quantiles_match_scipy(eta, shape):
    t = np.array([0.01, 0.5, 3.0, 40.0, 900.0])
    dist = _scipy(eta, shape)
    np.testing.assert_allclose(weibull.survival(t, eta, shape), dist.sf(t), rtol=1e-12)
    np.testing.assert_allclose(weibull.cumulative_hazard(t, eta, shape), -dist.logsf(t), rtol=1e-12)
    np.testing.assert_allclose(
        weibull.hazard(t, eta, shape), np.exp(dist.logpdf(t) - dist.logsf(t)), rtol=1e-9
    )
    np.testing.assert_allclose(weibull.median(eta, shape), dist.median(), rtol=1e-12)
    q = np.array([0.1, 0.25, 0.9])
    np.testing.assert_allclose(weibull.quantile(q, eta, shape), dist.ppf(q), rtol=1e-12)


def test_survival_at_zero_and_median_is_half():
    assert weibull.survival(0.0, -2.0, 1.3) == 1.0
    med = weibull.median(-2.0, 1.3)
    assert weibull.survival(med, -2.0, 1.3) == pytest.approx(0.5, abs=1e-14)


@pytest.mark.parametrize(("eta", "shape", "tau"), [(-3.0, 0.7, 24.0), (-1.0, 2.5, 5.0)])
def test_restricted_mean_equals_numerical_integral(eta, shape, tau):
    numeric, _ = integrate.quad(lambda t: weibull.survival(t, eta, shape), 0, tau)
    assert weibull.restricted_mean(tau, eta, shape) == pytest.approx(numeric, rel=1e-8)


def test_log_likelihood_matches_scipy_logpdf_and_logsf():
    n = 200
    eta = RNG.normal(-2, 1, n)
    shape = RNG.uniform(0.5, 2.5)
    t = RNG.uniform(0.05, 80, n)
    d = RNG.integers(0, 2, n)
    dist = _scipy(eta, shape)
    expected = np.where(d == 1, dist.logpdf(t), dist.logsf(t))
    np.testing.assert_allclose(weibull.log_likelihood(t, d, eta, shape), expected, rtol=1e-10)


def test_log_likelihood_with_delayed_entry_is_conditional_on_survival_to_entry():
    n = 100
    eta = RNG.normal(-2, 1, n)
    shape = 1.4
    t = RNG.uniform(2, 60, n)
    a = t * RNG.uniform(0, 0.9, n)
    d = RNG.integers(0, 2, n)
    dist = _scipy(eta, shape)
    expected = np.where(d == 1, dist.logpdf(t), dist.logsf(t)) - dist.logsf(a)
    np.testing.assert_allclose(weibull.log_likelihood(t, d, eta, shape, a), expected, rtol=1e-10)


def test_pymc_weibull_parameterisation():
    eta, shape = -3.1, 1.3
    t = np.array([0.5, 4.0, 30.0])
    beta = weibull.to_pymc_beta(eta, shape)
    logp = pm.logp(pm.Weibull.dist(alpha=shape, beta=beta), t).eval()
    np.testing.assert_allclose(logp, weibull.log_likelihood(t, np.ones(3), eta, shape), rtol=1e-10)


def test_time_ratio_stretches_the_median():
    eta, shape, b = -2.0, 1.7, -0.4
    ratio = weibull.median(eta + b, shape) / weibull.median(eta, shape)
    assert weibull.time_ratio(b, shape) == pytest.approx(ratio, rel=1e-12)


def test_survreg_conversion_matches_lifelines_aft_fit():
    lifelines = pytest.importorskip("lifelines")
    import pandas as pd

    n = 4000
    x = RNG.normal(size=n)
    eta = -3.0 + 0.6 * x
    t = weibull.sample_times(RNG, eta, 1.4)
    c = RNG.uniform(1, 40, n)
    df = pd.DataFrame({"t": np.minimum(t, c), "d": (t <= c).astype(int), "x": x})
    aft = lifelines.WeibullAFTFitter().fit(df, "t", "d")
    coef = np.array([aft.params_["lambda_"]["Intercept"], aft.params_["lambda_"]["x"]])
    scale = np.exp(-aft.params_["rho_"]["Intercept"])
    ph, shape = weibull.from_survreg(coef, scale)

    # The converted MLE is the PH MLE: it maximises our own likelihood.
    def negll(theta):
        return -weibull.log_likelihood(df.t, df.d, theta[0] + theta[1] * x, theta[2]).sum()

    from scipy.optimize import minimize

    ours = minimize(
        negll,
        [ph[0], ph[1], shape],
        method="Nelder-Mead",
        options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000},
    ).x
    np.testing.assert_allclose([*ph, shape], ours, rtol=2e-3, atol=2e-3)
    assert shape == pytest.approx(1.4, abs=0.06)
    assert ph[1] == pytest.approx(0.6, abs=0.06)
