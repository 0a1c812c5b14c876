"""Scenarios of the registry simulator that the Weibull PH model cannot express.

:func:`~bayes_sarcoma.simulate_registry` takes ``scenario=`` one of :data:`SCENARIOS`:

``"weibull"`` (default)
    Each cause ``k`` (local relapse, distant relapse, death) has a Weibull PH hazard,
    ``H_k(t | x, u) = t**alpha_k * exp(eta_k + u)`` (months).
``"rise_fall"``
    A hazard that rises then falls, as sarcoma relapse hazards do (local relapse peaks one
    to two years after surgery): each cause has a log-logistic baseline under proportional
    hazards,

    ``h_k(t | x, u) = h0_k(t) exp(eta_k + u)``, ``H0_k(t) = log(1 + (t / lam_k)**kappa_k)``,
    ``h0_k(t) = (kappa_k / lam_k) (t / lam_k)**(kappa_k - 1) / (1 + (t / lam_k)**kappa_k)``,

    which for ``kappa_k > 1`` rises from 0 to its peak at ``t = lam_k (kappa_k - 1)**(1 / kappa_k)``
    and then falls like ``kappa_k / t``. The log hazard ratios ``beta_k`` are exact (the
    hazard is proportional in every term). Given ``x`` and ``u`` the time is a Burr XII
    variable (``scipy.stats.burr12(c=kappa_k, d=exp(eta_k + u), scale=lam_k)``).
    In the configuration, a cause's ``shape`` is ``kappa_k`` and ``scale`` is ``lam_k``.
``"waning_expert"``
    Weibull baselines, but the expert centre's log hazard ratio wanes with time,
    ``beta_k(t) = beta_k * exp(-t / tau)`` (``beta_k`` the cause's ``expert_center``
    coefficient, the effect at surgery; ``tau`` = ``expert_waning_months``): strongest
    early, fading to no effect. Proportional hazards fail for the expert term only. For
    an expert patient ``H_k(t | x, u) = exp(eta0_k + u) I_k(t)`` (``eta0_k`` without the
    expert term) with

    ``I_k(t) = integral_0^t alpha_k s**(alpha_k - 1) exp(beta_k exp(-s / tau)) ds
    = t**alpha_k + sum_{n >= 1} beta_k**n / n! (tau / n)**alpha_k Gamma(alpha_k + 1)
    P(alpha_k, n t / tau)``

    (expand the exponential, integrate term by term; ``P`` is the regularised lower
    incomplete gamma function, ``scipy.special.gammainc``). The series is summed until its
    terms' bound ``|beta_k|**n / n! t**alpha_k`` is below ``1e-17`` of the sum: exact to
    rounding, which the tests check against ``scipy.integrate.quad`` to ``1e-10``.

Times are drawn by exact inversion of the cumulative hazard, ``H_k(T) = E``, ``E ~ Exp(1)``
(the same exponential draws as the default, so the centres and covariates of a seed do
not change with the scenario): in closed form for ``"weibull"`` and ``"rise_fall"``
(``T = lam (exp(E exp(-eta)) - 1)**(1 / kappa)``), by a bracketing root finder
(``scipy.optimize.elementwise.find_root``, to a few ulps) on the closed-form ``I_k`` for
``"waning_expert"``: ``exp(min(beta, 0)) t**alpha <= I_k(t) <= exp(max(beta, 0)) t**alpha``
brackets each root.

The scenarios' default settings are in :func:`scenario_settings`; ``causes=`` and
``shapes=`` of ``simulate_registry`` are merged over them.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special
from scipy.optimize import elementwise

#: Scenario names of ``simulate_registry(scenario=...)``, the default first.
SCENARIOS = ("weibull", "rise_fall", "waning_expert")

# rise_fall: log-logistic baselines (scale lam in months, shape kappa), peaks at
# lam (kappa - 1)**(1 / kappa): local relapse 17.6 months, distant relapse 11.8, death 30.
_LOGLOGISTIC = {
    "local": {"scale": 15.0, "shape": 2.5},
    "distant": {"scale": 10.0, "shape": 2.5},
    "death": {"scale": 30.0, "shape": 2.0},
}
#: Months at which the rise_fall intercepts match the default cumulative hazards.
RISE_FALL_MATCH_MONTHS = 60.0
# waning_expert: the expert log hazard ratios at surgery (local, distant, death) and tau.
_WANING_BETA = {"local": -1.2, "distant": -0.7, "death": -0.9}
_WANING_MONTHS = 24.0


def scenario_name(cfg: dict) -> str:
    """Return the scenario of a simulation configuration (``"weibull"`` when it has none)."""
    return cfg.get("scenario", {}).get("name", "weibull")


def scenario_settings(name: str, defaults: dict) -> dict:
    """Return the configuration overrides that make a scenario.

    Parameters
    ----------
    name : str
        One of :data:`SCENARIOS`.
    defaults : dict
        The default configuration (``config.default_config()``), whose intercepts the
        ``"rise_fall"`` scenario adapts.

    Returns
    -------
    dict
        ``{"scenario": {...}, "causes": {...}}``; empty for ``"weibull"``. For
        ``"rise_fall"`` each cause's ``shape`` and ``scale`` are its log-logistic ones and
        its intercept is moved so that every patient's cumulative hazard at
        :data:`RISE_FALL_MATCH_MONTHS` equals the default Weibull one (about the same
        5-year survival, another hazard shape): ``intercept + alpha log 60 -
        log(log(1 + (60 / lam)**kappa))``. For ``"waning_expert"`` the expert coefficients
        are the effects at surgery, -1.2, -0.7, -0.9 (local, distant, death; twice the
        default's, so that the early effect is strong), waning with ``tau = 24`` months.

    Examples
    --------
    >>> from bayes_sarcoma.simulate.config import default_config
    >>> scenario_settings("waning_expert", default_config())["scenario"]
    {'name': 'waning_expert', 'expert_waning_months': 24.0}
    """
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; use one of {', '.join(SCENARIOS)}")
    if name == "weibull":
        return {}
    if name == "waning_expert":
        return {
            "scenario": {"name": name, "expert_waning_months": _WANING_MONTHS},
            "causes": {k: {"beta": {"expert_center": b}} for k, b in _WANING_BETA.items()},
        }
    t = RISE_FALL_MATCH_MONTHS
    causes = {}
    for cause, par in _LOGLOGISTIC.items():
        weibull = defaults["causes"][cause]
        h0 = float(loglogistic_cumulative_hazard(t, par["scale"], par["shape"]))
        icpt = weibull["intercept"] + weibull["shape"] * math.log(t) - math.log(h0)
        causes[cause] = {"intercept": round(icpt, 3), **par}
    return {"scenario": {"name": name, "baseline": "loglogistic"}, "causes": causes}


# --------------------------------------------------------------------------- rise_fall


def loglogistic_cumulative_hazard(
    t: ArrayLike, scale: ArrayLike, shape: ArrayLike
) -> NDArray[np.float64]:
    """Return ``H0(t) = log(1 + (t / scale)**shape)`` (``log1p(exp(z))``, stable for large t).

    Examples
    --------
    >>> float(loglogistic_cumulative_hazard(15.0, 15.0, 2.5)) == float(np.log(2.0))
    True
    """
    with np.errstate(divide="ignore"):
        z = np.asarray(shape, float) * (np.log(np.asarray(t, float)) - np.log(scale))
    return np.logaddexp(0.0, z)


def loglogistic_hazard(t: ArrayLike, scale: ArrayLike, shape: ArrayLike) -> NDArray[np.float64]:
    """Return ``h0(t) = (shape / scale) (t / scale)**(shape - 1) / (1 + (t / scale)**shape)``."""
    t, scale, shape = (np.asarray(v, float) for v in (t, scale, shape))
    r = t / scale
    return shape / scale * r ** (shape - 1.0) / (1.0 + r**shape)


def loglogistic_times(
    e: ArrayLike, eta: ArrayLike, scale: ArrayLike, shape: ArrayLike
) -> NDArray[np.float64]:
    """Invert ``exp(eta) H0(T) = e``: ``T = scale * (exp(e exp(-eta)) - 1)**(1 / shape)``.

    Computed as ``log T = log scale + log(expm1(y)) / shape``, ``y = e exp(-eta)``, with
    ``log(expm1(y)) = y + log(-expm1(-y))``, finite for any ``y > 0``.
    """
    y = np.asarray(e, float) * np.exp(-np.asarray(eta, float))
    log_expm1 = y + np.log(-np.expm1(-y))
    return np.exp(np.log(scale) + log_expm1 / np.asarray(shape, float))


# --------------------------------------------------------------------------- waning_expert


def waning_log_hazard_ratio(t: ArrayLike, beta: ArrayLike, tau: float) -> NDArray[np.float64]:
    """Return the expert log hazard ratio at time ``t``: ``beta * exp(-t / tau)``."""
    return np.asarray(beta, float) * np.exp(-np.asarray(t, float) / tau)


def _series_terms(beta: float) -> int:
    """Return N such that ``|beta|**n / n! < 1e-17 exp(-|beta|)`` from n = N on."""
    b, n, term = abs(float(beta)), 0, 1.0
    while term >= 1e-17 * math.exp(-b) or n < b:
        n += 1
        term *= b / n
    return n


def waning_integral(t: ArrayLike, beta: float, shape: float, tau: float) -> NDArray[np.float64]:
    """Return ``I(t) = integral_0^t shape s**(shape - 1) exp(beta exp(-s / tau)) ds``.

    The expert patient's baseline cumulative hazard of the ``"waning_expert"`` scenario
    (module docstring), by its series in the regularised incomplete gamma function.

    Examples
    --------
    >>> float(waning_integral(3.0, 0.0, 1.5, 24.0)) == 3.0**1.5
    True
    """
    t = np.asarray(t, dtype=float)
    out = t**shape
    if beta == 0.0:
        return out
    log_g = special.gammaln(shape + 1.0)
    coef = 1.0
    for n in range(1, _series_terms(beta) + 1):
        coef *= beta / n
        out = out + coef * np.exp(shape * math.log(tau / n) + log_g) * special.gammainc(
            shape, n * t / tau
        )
    return out


def waning_hazard(t: ArrayLike, beta: float, shape: float, tau: float) -> NDArray[np.float64]:
    """Return the expert patient's baseline hazard ``shape t**(shape-1) exp(beta(t))``."""
    t = np.asarray(t, dtype=float)
    return shape * t ** (shape - 1.0) * np.exp(waning_log_hazard_ratio(t, beta, tau))


def waning_times(
    e: ArrayLike, eta0: ArrayLike, beta: float, shape: float, tau: float
) -> NDArray[np.float64]:
    """Invert ``exp(eta0) I(T) = e`` for the expert patients' times (module docstring).

    Solved for ``log T`` by ``scipy.optimize.elementwise.find_root`` inside the bracket
    ``(log y - max(beta, 0)) / shape <= log T <= (log y - min(beta, 0)) / shape``,
    ``y = e exp(-eta0)``, widened by ``1e-9``.
    """
    log_y = np.log(np.asarray(e, float)) - np.asarray(eta0, float)
    if log_y.size == 0 or beta == 0.0:
        return np.exp(log_y / shape)
    lo = (log_y - max(beta, 0.0)) / shape - 1e-9
    hi = (log_y - min(beta, 0.0)) / shape + 1e-9

    def f(log_t, log_y):
        return np.log(waning_integral(np.exp(log_t), beta, shape, tau)) - log_y

    res = elementwise.find_root(f, (lo, hi), args=(log_y,))
    if not np.all(res.success):
        raise FloatingPointError(f"waning_times: {np.sum(~res.success)} roots not found")
    return np.exp(res.x)
