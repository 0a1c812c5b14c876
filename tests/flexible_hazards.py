"""A clustered survival table whose baseline hazard rises then falls, with its exact truth.

The baseline is log-logistic, ``H0(t) = log(1 + (t / scale)**k)`` (``k > 1``: the hazard
rises to a peak at ``scale (k - 1)**(1/k)`` and falls after it, like sarcoma relapses),
under proportional hazards: ``H(t | x, u) = exp(eta + u) H0(t)``. Times are drawn by
inverting ``H`` (``t = scale (exp(E exp(-eta - u)) - 1)**(1/k)``, ``E ~ Exp(1)``); censoring
is administrative (uniform entry over ``accrual`` months, cut-off ``follow_up`` months
after the first patient). ``weibull_table`` draws the same table with a Weibull baseline.

Kept local to the tests (an independent simulator that knows the truth), so the models
are checked against code they do not share. Usage: ``from flexible_hazards import
loglogistic_table`` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: The log-logistic baseline: peak hazard at 25 (1.5)^(1/2.5) = 29.4 months.
SCALE, K = 25.0, 2.5
#: Effects: intercept, a centre-level binary treatment, a continuous patient term (per SD).
INTERCEPT, BETA_TREATED, BETA_AGE, CENTER_SD = -0.6, -0.4, 0.3, 0.3
TIMES = (12.0, 36.0, 60.0, 96.0)


def loglogistic_h0(t):
    """The log-logistic cumulative baseline hazard."""
    return np.log1p((np.asarray(t, float) / SCALE) ** K)


def weibull_h0(t, shape: float = 1.3, scale: float = 60.0):
    """A Weibull cumulative baseline hazard (monotone hazard), for the control data."""
    return (np.asarray(t, float) / scale) ** shape


def _draw(rng, n: int, n_centers: int):
    center = rng.integers(n_centers, size=n)
    treated_center = (np.arange(n_centers) % 2 == 0).astype(float)
    u = rng.normal(0.0, CENTER_SD, n_centers)
    age = rng.normal(0.0, 1.0, n)
    eta = INTERCEPT + BETA_TREATED * treated_center[center] + BETA_AGE * age
    return center, treated_center[center], age, eta + u[center]


def _table(rng, n, n_centers, invert, accrual=60.0, follow_up=130.0):
    center, treated, age, eta = _draw(rng, n, n_centers)
    event_time = invert(rng.standard_exponential(n) * np.exp(-eta))
    censor = follow_up - rng.uniform(0.0, accrual, n)
    time = np.minimum(event_time, censor)
    return pd.DataFrame(
        {
            "time": time,
            "event": (event_time <= censor).astype(int),
            "treated": treated,
            "age": age,
            "center": [f"C{c:02d}" for c in center],
        }
    )


def loglogistic_table(n: int = 600, n_centers: int = 20, random_seed: int = 0) -> pd.DataFrame:
    """Return a table (``time``, ``event``, ``treated``, ``age``, ``center``), log-logistic."""
    rng = np.random.default_rng(random_seed)
    return _table(rng, n, n_centers, lambda h: SCALE * np.expm1(h) ** (1.0 / K))


def weibull_table(n: int = 600, n_centers: int = 20, random_seed: int = 0) -> pd.DataFrame:
    """The same design with a Weibull baseline ``(t / 60)**1.3``."""
    rng = np.random.default_rng(random_seed)
    return _table(rng, n, n_centers, lambda h: 60.0 * h ** (1.0 / 1.3))


def true_standardized(data: pd.DataFrame, times=TIMES, h0=loglogistic_h0) -> dict:
    """Exact standardized survival of each arm over ``data``'s ages and a new centre.

    ``S_a(t) = mean_i E_u[exp(-exp(eta_i(a) + u) H0(t))]``, ``u ~ Normal(0, CENTER_SD)``,
    by 80-node Gauss-Hermite (NumPy's ``hermegauss``; exact to ~1e-15 here).
    """
    z, w = np.polynomial.hermite_e.hermegauss(80)
    w = w / w.sum()
    out = {}
    for arm, value in (("treated", 1.0), ("control", 0.0)):
        eta = INTERCEPT + BETA_TREATED * value + BETA_AGE * data["age"].to_numpy()
        h = np.exp(eta[:, None, None] + CENTER_SD * z) * h0(np.asarray(times))[None, :, None]
        out[arm] = (np.exp(-h) @ w).mean(axis=0)
    return out
