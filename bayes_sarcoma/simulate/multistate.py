"""Simulate registry histories from the multi-state model, with its truth (DESIGN.md 3.4).

The registry simulator (:mod:`bayes_sarcoma.simulate.registry`) draws three latent times
sharing one centre effect; this one draws from the multi-state model of
:mod:`bayes_sarcoma.math.multistate` itself, with a centre effect per transition and a
chosen correlation between them, so that the transition hazard ratios and the centre
correlations have exact true values to recover. Per patient ``i`` of centre ``c``:

1. ``u_c ~ MvNormal(0, diag(s) R diag(s))`` over the four transitions.
2. Latent Weibull PH times ``T_L``, ``T_D``, ``T_M`` (local relapse, distant relapse,
   death without relapse) with ``H_k(t) = t**alpha_k exp(eta_ik + u_ck)``.
3. The first relapse ``r = min(T_L, T_D)``; if ``T_M < r`` the patient dies at ``T_M``
   without relapse; otherwise death after relapse at ``T_R`` with
   ``H_R(T_R) - H_R(r) = E`` (forward clock) or ``H_R(T_R - r) = E`` (reset), ``E ~ Exp(1)``.
   A local relapse after a distant one happens at ``T_L`` if before death (the local
   hazard is the same in both states).
4. Censoring at a uniform follow-up; dates at whole days (at least one day).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from bayes_sarcoma.data import schema
from bayes_sarcoma.math.multistate import CLOCKS, TRANSITIONS

#: True parameters of :func:`simulate_histories` by default: log-HRs of ``expert_center``
#: and age (per 10 years) per transition; expert surgery acts on local relapse most.
DEFAULT_TRUTH = {
    "intercept": {
        "local_relapse": -6.6,
        "distant_relapse": -7.1,
        "death": -9.8,
        "death_after_relapse": -5.0,
    },
    "shape": {
        "local_relapse": 1.1,
        "distant_relapse": 1.2,
        "death": 1.3,
        "death_after_relapse": 1.0,
    },
    "beta": {
        "expert_center": {
            "local_relapse": -0.6,
            "distant_relapse": -0.2,
            "death": -0.1,
            "death_after_relapse": 0.0,
        },
        "age": {
            "local_relapse": 0.01,
            "distant_relapse": 0.01,
            "death": 0.04,
            "death_after_relapse": 0.02,
        },
    },
    "center_sd": {
        "local_relapse": 0.5,
        "distant_relapse": 0.4,
        "death": 0.3,
        "death_after_relapse": 0.3,
    },
    "center_corr": 0.5,  # between every pair of transitions
}


def _vector(truth: Mapping, key: str) -> np.ndarray:
    return np.array([truth[key][k] for k in TRANSITIONS], dtype=float)


def _correlation(value) -> np.ndarray:
    k = len(TRANSITIONS)
    corr = np.asarray(value, dtype=float)
    if corr.ndim == 0:
        corr = np.full((k, k), float(corr))
        np.fill_diagonal(corr, 1.0)
    if corr.shape != (k, k) or np.any(np.linalg.eigvalsh(corr) <= 0):
        raise ValueError(f"center_corr must be a {k} x {k} positive definite correlation matrix")
    return corr


def _weibull_inverse(h: np.ndarray, eta: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Return ``t`` with ``t**shape exp(eta) = h``."""
    return np.exp((np.log(h) - eta) / shape)


def _latent_months(rng, eta, shape, clock):
    """Return the months of local relapse, distant relapse and death (inf: never)."""
    n = eta.shape[0]
    t_l, t_d, t_m = (
        _weibull_inverse(rng.standard_exponential(n), eta[:, j], shape[j]) for j in range(3)
    )
    first = np.minimum(t_l, t_d)
    relapsed = first < t_m
    e = rng.standard_exponential(n)
    a, b = shape[3], eta[:, 3]
    if clock == "forward":
        h_at_relapse = np.exp(a * np.log(first) + b)
        after = _weibull_inverse(h_at_relapse + e, b, a)
    else:
        after = first + _weibull_inverse(e, b, a)
    death = np.where(relapsed, after, t_m)
    local = np.where(t_l < death, t_l, np.inf)
    distant = np.where(relapsed & (t_d < t_l), t_d, np.inf)
    return local, distant, death


def simulate_histories(
    n_patients: int = 3000,
    n_centers: int = 60,
    *,
    truth: Mapping | None = None,
    clock: str = "forward",
    expert_share: float = 0.4,
    follow_up: tuple[float, float] = (24.0, 120.0),
    random_seed: int | None = None,
) -> pd.DataFrame:
    """Return a registry of dates drawn from the multi-state model, truth in ``attrs``.

    Parameters
    ----------
    n_patients, n_centers : int
        Patients, spread over centres of equal expected size.
    truth : mapping, optional
        True parameters in the form of :data:`DEFAULT_TRUTH` (terms ``expert_center`` and
        ``age``; ``center_corr`` a number or a 4 x 4 matrix).
    clock : {"forward", "reset"}
        Clock of death after relapse.
    expert_share : float
        Share of centres that are expert centres.
    follow_up : (float, float)
        Follow-up is uniform between these months (administrative censoring).
    random_seed : int, optional
        Seed.

    Returns
    -------
    pandas.DataFrame
        ``patient_id``, ``center_id``, ``expert_center``, ``age`` and the registry's date
        columns; ``attrs["truth"]`` the parameters (``center_corr`` as a matrix) and clock.

    Examples
    --------
    >>> df = simulate_histories(500, 20, random_seed=1)
    >>> df.attrs["truth"]["clock"], len(df)
    ('forward', 500)
    """
    truth, corr = _checked(truth, clock)
    rng = np.random.default_rng(random_seed)
    u = _center_effects(rng, truth, corr, n_centers)
    expert_center = rng.random(n_centers) < expert_share
    center = rng.integers(0, n_centers, n_patients)
    age = _ages(rng, n_patients)
    eta = _eta(truth, u[center], expert_center[center], age)
    local, distant, death = _latent_months(rng, eta, _vector(truth, "shape"), clock)
    censor = rng.uniform(*follow_up, n_patients)
    frame = _dates(rng, local, distant, death, censor)
    frame.insert(0, schema.PATIENT_ID, [f"P{i + 1:05d}" for i in range(n_patients)])
    frame.insert(1, schema.CENTER_ID, [f"C{c + 1:03d}" for c in center])
    frame.insert(2, schema.EXPERT, expert_center[center])
    frame.insert(3, "age", age)
    frame.attrs["truth"] = {
        **truth,
        "center_corr": corr.tolist(),
        "clock": clock,
        "center_effect": u.tolist(),
    }
    return frame


def population_survival(
    times,
    *,
    expert: bool,
    n_patients: int = 200_000,
    truth: Mapping | None = None,
    clock: str = "forward",
    random_seed: int | None = None,
) -> dict[str, np.ndarray]:
    """Return LRFS, RFS and OS survival at ``times`` of a large uncensored population.

    Every patient is operated at an expert centre (``expert=True``) or at none, each at a
    new centre (its own draw of the centre effects); ages as in
    :func:`simulate_histories`. The true standardized survival, up to Monte Carlo error
    ``sqrt(S (1 - S) / n_patients)`` (below 0.0012 at the default size).

    Examples
    --------
    >>> out = population_survival([36.0], expert=True, n_patients=20_000, random_seed=1)
    >>> bool(out["RFS"][0] <= out["LRFS"][0] <= out["OS"][0])
    True
    """
    truth, corr = _checked(truth, clock)
    rng = np.random.default_rng(random_seed)
    u = _center_effects(rng, truth, corr, n_patients)
    eta = _eta(truth, u, np.full(n_patients, bool(expert)), _ages(rng, n_patients))
    local, distant, death = _latent_months(rng, eta, _vector(truth, "shape"), clock)
    t = np.asarray(times, dtype=float)[:, None]
    rfs = np.minimum(np.minimum(local, distant), death)
    return {
        "LRFS": (np.minimum(local, death) > t).mean(axis=1),
        "RFS": (rfs > t).mean(axis=1),
        "OS": (death > t).mean(axis=1),
    }


def _checked(truth: Mapping | None, clock: str) -> tuple[dict, np.ndarray]:
    if clock not in CLOCKS:
        raise ValueError(f"clock={clock!r}: choose one of {CLOCKS}")
    truth = dict(DEFAULT_TRUTH if truth is None else truth)
    return truth, _correlation(truth["center_corr"])


def _center_effects(rng, truth: Mapping, corr: np.ndarray, n: int) -> np.ndarray:
    sd = _vector(truth, "center_sd")
    return rng.multivariate_normal(np.zeros(len(TRANSITIONS)), corr * np.outer(sd, sd), n)


def _ages(rng, n: int) -> np.ndarray:
    return np.round(rng.normal(58.0, 15.0, n).clip(18, 95), 1)


def _eta(truth: Mapping, u: np.ndarray, expert: np.ndarray, age: np.ndarray) -> np.ndarray:
    beta = {term: _vector(truth["beta"], term) for term in truth["beta"]}
    eta = _vector(truth, "intercept") + u
    return eta + np.outer(expert, beta["expert_center"]) + np.outer(age, beta["age"])


def _dates(rng, local, distant, death, censor) -> pd.DataFrame:
    """Registry dates from months (whole days, at least one; unseen events NaT)."""
    n = local.size
    surgery = np.datetime64("2010-01-01") + rng.integers(0, 3 * 365, n).astype("timedelta64[D]")

    def days(months):
        return np.maximum(1, np.rint(np.minimum(months, 1e6) * schema.DAYS_PER_MONTH))

    end = days(np.minimum(death, censor))
    cols = {schema.SURGERY_DATE: surgery.astype("datetime64[ns]")}
    for column, months in (
        (schema.LOCAL_RELAPSE_DATE, local),
        (schema.DISTANT_RELAPSE_DATE, distant),
        (schema.DEATH_DATE, death),
    ):
        d = np.minimum(days(months), end)
        seen = months <= censor
        when = surgery + d.astype("int64").astype("timedelta64[D]")
        cols[column] = np.where(seen, when.astype("datetime64[ns]"), np.datetime64("NaT", "ns"))
    last = surgery + end.astype("int64").astype("timedelta64[D]")
    cols[schema.LAST_FOLLOWUP_DATE] = last.astype("datetime64[ns]")
    return pd.DataFrame(cols)
