"""The configuration of the registry simulator (:func:`~bayes_sarcoma.simulate_registry`).

A configuration is a plain nested dict: ``center_sd``, ``causes`` (per cause
``intercept``, ``shape`` and ``beta``; and ``scale`` in the ``"rise_fall"`` scenario),
``covariates`` (the patient mix of expert centres and other hospitals),
``expert_effect_by_margin``, ``centers``, ``followup`` and, outside the default scenario,
``scenario`` (its name and settings, :mod:`bayes_sarcoma.simulate.scenarios`).
:func:`default_config` gives the calibrated defaults (how they were found is told beside
them), :func:`make_config` merges a user's settings over them (an unknown key is an
error, the defaults are never mutated) and checks the result.
"""

from __future__ import annotations

import copy

import numpy as np

from bayes_sarcoma.simulate import scenarios, truth

# Default configuration. Never mutated: every call deep-copies it and merges over the copy.
#
# How the values were found. The betas, shapes and patient mix are set by hand to plausible
# clinical magnitudes (margin drives local relapse; grade, size and depth drive distant
# relapse; age drives death; expert centres treat older patients with larger, higher-grade,
# deeper tumours but resect R0 more often). The expert OS log hazard ratio is log(0.65).
# The intercepts of the three causes and the expert effects on local and distant relapse
# were then found by ``scripts/calibrate_simulator.py``: scipy.optimize.root solves for the
# values at which the large-sample limits of the crude Kaplan-Meier medians (each group's
# survival averaged over its covariates and integrated over the centre effect, exact by
# Gauss-Hermite quadrature on 120,000 simulated patients' covariates) equal the published
# LRFS 60 vs 41 and RFS 25 vs 21 months (expert vs other), with an overall 5-year OS of
# 0.68; values rounded to 3 decimals. Over 40 seeds at n = 9594 the crude medians' relative
# errors have sd 4.0% / 2.2% (LRFS expert/other) and 5.1% / 2.5% (RFS), and 95% of seeds
# have all four within 10%. center_sd = 0.15 was chosen for that stability: with 0.2, the
# 26 expert centres' mean effect moves the expert medians more (88% of seeds within 10%).
# Log hazard ratios (months; per year of age, per cm): local relapse, distant relapse, death.
_BETAS = {
    "expert_center": (-0.631, -0.341, -0.43),
    "age": (0.005, 0.01, 0.035),
    "sex[male]": (0.05, 0.1, 0.15),
    "tumor_size_cm": (0.03, 0.06, 0.03),
    "grade[2]": (0.3, 0.6, 0.35),
    "grade[3]": (0.5, 1.3, 0.9),
    "depth[deep]": (0.3, 0.5, 0.3),
    "margin[R1]": (0.7, 0.25, 0.2),
    "margin[R2]": (1.4, 0.6, 0.6),
    "margin[Rx]": (0.5, 0.2, 0.2),
}
_INTERCEPTS = (-5.413, -5.778, -8.554)
_SHAPES = (0.85, 0.8, 1.1)
# Patient mix: expert centres, other hospitals. Probabilities in the schema's level order
# (grade 1, 2, 3; margin R0, R1, R2, Rx). Age is a normal truncated to [age_min, age_max]
# and rounded to 0.1 year; size a log-normal truncated to [size_min_cm, size_max_cm] and
# rounded to 0.1 cm.
_MIX = {
    "age_mean": (60.0, 56.0),
    "age_sd": (16.0, 17.0),
    "male": (0.52, 0.50),
    "size_median_cm": (8.0, 5.5),
    "size_log_sd": (0.65, 0.75),
    "grade_probs": ([0.20, 0.30, 0.50], [0.32, 0.34, 0.34]),
    "deep": (0.75, 0.55),
    "margin_probs": ([0.62, 0.25, 0.04, 0.09], [0.40, 0.33, 0.07, 0.20]),
}
_DEFAULTS: dict = {
    "center_sd": 0.15,
    "causes": {
        cause: {
            "intercept": _INTERCEPTS[k],
            "shape": _SHAPES[k],
            "beta": {term: b[k] for term, b in _BETAS.items()},
        }
        for k, cause in enumerate(truth.CAUSES)
    },
    "covariates": {
        "expert": {key: v[0] for key, v in _MIX.items()},
        "other": {key: v[1] for key, v in _MIX.items()},
        "age_min": 15.0,
        "age_max": 95.0,
        "size_min_cm": 0.5,
        "size_max_cm": 40.0,
    },
    "expert_effect_by_margin": None,
    "centers": {
        "n_expert_centers": 26,
        "expert_share": 0.37,
        # Expert centre sizes: multinomial with log-normal(0, sigma) weights, min size each.
        "expert_size_log_sd": 0.7,
        "expert_min_size": 5,
        # Other hospitals: P(size = k) proportional to k**-exponent, k = 1..cap.
        "hospital_size_exponent": 2.2,
        "hospital_size_cap": 100,
    },
    "followup": {
        "accrual_start": "2010-01-01",
        "accrual_end": "2014-12-31",
        "cutoff": "2019-12-31",
        "loss_to_followup_per_year": 0.02,
    },
}


def default_config() -> dict:
    """Return a (deep) copy of the default simulation configuration.

    Returns
    -------
    dict
        Keys ``center_sd``, ``causes`` (per cause ``intercept``, ``shape``, ``beta``),
        ``covariates``, ``expert_effect_by_margin``, ``centers`` and ``followup``.

    Examples
    --------
    >>> cfg = default_config()
    >>> cfg["causes"]["death"]["beta"]["expert_center"]
    -0.43
    """
    return copy.deepcopy(_DEFAULTS)


def _merge(base: dict, override: dict, where: str) -> dict:
    """Return ``base`` updated recursively by ``override``; unknown keys raise."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key not in out:
            known = ", ".join(map(str, out))
            raise ValueError(f"unknown simulation setting {where}{key!r}; known: {known}")
        if isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = _merge(out[key], value, f"{where}{key}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def _plain(value):
    """Convert numpy scalars/arrays inside a nested structure to plain Python types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def make_config(
    *,
    scenario: str | dict = "weibull",
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
) -> dict:
    """Return a full, validated simulation configuration.

    The settings are those of :func:`bayes_sarcoma.simulate.registry.simulate_registry`.

    ``scenario`` (a name of ``scenarios.SCENARIOS``, or a dict with ``name`` and settings
    merged over the scenario's, e.g. ``{"name": "waning_expert", "expert_waning_months":
    12}``) is applied first (:func:`~bayes_sarcoma.simulate.scenarios.scenario_settings`),
    then the other settings over it. The default scenario adds nothing, so its
    configuration is the same dict as before scenarios existed.

    Returns
    -------
    dict
        The default configuration with the given settings merged over it (plain types).
    """
    cfg = _with_scenario(default_config(), scenario)
    centers = {
        "n_expert_centers": n_expert_centers,
        "expert_share": expert_share,
        "hospital_size_exponent": hospital_size_exponent,
        "hospital_size_cap": hospital_size_cap,
    }
    cfg["centers"] = _merge(
        cfg["centers"], {k: v for k, v in centers.items() if v is not None}, "centers."
    )
    if causes:
        cfg["causes"] = _merge(cfg["causes"], causes, "causes.")
    if shapes:
        cfg["causes"] = _merge(
            cfg["causes"], {k: {"shape": v} for k, v in shapes.items()}, "causes."
        )
    if covariates:
        cfg["covariates"] = _merge(cfg["covariates"], covariates, "covariates.")
    if followup:
        cfg["followup"] = _merge(cfg["followup"], followup, "followup.")
    if center_sd is not None:
        cfg["center_sd"] = center_sd
    if expert_effect_by_margin:
        unknown = set(expert_effect_by_margin) - set(truth.MARGINS)
        if unknown:
            raise ValueError(
                f"expert_effect_by_margin: unknown margin(s) {sorted(unknown)}; "
                f"use {', '.join(truth.MARGINS)}"
            )
        cfg["expert_effect_by_margin"] = {
            m: float(expert_effect_by_margin.get(m, 0.0)) for m in truth.MARGINS
        }
    cfg = _plain(cfg)
    _check_config(cfg)
    return cfg


def _with_scenario(cfg: dict, scenario: str | dict) -> dict:
    """Return ``cfg`` with a scenario's settings (``scenarios.scenario_settings``) applied."""
    spec = {"name": scenario} if isinstance(scenario, str) else dict(scenario)
    if "name" not in spec:
        raise ValueError(f"scenario must be a name or a dict with a 'name', got {scenario!r}")
    preset = scenarios.scenario_settings(spec["name"], cfg)
    for cause, par in preset.get("causes", {}).items():
        beta = par.get("beta", {})
        cfg["causes"][cause].update({k: v for k, v in par.items() if k != "beta"})
        cfg["causes"][cause]["beta"].update(beta)
    if "scenario" in preset:
        cfg["scenario"] = _merge(preset["scenario"], spec, "scenario.")
    elif len(spec) > 1:
        raise ValueError(f"scenario {spec['name']!r} has no settings, got {scenario!r}")
    return cfg


def _check_scenario(cfg: dict) -> None:
    name = scenarios.scenario_name(cfg)
    if name == "rise_fall":
        baseline = cfg["scenario"]["baseline"]
        if baseline != "loglogistic":
            raise ValueError(f"scenario.baseline of rise_fall is 'loglogistic', got {baseline!r}")
        for cause, par in cfg["causes"].items():
            if not par["scale"] > 0:
                raise ValueError(f"causes.{cause}.scale must be > 0, got {par['scale']}")
    if name == "waning_expert" and not cfg["scenario"]["expert_waning_months"] > 0:
        raise ValueError(
            "scenario.expert_waning_months must be > 0, got "
            f"{cfg['scenario']['expert_waning_months']}"
        )


def _check_config(cfg: dict) -> None:
    _check_scenario(cfg)
    if not cfg["center_sd"] >= 0:
        raise ValueError(f"center_sd must be >= 0, got {cfg['center_sd']}")
    for cause, par in cfg["causes"].items():
        if not par["shape"] > 0:
            raise ValueError(f"causes.{cause}.shape must be > 0, got {par['shape']}")
    c = cfg["centers"]
    if not 0 <= c["expert_share"] <= 1:
        raise ValueError(f"expert_share must be in [0, 1], got {c['expert_share']}")
    if c["n_expert_centers"] < 1 and c["expert_share"] > 0:
        raise ValueError("n_expert_centers must be >= 1 when expert_share > 0")
    if c["hospital_size_cap"] < 1:
        raise ValueError("hospital_size_cap must be >= 1")
    f = cfg["followup"]
    start, end, cutoff = (
        np.datetime64(f[k], "D") for k in ("accrual_start", "accrual_end", "cutoff")
    )
    if not start <= end < cutoff:
        raise ValueError(
            f"followup: need accrual_start <= accrual_end < cutoff, got {start}, {end}, {cutoff}"
        )
    if not f["loss_to_followup_per_year"] >= 0:
        raise ValueError("followup.loss_to_followup_per_year must be >= 0")
    for group in ("expert", "other"):
        g = cfg["covariates"][group]
        for key, k in (("grade_probs", 3), ("margin_probs", 4)):
            p = np.asarray(g[key], dtype=float)
            if p.shape != (k,) or np.any(p < 0) or not np.isclose(p.sum(), 1.0):
                raise ValueError(
                    f"covariates.{group}.{key} must be {k} probabilities summing to 1, got {g[key]}"
                )
