"""Closed forms of the Weibull proportional-hazards model, in NumPy.

One patient with linear predictor ``eta`` and shape ``alpha`` (DESIGN.md section 3)::

    h(t) = alpha * t**(alpha - 1) * exp(eta)
    H(t) = t**alpha * exp(eta)
    S(t) = exp(-H(t))

Everything here broadcasts, so posterior draws, patients and times can be stacked on
separate axes. Cumulative hazards are computed in log space (``alpha * log t + eta``)
so that large times and extreme linear predictors stay finite. The same formulas are
written in PyTensor in :mod:`bayes_sarcoma.model.graph` for sampling; tests check both
against ``scipy.stats.weibull_min``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

LOG_LOG_2 = float(np.log(np.log(2.0)))


def _log(t: ArrayLike) -> NDArray[np.float64]:
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(t, dtype=float))


def log_cumulative_hazard(t: ArrayLike, eta: ArrayLike, shape: ArrayLike) -> NDArray[np.float64]:
    """Return ``log H(t) = shape * log(t) + eta`` (``-inf`` at ``t = 0``)."""
    log_t = _log(t)
    shape = np.asarray(shape, dtype=float)
    with np.errstate(invalid="ignore"):
        out = np.where(np.isneginf(log_t), -np.inf, shape * log_t + np.asarray(eta, dtype=float))
    return out


def cumulative_hazard(t: ArrayLike, eta: ArrayLike, shape: ArrayLike) -> NDArray[np.float64]:
    """Return the cumulative hazard ``H(t) = t**shape * exp(eta)``."""
    return np.exp(log_cumulative_hazard(t, eta, shape))


def survival(t: ArrayLike, eta: ArrayLike, shape: ArrayLike) -> NDArray[np.float64]:
    """Return the survival function ``S(t) = exp(-H(t))``.

    Examples
    --------
    >>> float(survival(0.0, 0.3, 1.4))
    1.0
    >>> round(float(survival(median(0.3, 1.4), 0.3, 1.4)), 12)
    0.5
    """
    return np.exp(-cumulative_hazard(t, eta, shape))


def hazard(t: ArrayLike, eta: ArrayLike, shape: ArrayLike) -> NDArray[np.float64]:
    """Return the hazard ``h(t) = shape * t**(shape - 1) * exp(eta)``."""
    shape = np.asarray(shape, dtype=float)
    with np.errstate(invalid="ignore"):
        log_h = np.log(shape) + (shape - 1.0) * _log(t) + np.asarray(eta, dtype=float)
    return np.exp(log_h)


def quantile(q: ArrayLike, eta: ArrayLike, shape: ArrayLike) -> NDArray[np.float64]:
    """Return the time by which a fraction ``q`` has had the event (``S(t) = 1 - q``)."""
    q = np.asarray(q, dtype=float)
    log_h = np.log(-np.log1p(-q))
    return np.exp((log_h - np.asarray(eta, dtype=float)) / np.asarray(shape, dtype=float))


def median(eta: ArrayLike, shape: ArrayLike) -> NDArray[np.float64]:
    """Return the median survival time ``(log 2 * exp(-eta))**(1 / shape)``."""
    return np.exp((LOG_LOG_2 - np.asarray(eta, dtype=float)) / np.asarray(shape, dtype=float))


def restricted_mean(horizon: ArrayLike, eta: ArrayLike, shape: ArrayLike) -> NDArray[np.float64]:
    """Return the restricted mean survival time ``RMST(tau) = integral_0^tau S(t) dt``.

    With ``lam = exp(eta)`` the integral has the closed form
    ``lam**(-1/shape) * Gamma(1 + 1/shape) * P(1/shape, lam * tau**shape)``, where ``P`` is
    the regularised lower incomplete gamma function (``scipy.special.gammainc``).
    """
    shape = np.asarray(shape, dtype=float)
    eta = np.asarray(eta, dtype=float)
    a = 1.0 / shape
    log_scale = -eta * a + special.gammaln(1.0 + a)
    return np.exp(log_scale) * special.gammainc(a, cumulative_hazard(horizon, eta, shape))


def log_likelihood(
    time: ArrayLike,
    event: ArrayLike,
    eta: ArrayLike,
    shape: ArrayLike,
    entry: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Return each patient's log-likelihood (DESIGN.md section 3).

    ``d * (log a + (a - 1) log t + eta) - t**a * exp(eta) + entry**a * exp(eta)``, the
    last term only with delayed entry (left truncation). Event times must be positive.
    """
    event = np.asarray(event, dtype=float)
    shape = np.asarray(shape, dtype=float)
    eta = np.asarray(eta, dtype=float)
    log_t = _log(time)
    with np.errstate(invalid="ignore"):
        log_density = np.where(event > 0, np.log(shape) + (shape - 1.0) * log_t + eta, 0.0)
    out = event * log_density - cumulative_hazard(time, eta, shape)
    if entry is not None:
        out = out + cumulative_hazard(entry, eta, shape)
    return out


def sample_times(
    rng: np.random.Generator, eta: ArrayLike, shape: ArrayLike, size=None
) -> NDArray[np.float64]:
    """Draw event times by inversion: ``T = (E * exp(-eta))**(1/shape)``, ``E ~ Exp(1)``."""
    eta = np.asarray(eta, dtype=float)
    shape = np.asarray(shape, dtype=float)
    if size is None:
        size = np.broadcast_shapes(eta.shape, shape.shape)
    e = rng.standard_exponential(size)
    return np.exp((np.log(e) - eta) / shape)


def to_pymc_beta(eta: ArrayLike, shape: ArrayLike) -> NDArray[np.float64]:
    """Return the scale of ``pymc.Weibull(alpha=shape, beta=...)``: ``exp(-eta / shape)``."""
    return np.exp(-np.asarray(eta, dtype=float) / np.asarray(shape, dtype=float))


def from_survreg(coef: ArrayLike, scale: ArrayLike) -> tuple[NDArray, NDArray]:
    """Convert R ``survreg``/lifelines AFT estimates to this package's PH form.

    Parameters
    ----------
    coef : array_like
        AFT coefficients (log time scale), intercept included.
    scale : array_like
        The AFT scale ``sigma`` (``survreg``'s ``scale``; lifelines' ``exp(rho_)**-1``).

    Returns
    -------
    ph_coef, shape
        ``-coef / scale`` and ``1 / scale``.
    """
    scale = np.asarray(scale, dtype=float)
    return -np.asarray(coef, dtype=float) / scale, 1.0 / scale


def time_ratio(log_hazard_ratio: ArrayLike, shape: ArrayLike) -> NDArray[np.float64]:
    """Return the time (acceleration) ratio ``exp(-beta / shape)`` of a PH coefficient."""
    return np.exp(-np.asarray(log_hazard_ratio, dtype=float) / np.asarray(shape, dtype=float))
