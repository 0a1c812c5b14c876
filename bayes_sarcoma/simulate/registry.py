"""Simulate a NETSARC-like multi-centre sarcoma registry that knows its own truth.

The mechanism (DESIGN.md sections 1, 3 and 5), per patient ``i`` of centre ``c``:

1. Centres: ``n_expert_centers`` expert centres (ids ``E01``...) of varied sizes hold a
   share ``expert_share`` of the patients; the others are spread over many hospitals
   (ids ``H0001``...) whose sizes follow a discrete power law (a zeta law truncated at
   ``hospital_size_cap``), so most hospitals treat one or two patients.
2. Covariates: age, sex, tumour size, grade, depth and margin, drawn by group. Expert
   centres treat *worse* patients (older, larger, higher-grade, deeper tumours:
   confounding by indication) but obtain more R0 resections.
3. One centre effect ``u_c ~ Normal(0, center_sd)`` and three latent cause-specific
   Weibull PH times (local relapse, distant relapse, death), conditionally independent
   given the covariates and ``u_c``, each with ``H_k(t) = t**shape_k * exp(eta_k + u_c)``
   (months). ``u_c`` enters the three log hazards with coefficient one, so it is an exact
   multiplicative frailty for every endpoint.
4. Surgery dates uniform over the accrual period; censoring at the earlier of an
   administrative cut-off and a random loss to follow-up; death censors the relapses;
   times are rounded to whole days (at least one). The endpoints are then derived from
   the dates by :func:`bayes_sarcoma.data.endpoints.derive_endpoints`.

OS is the death time, exactly the hierarchical Weibull PH model (``exact: True``). LRFS
(local relapse or death) and RFS (any relapse or death) have sums of Weibull hazards, so
their ``intercept``, ``shape`` and ``beta`` are pseudo-true values (see
:func:`pseudo_true_parameters`); their ``standardized`` survival is exact.

The settings of :func:`simulate_registry` left as None take their value from
:func:`~bayes_sarcoma.simulate.config.default_config`, calibrated so that the crude
Kaplan-Meier medians match the published NETSARC figures (LRFS 60 vs 41 months, RFS 25 vs
21 months, expert vs other), with a true expert OS hazard ratio of 0.65 and a 5-year OS near
68%.

Examples
--------
>>> df = simulate_registry(2000, random_seed=1)
>>> df.attrs["truth"]["OS"]["exact"], df.attrs["truth"]["LRFS"]["exact"]
(True, False)
>>> bool((df["rfs_months"] <= df["lrfs_months"]).all())
True
"""

from __future__ import annotations

import copy
import functools
import json

import numpy as np
import pandas as pd
from scipy import special

from bayes_sarcoma.data import schema
from bayes_sarcoma.data.endpoints import derive_endpoints
from bayes_sarcoma.simulate import missing as missing_values
from bayes_sarcoma.simulate import scenarios, truth
from bayes_sarcoma.simulate.config import _plain, default_config, make_config

#: Size of the registry the pseudo-true values of a non-default configuration come from.
PSEUDO_TRUTH_SIZE = 200_000
#: Seed of the registry the pseudo-true values are computed on.
PSEUDO_TRUTH_SEED = 20100101


# --------------------------------------------------------------------------- mechanism


def _draw_centers(n: int, cfg: dict, rng: np.random.Generator):
    """Return (centre index per patient, centre labels, expert flag per centre)."""
    c = cfg["centers"]
    n_expert = round(c["expert_share"] * n) if c["n_expert_centers"] > 0 else 0
    k = int(c["n_expert_centers"]) if n_expert > 0 else 0
    sizes = np.zeros(k, dtype=np.int64)
    if k:
        floor = min(int(c["expert_min_size"]), n_expert // k)
        weights = rng.lognormal(0.0, c["expert_size_log_sd"], k)
        sizes = floor + rng.multinomial(n_expert - floor * k, weights / weights.sum())
    n_other = n - n_expert
    hosp = np.zeros(0, dtype=np.int64)
    if n_other:
        support = np.arange(1, int(c["hospital_size_cap"]) + 1)
        pmf = support ** -float(c["hospital_size_exponent"])
        draws = rng.choice(support, size=n_other, p=pmf / pmf.sum())
        total = np.cumsum(draws)
        m = int(np.searchsorted(total, n_other)) + 1
        hosp = draws[:m].copy()
        hosp[-1] = n_other - (total[m - 2] if m > 1 else 0)
    keep = sizes > 0
    width_e = max(2, len(str(k)))
    width_h = max(4, len(str(hosp.size)))
    labels = [f"E{j + 1:0{width_e}d}" for j in np.flatnonzero(keep)]
    labels += [f"H{j + 1:0{width_h}d}" for j in range(hosp.size)]
    all_sizes = np.concatenate([sizes[keep], hosp])
    is_expert = np.arange(all_sizes.size) < keep.sum()
    center = rng.permutation(np.repeat(np.arange(all_sizes.size), all_sizes))
    return center, np.asarray(labels, dtype=object), is_expert


def _truncated(rng, n, mean, sd, lo, hi):
    """Normal(mean, sd) truncated to [lo, hi], by inversion (vectorised)."""
    a, b = special.ndtr((lo - mean) / sd), special.ndtr((hi - mean) / sd)
    return mean + sd * special.ndtri(a + (b - a) * rng.random(n))


def _draw_covariates(expert: np.ndarray, cfg: dict, rng: np.random.Generator) -> dict:
    """Return covariate arrays (age, male, size, grade 1-3, deep, margin code 0-3)."""
    n = expert.size
    cov = cfg["covariates"]
    out = {k: np.empty(n) for k in ("age", "size")}
    out.update(
        male=np.empty(n, bool),
        deep=np.empty(n, bool),
        grade=np.empty(n, np.int64),
        margin=np.empty(n, np.int64),
    )
    for flag, group in ((True, "expert"), (False, "other")):
        idx = np.flatnonzero(expert == flag)
        m, g = idx.size, cov[group]
        age = _truncated(rng, m, g["age_mean"], g["age_sd"], cov["age_min"], cov["age_max"])
        out["age"][idx] = np.clip(np.round(age, 1), cov["age_min"], cov["age_max"])
        log_size = _truncated(
            rng,
            m,
            np.log(g["size_median_cm"]),
            g["size_log_sd"],
            np.log(cov["size_min_cm"]),
            np.log(cov["size_max_cm"]),
        )
        out["size"][idx] = np.round(np.exp(log_size), 1)
        out["male"][idx] = rng.random(m) < g["male"]
        out["deep"][idx] = rng.random(m) < g["deep"]
        out["grade"][idx] = 1 + rng.choice(3, size=m, p=g["grade_probs"])
        out["margin"][idx] = rng.choice(4, size=m, p=g["margin_probs"])
    out["size"] = np.maximum(out["size"], 0.1)  # rounding to 0.1 cm keeps sizes > 0
    return out


def design_matrix(expert: np.ndarray, cov: dict) -> np.ndarray:
    """Return the ``(n, len(TERMS))`` covariate matrix in ``truth.TERMS`` order."""
    cols = [
        np.asarray(expert, float),
        cov["age"],
        cov["male"].astype(float),
        cov["size"],
        (cov["grade"] == 2).astype(float),
        (cov["grade"] == 3).astype(float),
        cov["deep"].astype(float),
        *[(cov["margin"] == j).astype(float) for j in (1, 2, 3)],
    ]
    return np.column_stack(cols)


def _simulate_arrays(n: int, cfg: dict, rng: np.random.Generator) -> dict:
    """Run the mechanism; return every array (latent times included) in a dict."""
    center, labels, center_expert = _draw_centers(n, cfg, rng)
    u_center = rng.normal(0.0, cfg["center_sd"], labels.size)
    expert = center_expert[center]
    cov = _draw_covariates(expert, cfg, rng)
    x = design_matrix(expert, cov)
    eta = truth.linear_predictors(x, cov["margin"], cfg)
    u = u_center[center]
    latent = truth.sample_latent_times(rng, eta + u[:, None], expert, cfg)  # months, (n, 3)
    f = cfg["followup"]
    start = np.datetime64(f["accrual_start"], "D")
    span = int((np.datetime64(f["accrual_end"], "D") - start).astype(int))
    surgery = rng.integers(0, span + 1, n)
    admin = (np.datetime64(f["cutoff"], "D") - start).astype(int) - surgery
    rate = f["loss_to_followup_per_year"] / 365.25
    lost = rng.standard_exponential(n) / rate if rate > 0 else np.full(n, np.inf)
    censor = np.maximum(1, np.minimum(admin, np.floor(lost))).astype(np.int64)
    days = np.maximum(1, np.rint(np.minimum(latent * schema.DAYS_PER_MONTH, 1e7)))
    days = days.astype(np.int64)
    death_seen = days[:, 2] <= censor
    last = np.minimum(days[:, 2], censor)
    seen = (latent[:, :2] < latent[:, 2:3]) & (days[:, :2] <= censor[:, None])
    return dict(
        center=center,
        labels=labels,
        expert=expert,
        cov=cov,
        x=x,
        eta=eta,
        u=u,
        latent=latent,
        start=start,
        surgery=surgery,
        days=days,
        last=last,
        seen=np.column_stack([seen, death_seen]),
    )


def _frame(a: dict) -> pd.DataFrame:
    """Build the registry table (schema columns) from the simulated arrays."""
    n = a["expert"].size
    surgery = a["start"] + a["surgery"].astype("timedelta64[D]")

    def dates(days, seen):
        days = np.where(seen, days, 0)  # unobserved times may lie centuries ahead
        d = (surgery + days.astype("timedelta64[D]")).astype("datetime64[ns]")
        return np.where(seen, d, np.datetime64("NaT", "ns"))

    cov = a["cov"]
    width = max(6, len(str(n)))
    return pd.DataFrame(
        {
            schema.PATIENT_ID: np.char.add(
                "P", np.char.zfill(np.arange(1, n + 1).astype(str), width)
            ).astype(object),
            schema.CENTER_ID: a["labels"][a["center"]],
            schema.EXPERT: a["expert"],
            "age": cov["age"],
            "sex": np.where(cov["male"], "male", "female").astype(object),
            "tumor_size_cm": cov["size"],
            "grade": cov["grade"],
            "depth": np.where(cov["deep"], "deep", "superficial").astype(object),
            "margin": np.asarray(truth.MARGINS, dtype=object)[cov["margin"]],
            schema.SURGERY_DATE: surgery.astype("datetime64[ns]"),
            schema.LOCAL_RELAPSE_DATE: dates(a["days"][:, 0], a["seen"][:, 0]),
            schema.DISTANT_RELAPSE_DATE: dates(a["days"][:, 1], a["seen"][:, 1]),
            schema.DEATH_DATE: dates(a["days"][:, 2], a["seen"][:, 2]),
            schema.LAST_FOLLOWUP_DATE: dates(a["last"], np.ones(n, bool)),
        }
    )


# --------------------------------------------------------------------------- pseudo-truth


def pseudo_truth_config(cfg: dict) -> dict:
    """Return the part of a configuration that the pseudo-true values depend on.

    With the true centre effects as a known offset, the maximum-likelihood limit depends
    only on the joint distribution of (covariates, centre effect, censoring) per patient:
    the causes, ``center_sd``, the covariate mix, the expert share, the margin-dependent
    expert effects and the follow-up. The number of patients and how they are split into
    centres do not change it (every patient's ``u`` is ``Normal(0, center_sd)``,
    independent of the covariates), so they are left out. A scenario other than the
    default is part of it (the default has none, so its stored values still apply).
    """
    part = {
        "causes": cfg["causes"],
        "center_sd": cfg["center_sd"],
        "covariates": cfg["covariates"],
        "expert_share": cfg["centers"]["expert_share"],
        "expert_effect_by_margin": cfg["expert_effect_by_margin"],
        "followup": cfg["followup"],
    }
    if "scenario" in cfg:
        part["scenario"] = cfg["scenario"]
    return part


def compute_pseudo_truth(
    cfg: dict, n_patients: int = PSEUDO_TRUTH_SIZE, random_seed: int = PSEUDO_TRUTH_SEED
) -> dict:
    """Fit the Weibull PH model to LRFS and RFS (and OS) of a very large simulated registry.

    The registry follows ``cfg`` (censoring included), with the number of expert centres
    scaled with its size so that expert patients' centre effects are well sampled. Each
    patient's true centre effect ``u_c`` is a known offset: this is valid because ``u_c``
    is an exact multiplicative frailty of every endpoint (it multiplies each cause-specific
    hazard, hence their sum), so conditioning on it leaves only the misspecified Weibull
    baseline, which is what pseudo-true values describe; ``center_sd`` is the true one.
    With ``expert_effect_by_margin`` the fit has expert-by-margin interactions. Outside
    the default scenario OS is not exactly Weibull PH either, and is fitted too.
    Results are cached in the process (``functools.lru_cache``).

    Parameters
    ----------
    cfg : dict
        A simulation configuration (:func:`~bayes_sarcoma.simulate.config.make_config`).
    n_patients : int
        Size of the registry (the stored default values use 1,000,000).
    random_seed : int
        Seed of the registry.

    Returns
    -------
    dict
        ``{"LRFS": {...}, "RFS": {...}}`` (and ``"OS"``; see
        :func:`bayes_sarcoma.simulate.truth.fit_endpoint`);
        ``se`` is the Monte Carlo error of the pseudo-true values.
    """
    key = json.dumps(pseudo_truth_config(cfg), sort_keys=True)
    return copy.deepcopy(_pseudo_truth_cached(key, int(n_patients), int(random_seed)))


@functools.lru_cache(maxsize=16)
def _pseudo_truth_cached(key: str, n_patients: int, random_seed: int) -> dict:
    part = json.loads(key)
    cfg = default_config()
    for name in ("causes", "center_sd", "covariates", "followup", "expert_effect_by_margin"):
        cfg[name] = part[name]
    if "scenario" in part:
        cfg["scenario"] = part["scenario"]
    scaled = cfg["centers"]["n_expert_centers"] * n_patients / schema.PUBLISHED["n_patients"]
    cfg["centers"].update(expert_share=part["expert_share"], n_expert_centers=round(scaled))
    a = _simulate_arrays(n_patients, cfg, np.random.default_rng(random_seed))
    df = derive_endpoints(_frame(a))
    out = {}
    endpoints = ("LRFS", "RFS") if "scenario" not in cfg else ("LRFS", "RFS", "OS")
    for endpoint in endpoints:
        tcol, ecol = schema.endpoint_columns(endpoint)
        out[endpoint] = truth.fit_endpoint(
            df[tcol].to_numpy(float),
            df[ecol].to_numpy(float),
            a["x"],
            a["u"],
            by_margin=cfg["expert_effect_by_margin"] is not None,
        )
    return out


def pseudo_true_parameters(cfg: dict | None = None) -> tuple[dict, dict]:
    """Return the pseudo-true LRFS and RFS parameters of a configuration, and their source.

    The default configuration's values are read from ``bayes_sarcoma/simulate/pseudo_truth.json``
    (``scripts/compute_pseudo_truth.py``, 1,000,000 patients); any other configuration's
    are computed by :func:`compute_pseudo_truth` on :data:`PSEUDO_TRUTH_SIZE` patients
    (a few seconds, cached in the process).

    Parameters
    ----------
    cfg : dict, optional
        A simulation configuration (default: the default one).

    Returns
    -------
    values, source : dict
        ``{"LRFS": {...}, "RFS": {...}}`` and ``{"n_patients", "random_seed", "stored"}``.
    """
    cfg = make_config() if cfg is None else cfg
    stored = truth.stored_pseudo_truth()
    if stored is not None and stored["config_hash"] == truth.config_hash(pseudo_truth_config(cfg)):
        source = {
            "n_patients": stored["n_patients"],
            "random_seed": stored["random_seed"],
            "stored": True,
        }
        return copy.deepcopy(stored["endpoints"]), source
    source = {"n_patients": PSEUDO_TRUTH_SIZE, "random_seed": PSEUDO_TRUTH_SEED, "stored": False}
    return compute_pseudo_truth(cfg), source


# --------------------------------------------------------------------------- public API


def _patient_count(n_patients: int) -> int:
    """Return ``n_patients`` as an int, checking that it is at least one."""
    n = int(n_patients)
    if n < 1:
        raise ValueError(f"n_patients must be >= 1, got {n_patients}")
    return n


def _generator(
    random_seed: int | np.random.SeedSequence | np.random.Generator | None,
) -> tuple[np.random.Generator, int | None]:
    """Return the random generator and the entropy that reproduces it (None for a Generator)."""
    if isinstance(random_seed, np.random.Generator):
        return random_seed, None
    seq = (
        random_seed
        if isinstance(random_seed, np.random.SeedSequence)
        else np.random.SeedSequence(random_seed)
    )
    return np.random.default_rng(seq), seq.entropy


def _registry(
    n: int,
    cfg: dict,
    random_seed: int | np.random.SeedSequence | np.random.Generator | None,
    pseudo_truth: bool,
    missing: list[dict] | None = None,
    truth_times: tuple = truth.TRUTH_TIMES,
) -> pd.DataFrame:
    """Draw the registry of ``n`` patients under ``cfg``; record truth and settings in ``attrs``."""
    rng, entropy = _generator(random_seed)
    a = _simulate_arrays(n, cfg, rng)
    df = derive_endpoints(_frame(a))
    pseudo, source = pseudo_true_parameters(cfg) if pseudo_truth else (None, None)
    truth_dict = truth.registry_truth(a["x"], a["cov"]["margin"], cfg, pseudo, truth_times)
    record = None
    if missing:
        df, record = missing_values.apply_missing(df, missing, rng)
    df.attrs["truth"] = truth_dict
    df.attrs["simulation"] = _plain(
        {
            "n_patients": n,
            "random_seed": entropy,
            "config": cfg,
            "pseudo_truth": source,
            "terms": list(truth.TERMS),
            "scenario": scenarios.scenario_name(cfg),
        }
        | ({"missing": missing} if missing else {})
    )
    if record is not None:
        df.attrs["missing"] = _plain(record)
    return df


#: The settings of :func:`simulate_registry` that it passes on to ``make_config``.
_CONFIG_SETTINGS = (
    "n_expert_centers",
    "expert_share",
    "hospital_size_exponent",
    "hospital_size_cap",
    "center_sd",
    "causes",
    "shapes",
    "covariates",
    "expert_effect_by_margin",
    "followup",
)


def _truth_times(truth_times) -> tuple[float, ...]:
    """Return ``truth_times`` as floats, checking that they are months > 0."""
    times = tuple(float(t) for t in truth_times)
    if not times or min(times) <= 0:
        raise ValueError(f"truth_times must be months > 0, got {truth_times!r}")
    return times


def simulate_registry(
    n_patients: int = 9594,
    *,
    random_seed: int | np.random.SeedSequence | np.random.Generator | None = None,
    scenario: str | dict = "weibull",
    missing: dict | list[dict] | None = None,
    truth_times: tuple = truth.TRUTH_TIMES,
    n_expert_centers: int | None = None,
    expert_share: float | None = None,
    hospital_size_exponent: float | None = None,
    hospital_size_cap: int | None = None,
    center_sd: float | None = None,
    causes: dict | None = None,
    shapes: dict | None = None,
    covariates: dict | None = None,
    expert_effect_by_margin: dict | None = None,
    followup: dict | None = None,
    pseudo_truth: bool = True,
) -> pd.DataFrame:
    """Simulate a NETSARC-like registry: dates, covariates, endpoints and the truth.

    Settings left as None take calibrated defaults (see the module docstring, with examples).

    Parameters
    ----------
    n_patients : int
        Number of patients (default 9594, the NETSARC cohort).
    random_seed : int, SeedSequence, Generator or None
        Seed of ``numpy.random.default_rng`` (a Generator is used as it is). None draws fresh
        entropy, recorded in ``df.attrs["simulation"]["random_seed"]`` (None for a Generator).
    scenario : str or dict
        ``"weibull"`` (default), ``"rise_fall"`` (log-logistic PH baselines: hazards rise
        then fall) or ``"waning_expert"`` (expert log HR ``beta exp(-t / tau)``); a dict
        ``{"name": ..., setting: value}`` overrides a scenario's settings
        (:mod:`~bayes_sarcoma.simulate.scenarios`).
    missing : dict or list of dict, optional
        Remove values of ``grade``, ``tumor_size_cm`` or ``depth``, e.g.
        ``dict(column="grade", fraction=0.2, mechanism="MAR")`` (``"MCAR"``, ``"MAR"``,
        ``"MNAR"``; :mod:`~bayes_sarcoma.simulate.missing`); kept in ``attrs["missing"]``.
    truth_times : tuple of float
        Months of the ``standardized`` and ``expert_hazard_ratio`` truths (12, 24, 60).
    n_expert_centers, expert_share, hospital_size_exponent, hospital_size_cap : optional
        26 expert centres treat a share 0.37 of the patients; the other hospitals' sizes
        follow ``P(k) ~ k**-2.2``, ``k = 1..100`` (median 1, ~2,000 hospitals at 9594).
    center_sd : float, optional
        Standard deviation of the centre effect shared by the three causes (default 0.15).
    causes, shapes : dict, optional
        Overrides merged over the scenario's cause-specific parameters (never mutating
        them), e.g. ``{"death": {"beta": {"expert_center": -0.3}}, "local": {"shape": 0.7}}``:
        causes ``"local"``, ``"distant"``, ``"death"``; ``intercept``, ``shape`` (and
        ``scale`` in ``"rise_fall"``), ``beta`` by term label (``truth.TERMS``; per year of
        age, per cm; months). ``shapes={"death": 1.3}`` is a shortcut for the shapes.
    covariates : dict, optional
        Overrides of the patient mix (see ``default_config()["covariates"]``).
    expert_effect_by_margin : dict, optional
        Extra expert log hazard ratio by margin, e.g. ``{"R1": -0.3}`` (others 0), added
        to every cause; the truth then has ``beta_expert_by_margin``, and ``beta``'s
        ``expert_center`` is the effect at R0.
    followup : dict, optional
        Overrides of ``accrual_start``, ``accrual_end``, ``cutoff`` (ISO dates) and
        ``loss_to_followup_per_year`` (2010-01-01, 2014-12-31, 2019-12-31, 0.02).
    pseudo_truth : bool
        Whether to give the pseudo-true Weibull parameters (stored for the default
        configuration, computed in seconds otherwise); if False they are NaN.

    Returns
    -------
    pandas.DataFrame
        One row per patient: ``schema.REQUIRED_COLUMNS`` and the derived endpoints, with
        ``attrs["truth"]`` (:func:`bayes_sarcoma.simulate.truth.registry_truth`),
        ``attrs["simulation"]`` (the configuration, JSON) and, with ``missing``,
        ``attrs["missing"]``.
    """
    given = {k: v for k, v in locals().items() if k in _CONFIG_SETTINGS}  # make_config's
    n = _patient_count(n_patients)
    settings = missing_values.missing_settings(missing)
    cfg = make_config(scenario=scenario, **given)
    return _registry(n, cfg, random_seed, pseudo_truth, settings, _truth_times(truth_times))
