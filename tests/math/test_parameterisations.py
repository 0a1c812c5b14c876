"""Every conversion of docs/parameterisations.md, checked.

Our model is Weibull PH: ``S(t) = exp(-t**alpha * exp(eta))``. Each test takes a
parameterisation of another package, converts our ``(eta, alpha)`` (or their estimates)
with the table's formula, and checks the log-density and log-survival against that
package (scipy, PyMC, numpyro, lifelines) or, where the package is not a Python one (R,
Stan, JAGS, brms), against the density its documentation gives.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from bayes_sarcoma.math import weibull

RNG = np.random.default_rng(20261129)
T = np.array([0.3, 2.0, 11.0, 40.0, 150.0])
CASES = [(-3.2, 0.7), (-1.0, 1.0), (-6.5, 1.9)]


def ours(eta, alpha):
    """Our log-density and log-survival at T."""
    logf = weibull.log_likelihood(T, np.ones_like(T), eta, alpha)
    logs = weibull.log_likelihood(T, np.zeros_like(T), eta, alpha)
    return logf, logs


@pytest.mark.parametrize(("eta", "alpha"), CASES)
def test_scipy_weibull_min(eta, alpha):
    # weibull_min(c=alpha, scale=exp(-eta / alpha))
    dist = stats.weibull_min(c=alpha, scale=np.exp(-eta / alpha))
    logf, logs = ours(eta, alpha)
    np.testing.assert_allclose(dist.logpdf(T), logf, rtol=1e-12)
    np.testing.assert_allclose(dist.logsf(T), logs, rtol=1e-12)


@pytest.mark.parametrize(("eta", "alpha"), CASES)
def test_pymc_weibull(eta, alpha):
    # pm.Weibull(alpha=alpha, beta=exp(-eta / alpha))
    import pymc as pm

    dist = pm.Weibull.dist(alpha=alpha, beta=weibull.to_pymc_beta(eta, alpha))
    logf, logs = ours(eta, alpha)
    np.testing.assert_allclose(pm.logp(dist, T).eval(), logf, rtol=1e-10)
    np.testing.assert_allclose(pm.logccdf(dist, T).eval(), logs, rtol=1e-10)


@pytest.mark.parametrize(("eta", "alpha"), CASES)
def test_numpyro_weibull(eta, alpha):
    # numpyro.distributions.Weibull(scale=exp(-eta / alpha), concentration=alpha)
    pytest.importorskip("numpyro")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # jax internals
        from numpyro.distributions import Weibull

        dist = Weibull(scale=np.exp(-eta / alpha), concentration=alpha)
        logf = np.asarray(dist.log_prob(T), dtype=float)
        cdf = np.asarray(dist.cdf(T), dtype=float)
    want_f, want_s = ours(eta, alpha)
    # JAX computes in float32 unless x64 is switched on (a global setting we leave alone).
    np.testing.assert_allclose(logf, want_f, rtol=2e-5, atol=1e-4)
    np.testing.assert_allclose(cdf, -np.expm1(want_s), atol=1e-6)


@pytest.mark.parametrize(("eta", "alpha"), CASES)
def test_stan_and_r_dweibull(eta, alpha):
    # Stan weibull(alpha, sigma) and R dweibull(shape, scale): sigma = exp(-eta / alpha).
    # Stan Functions Reference: alpha/sigma (y/sigma)^(alpha-1) exp(-(y/sigma)^alpha).
    sigma = np.exp(-eta / alpha)
    logf = np.log(alpha / sigma) + (alpha - 1) * np.log(T / sigma) - (T / sigma) ** alpha
    logs = -((T / sigma) ** alpha)  # weibull_lccdf
    want_f, want_s = ours(eta, alpha)
    np.testing.assert_allclose(logf, want_f, rtol=1e-12)
    np.testing.assert_allclose(logs, want_s, rtol=1e-12)


@pytest.mark.parametrize(("eta", "alpha"), CASES)
def test_bugs_jags_dweib(eta, alpha):
    # BUGS/JAGS dweib(v, lambda): v lambda x^(v-1) exp(-lambda x^v); v = alpha, lambda = e^eta.
    # flexsurv "weibullPH" (shape a, scale m: h = a m x^(a-1)) is the same with a, m.
    v, lam = alpha, np.exp(eta)
    logf = np.log(v) + np.log(lam) + (v - 1) * np.log(T) - lam * T**v
    logs = -lam * T**v
    want_f, want_s = ours(eta, alpha)
    np.testing.assert_allclose(logf, want_f, rtol=1e-12)
    np.testing.assert_allclose(logs, want_s, rtol=1e-12)


def test_survreg_aft_is_an_extreme_value_model_of_log_time():
    # survreg: log T = mu + x.gamma + sigma W, W standard minimum extreme value.
    # PH: alpha = 1 / sigma, beta = -gamma / sigma, intercept = -mu / sigma.
    mu, gamma, sigma = 3.1, np.array([0.4, -0.25]), 0.8
    x = RNG.normal(size=(6, 2))
    ph, alpha = weibull.from_survreg(np.r_[mu, gamma], sigma)
    assert alpha == pytest.approx(1 / sigma)
    eta = ph[0] + x @ ph[1:]
    lin = mu + x @ gamma
    for t in T:
        aft = stats.gumbel_l.sf((np.log(t) - lin) / sigma)  # P(log T > log t)
        np.testing.assert_allclose(weibull.survival(t, eta, alpha), aft, rtol=1e-10)
    # The AFT coefficient is the log time ratio of the PH coefficient.
    np.testing.assert_allclose(weibull.time_ratio(ph[1:], alpha), np.exp(gamma), rtol=1e-12)


def test_lifelines_weibull_aft_fitter_predictions():
    # lifelines: S(t) = exp(-(t / lambda)^rho), log lambda = x.coef (lambda_), log rho = rho_.
    # PH: alpha = rho, eta = -rho log lambda, so beta = -rho * coef.
    lifelines = pytest.importorskip("lifelines")
    n = 800
    x = RNG.normal(size=n)
    t = weibull.sample_times(RNG, -3.0 + 0.5 * x, 1.3)
    c = RNG.uniform(2, 40, n)
    df = pd.DataFrame({"t": np.minimum(t, c), "d": (t <= c).astype(int), "x": x})
    aft = lifelines.WeibullAFTFitter().fit(df, "t", "d")
    rho = np.exp(aft.params_["rho_"]["Intercept"])
    coef = aft.params_["lambda_"][["Intercept", "x"]].to_numpy()
    ph, alpha = weibull.from_survreg(coef, 1 / rho)  # survreg's sigma is 1 / rho
    new = df.head(4)
    want = aft.predict_survival_function(new[["x"]], times=T).to_numpy().T  # (patient, time)
    eta = ph[0] + new.x.to_numpy()[:, None] * ph[1]
    np.testing.assert_allclose(weibull.survival(T, eta, alpha), want, rtol=1e-8)
    assert np.exp(ph[1]) == pytest.approx(np.exp(0.5), rel=0.25)  # the true HR, roughly


def test_lifelines_weibull_fitter_without_covariates():
    lifelines = pytest.importorskip("lifelines")
    t = weibull.sample_times(RNG, -2.0, 0.8, size=500)
    fit = lifelines.WeibullFitter().fit(t, np.ones_like(t))
    alpha, eta = fit.rho_, -fit.rho_ * np.log(fit.lambda_)
    want = fit.survival_function_at_times(T).to_numpy()
    np.testing.assert_allclose(weibull.survival(T, eta, alpha), want, rtol=1e-10)


@pytest.mark.parametrize(("b0", "b", "k"), [(3.5, -0.3, 0.9), (2.0, 0.6, 1.7)])
def test_brms_weibull_mean_parameterisation(b0, b, k):
    # brms family weibull: mu = exp(b_Intercept + x b) is the MEAN; the generated Stan code
    # calls weibull_lpdf(y | shape, mu / tgamma(1 + 1 / shape)).
    # PH: alpha = k, beta = -k b, intercept = -k b_Intercept + k log Gamma(1 + 1/k).
    x = np.array([0.0, 1.0, -2.0])
    mu = np.exp(b0 + b * x)
    sigma = mu / special.gamma(1 + 1 / k)
    intercept = -k * b0 + k * special.gammaln(1 + 1 / k)
    beta = -k * b
    eta = intercept + beta * x
    for i in range(len(x)):
        stan = stats.weibull_min(c=k, scale=sigma[i])
        logf, logs = ours(eta[i], k)
        np.testing.assert_allclose(stan.logpdf(T), logf, rtol=1e-12)
        np.testing.assert_allclose(stan.logsf(T), logs, rtol=1e-12)
        assert stan.mean() == pytest.approx(mu[i], rel=1e-12)


def test_ph_coefficient_hazard_ratio_and_time_ratio():
    # exp(beta) multiplies the hazard at every t; exp(-beta / alpha) every quantile.
    eta, alpha, b = -2.5, 1.4, -0.45
    ratio_h = weibull.hazard(T, eta + b, alpha) / weibull.hazard(T, eta, alpha)
    np.testing.assert_allclose(ratio_h, np.exp(b), rtol=1e-12)
    q = np.array([0.1, 0.5, 0.9])
    ratio_q = weibull.quantile(q, eta + b, alpha) / weibull.quantile(q, eta, alpha)
    np.testing.assert_allclose(ratio_q, weibull.time_ratio(b, alpha), rtol=1e-12)
    median = (np.log(2) * np.exp(-eta)) ** (1 / alpha)
    assert weibull.median(eta, alpha) == pytest.approx(median, rel=1e-12)
