"""The maximum-likelihood Weibull PH fit (starting values and pseudo-true values).

Written by hand rather than with lifelines or statsmodels because it needs a known offset
per patient (the centre effects), the analytic Hessian for a covariance, and no extra
dependency; ``scipy.optimize.minimize`` (trust-exact) does the optimisation.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize


def _neg_loglik(theta, z, log_t, event, offset, need_hess=False):
    """Return -loglik, its gradient and (optionally) Hessian in ``(log shape, gamma)``."""
    log_shape = theta[0]
    shape = np.exp(log_shape)
    eta = z @ theta[1:] + offset
    a_log_t = shape * log_t
    cum_h = np.exp(a_log_t + eta)
    loglik = np.sum(event * (log_shape + a_log_t - log_t + eta)) - np.sum(cum_h)
    h_alt = cum_h * a_log_t
    grad = np.empty_like(theta)
    grad[0] = np.sum(event * (1.0 + a_log_t)) - np.sum(h_alt)
    grad[1:] = z.T @ (event - cum_h)
    if not need_hess:
        return -loglik, -grad
    hess = np.empty((theta.size, theta.size))
    hess[0, 0] = np.sum(event * a_log_t) - np.sum(h_alt * (a_log_t + 1.0))
    hess[0, 1:] = hess[1:, 0] = -(z.T @ h_alt)
    hess[1:, 1:] = -(z.T * cum_h) @ z
    return -loglik, -grad, -hess


def _as_arrays(
    time: ArrayLike, event: ArrayLike, covariates: ArrayLike, offset: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return time, event, the ``(n, p)`` covariates and offset as float arrays; check times."""
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    x = np.asarray(covariates, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    offset = np.zeros(x.shape[0]) if offset is None else np.asarray(offset, dtype=float)
    if not np.all(time > 0):
        raise ValueError("weibull_ph_mle: every time must be > 0")
    return time, event, x, offset


def _standardized_design(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the design ``[1, (x - mean) / scale]`` and the covariates' mean and scale."""
    n, p = x.shape
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    if np.any(scale == 0):
        raise ValueError(
            f"weibull_ph_mle: covariate column(s) {np.flatnonzero(scale == 0)} are constant"
        )
    z = np.empty((n, p + 1))
    z[:, 0] = 1.0
    z[:, 1:] = (x - mean) / scale
    return z, mean, scale


def _exponential_start(
    time: np.ndarray, event: np.ndarray, offset: np.ndarray, p: int
) -> np.ndarray:
    """Return the exponential model with the offset: shape 1, exp(gamma_0) = events / exposure."""
    theta0 = np.zeros(p + 2)
    theta0[1] = np.log(max(event.sum(), 1.0) / np.sum(time * np.exp(offset)))
    return theta0


def _maximize(
    z: np.ndarray,
    log_t: np.ndarray,
    event: np.ndarray,
    offset: np.ndarray,
    theta0: np.ndarray,
    gtol: float,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Maximise the log-likelihood in ``(log shape, gamma)`` by trust-exact.

    Returns the optimum, the observed information there and the maximum log-likelihood.
    """
    n = z.shape[0]

    def fun(theta):
        f, g = _neg_loglik(theta, z, log_t, event, offset)
        return f / n, g / n

    def hess(theta):
        return _neg_loglik(theta, z, log_t, event, offset, need_hess=True)[2] / n

    res = optimize.minimize(
        fun, theta0, jac=True, hess=hess, method="trust-exact", options={"gtol": gtol}
    )
    # trust-exact may stop with "a bad approximation" once the step is at rounding level
    if not (res.success or np.max(np.abs(res.jac)) < 1e-6):
        raise RuntimeError(f"weibull_ph_mle did not converge: {res.message}")
    return res.x, hess(res.x) * n, float(-res.fun * n)


def _original_scale(
    theta: np.ndarray,
    info: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    log_likelihood: float,
) -> dict:
    """Map the standardised optimum and its information to ``(intercept, shape, beta)``."""
    p = mean.size
    cov_theta = np.linalg.inv(info)
    # Map (log shape, gamma) -> (intercept, shape, beta): a linear map A plus d shape = shape ds.
    shape = float(np.exp(theta[0]))
    jac = np.zeros((p + 2, p + 2))
    jac[0, 1] = 1.0
    jac[0, 2:] = -mean / scale
    jac[1, 0] = shape
    jac[2:, 2:] = np.diag(1.0 / scale)
    cov = jac @ cov_theta @ jac.T
    gamma = theta[1:]
    beta = gamma[1:] / scale
    return {
        "intercept": float(gamma[0] - np.sum(gamma[1:] * mean / scale)),
        "shape": shape,
        "beta": beta,
        "cov": cov,
        "se": np.sqrt(np.diag(cov)),
        "log_likelihood": log_likelihood,
    }


def weibull_ph_mle(
    time: ArrayLike,
    event: ArrayLike,
    covariates: ArrayLike,
    offset: ArrayLike | None = None,
    *,
    gtol: float = 1e-9,
) -> dict:
    """Fit the Weibull PH model ``H(t) = t**shape * exp(intercept + x.beta + offset)`` by ML.

    The covariates are centred and scaled internally (for conditioning) and the estimates
    are reported on their own scale. The optimiser is ``scipy.optimize.minimize`` with the
    analytic gradient and Hessian (``trust-exact``); the covariance is the inverse observed
    information.

    Parameters
    ----------
    time : array_like
        Follow-up times (> 0), shape ``(n,)``.
    event : array_like
        Event indicators (0/1), shape ``(n,)``.
    covariates : array_like
        Covariate matrix, shape ``(n, p)``, without an intercept column.
    offset : array_like, optional
        A known term of each patient's log hazard, e.g. the true centre effect.
    gtol : float
        Convergence tolerance on the gradient (of the standardised problem, per patient).

    Returns
    -------
    dict
        ``intercept``, ``shape``, ``beta`` (array ``(p,)``), ``cov`` (covariance of
        ``(intercept, shape, *beta)``), ``se`` (its square-root diagonal), ``log_likelihood``.

    Raises
    ------
    ValueError
        If a time is not positive or a covariate is constant.
    RuntimeError
        If the optimiser does not converge.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(size=(20000, 1))
    >>> t = (rng.standard_exponential(20000) * np.exp(-(0.5 * x[:, 0] - 1.0))) ** (1 / 1.5)
    >>> fit = weibull_ph_mle(t, np.ones(20000), x)
    >>> bool(abs(fit["shape"] - 1.5) < 0.05 and abs(fit["beta"][0] - 0.5) < 0.05)
    True
    """
    time, event, x, offset = _as_arrays(time, event, covariates, offset)
    z, mean, scale = _standardized_design(x)
    theta0 = _exponential_start(time, event, offset, x.shape[1])
    theta, info, log_likelihood = _maximize(z, np.log(time), event, offset, theta0, gtol)
    return _original_scale(theta, info, mean, scale, log_likelihood)
