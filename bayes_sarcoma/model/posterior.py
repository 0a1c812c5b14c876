"""The results contract: internal draws -> an ArviZ ``xarray.DataTree`` (DESIGN.md section 4).

Everything a user reads is computed here, in NumPy, once per fit, from the sampler's
internal draws (the same for every sampler):

- ``posterior``: ``intercept``, ``shape`` (Weibull) or ``baseline_coef[basis]`` and
  ``baseline_sd`` (M-spline and piecewise baselines, :mod:`bayes_sarcoma.model.baselines`),
  ``beta[term]``, ``hazard_ratio[term]``, ``center_sd``, ``center_effect[center]`` on the
  user's scale (time unit of the data, covariates per their own unit), and with an effect
  modifier ``interaction_sd``,
  ``treatment_log_hr[<modifier>]`` and ``treatment_hazard_ratio[<modifier>]``;
- ``log_likelihood``: ``time[chain, draw, patient]``, every patient (censored ones
  included) in the data's time unit, for ``arviz_stats.loo``;
- ``observed_data``: ``time`` and ``event``; ``constant_data``: the design on the user's
  scale ``x[patient, term]``, ``center[patient]``, ``entry`` (if any), ``event``, and
  ``time`` holding the event status, which is ArviZ's convention for censored data
  (``arviz_stats.kaplan_meier`` and ``arviz_plots.plot_ppc_censored`` read it);
- ``sample_stats`` with ArviZ's names.

The model's specification, its covariate coding and its baseline (with a spline's knots)
travel in the root's ``attrs`` (JSON), so a saved DataTree is enough to predict.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import xarray as xr
from arviz_base import make_attrs

from bayes_sarcoma._version import __version__
from bayes_sarcoma.data.design import Design
from bayes_sarcoma.data.prepare import Prepared
from bayes_sarcoma.model.baselines import BASIS_DIM, COEF, Baseline
from bayes_sarcoma.model.graph import (
    BASELINE_RAW,
    BASELINE_SD,
    BETA,
    CENTER_RAW,
    CENTER_SD,
    INTERACTION_RAW,
    INTERACTION_SD,
    INTERCEPT,
    SHAPE,
)

SAMPLE_DIMS = ("chain", "draw")
#: Draws per chunk when the pointwise log-likelihood is computed (bounds memory).
_CHUNK = 256


def internal_parameters(
    draws: Mapping[str, np.ndarray],
    beta_groups,
    n_terms: int,
    baseline: Baseline | None = None,
) -> dict[str, np.ndarray]:
    """Gather the internal draws into ``intercept_c``, ``shape``, ``beta_std``, sds and raws.

    Sds given a precision or variance prior are converted to sds. A spline ``baseline``
    adds ``baseline_sd``, ``baseline_raw`` and the simplex ``baseline_coef``.
    """
    any_draw = next(iter(draws.values()))
    sample_shape = any_draw.shape[:2]
    out = {"intercept_c": draws[INTERCEPT]}
    out["shape"] = draws.get(SHAPE, np.ones(sample_shape))
    beta = np.zeros((*sample_shape, n_terms))
    for fam, idx in beta_groups:
        beta[..., list(idx)] = draws[f"{BETA}_{fam}"]
    out["beta_std"] = beta
    for slot in (CENTER_SD, INTERACTION_SD, BASELINE_SD):
        if slot in draws:
            out[slot] = draws[slot]
        elif f"{slot}_precision" in draws:
            out[slot] = draws[f"{slot}_precision"] ** -0.5
        elif f"{slot}_variance" in draws:
            out[slot] = draws[f"{slot}_variance"] ** 0.5
    for raw in (CENTER_RAW, INTERACTION_RAW, BASELINE_RAW):
        if raw in draws:
            out[raw] = draws[raw]
    if baseline is not None and baseline.spline:
        out[COEF] = baseline.coef(baseline.log_p0, out[BASELINE_SD], out[BASELINE_RAW])
    return out


def user_scale_posterior(
    internal: Mapping[str, np.ndarray],
    design: Design,
    prepared: Prepared,
    treatment: str | None = None,
    baseline: Baseline | None = None,
) -> dict[str, np.ndarray]:
    """Convert internal draws to the contract's parameters on the user's scale.

    ``treatment`` is the term label of the treatment whose effect an effect modifier
    changes (only read when the model has one). The intercept of the sampling scale is the
    log cumulative hazard at ``t_ref`` of the average patient; the user's is that of a
    patient with every term 0 for ``H0`` (Weibull: ``H0(1) = 1``; splines: ``H0(b) = 1``).
    """
    baseline = baseline or Baseline("weibull")
    beta = internal["beta_std"] / design.scale
    if baseline.spline:
        params = {COEF: internal[COEF].reshape(-1, baseline.n_coef)}
        log_ref = baseline.log_cumulative(params, prepared.t_ref).reshape(beta.shape[:-1])
        shape_part = {COEF: internal[COEF], BASELINE_SD: internal[BASELINE_SD]}
    else:
        log_ref = internal["shape"] * np.log(prepared.t_ref)
        shape_part = {"shape": internal["shape"]}
    intercept = internal["intercept_c"] - log_ref - beta @ design.mean
    post = {"intercept": intercept, **shape_part, "beta": beta, "hazard_ratio": np.exp(beta)}
    if CENTER_SD in internal:
        sd = internal[CENTER_SD]
        post["center_sd"] = sd
        if "center_deviation" in internal:  # integrated engine: drawn after sampling
            post["center_effect"] = internal["center_deviation"]
        else:
            # The sampled centre variables are partially centred on the intercept plus the
            # centre-level terms' contribution, m_c (graph.py): u_c = sd**(1-w) (raw - w m_c).
            w = prepared.center_weight
            mean = internal["intercept_c"][..., None]
            if prepared.center_terms:
                beta_c = internal["beta_std"][..., list(prepared.center_terms)]
                mean = mean + beta_c @ prepared.arrays["X_center"].T
            post["center_effect"] = sd[..., None] ** (1.0 - w) * (internal[CENTER_RAW] - w * mean)
    if INTERACTION_SD in internal:
        tau = internal[INTERACTION_SD]
        deviation = tau[..., None] * internal[INTERACTION_RAW]
        log_hr = beta[..., design.labels.index(treatment), None] + deviation
        post["interaction_sd"] = tau
        post["interaction_effect"] = deviation
        post["treatment_log_hr"] = log_hr
        post["treatment_hazard_ratio"] = np.exp(log_hr)
    return post


def linear_predictor(
    post: Mapping[str, np.ndarray],
    raw_x: np.ndarray,
    center_index: np.ndarray | None,
    treatment: np.ndarray | None = None,
    modifier_index: np.ndarray | None = None,
) -> np.ndarray:
    """Return ``eta[..., patient]`` on the user's scale for each draw.

    Parameters
    ----------
    post : mapping
        User-scale draws (``intercept``, ``beta``, optionally ``center_effect`` and
        ``treatment_log_hr``), each with leading sample dims.
    raw_x : numpy.ndarray
        Design on the user's scale, (patient, term).
    center_index : numpy.ndarray or None
        Each patient's centre index into ``center_effect`` (None: no centre effect).
    treatment, modifier_index : numpy.ndarray, optional
        With an effect modifier: each patient's treatment flag and modifier level index;
        ``interaction_effect`` (the deviation of the treatment effect per level) is added.
    """
    eta = post["intercept"][..., None] + post["beta"] @ raw_x.T
    if center_index is not None and "center_effect" in post:
        eta = eta + post["center_effect"][..., center_index]
    if modifier_index is not None and "interaction_effect" in post:
        eta = eta + treatment * post["interaction_effect"][..., modifier_index]
    return eta


def pointwise_log_likelihood(
    post: Mapping[str, np.ndarray], prepared: Prepared, baseline: Baseline | None = None
) -> np.ndarray:
    """Return each patient's log-likelihood per draw, (chain, draw, patient), data time unit."""
    baseline = baseline or Baseline("weibull")
    chains, draws = post["intercept"].shape
    flat = {k: v.reshape(chains * draws, *v.shape[2:]) for k, v in post.items()}
    out = np.empty((chains * draws, len(prepared.time)))
    for start in range(0, chains * draws, _CHUNK):
        part = {k: v[start : start + _CHUNK] for k, v in flat.items()}
        eta = linear_predictor(
            part,
            prepared.raw_x,
            prepared.center_index if "center_effect" in part else None,
            prepared.treatment,
            prepared.modifier_index,
        )
        out[start : start + _CHUNK] = baseline.log_likelihood(
            part, prepared.time, prepared.event, eta, prepared.entry
        )
    return out.reshape(chains, draws, -1)


def _coords_and_dims(
    prepared: Prepared, labels: list[str], modifier: str | None, baseline: Baseline
) -> tuple[dict, dict]:
    """Return the posterior's coordinates and each variable's non-sample dims."""
    coords = {"term": labels, "patient": prepared.patient_ids}
    if baseline.spline:
        coords[BASIS_DIM] = np.arange(1, baseline.n_coef + 1)
    if len(prepared.center_ids):
        coords["center"] = prepared.center_ids
    if modifier:
        coords[modifier] = list(prepared.modifier_levels)
    dims = {
        "beta": ["term"],
        "hazard_ratio": ["term"],
        "center_effect": ["center"],
        "interaction_effect": [modifier],
        "treatment_log_hr": [modifier],
        "treatment_hazard_ratio": [modifier],
        COEF: [BASIS_DIM],
    }
    return coords, dims


def build_datatree(
    post: dict[str, np.ndarray],
    prepared: Prepared,
    design: Design,
    sample_stats: xr.Dataset,
    *,
    modifier: str | None,
    baseline: Baseline,
    log_likelihood: bool,
    attrs: Mapping,
) -> xr.DataTree:
    """Assemble the results DataTree (see the module docstring)."""
    labels = design.labels
    coords, dims = _coords_and_dims(prepared, labels, modifier, baseline)
    posterior = {}
    for name, value in post.items():
        if baseline.exponential and name == "shape":
            continue
        posterior[name] = (list(SAMPLE_DIMS) + dims.get(name, []), value)
    chains, draws = post["intercept"].shape
    sample_coords = {"chain": np.arange(chains), "draw": np.arange(draws)}
    base_attrs = make_attrs({"inference_library": "bayes_sarcoma", "sampler": attrs.get("sampler")})
    groups = {
        "posterior": xr.Dataset(
            posterior, coords=_subset(coords, posterior) | sample_coords, attrs=base_attrs
        ),
        "sample_stats": sample_stats.assign_attrs(base_attrs),
        "observed_data": xr.Dataset(
            {"time": ("patient", prepared.time), "event": ("patient", prepared.event.astype(int))},
            coords={"patient": prepared.patient_ids},
            attrs=base_attrs,
        ),
    }
    constant = {
        "x": (("patient", "term"), prepared.raw_x),
        "event": ("patient", prepared.event.astype(int)),
        "time": ("patient", prepared.event.astype(int)),
    }
    if len(prepared.center_ids):
        constant["center"] = ("patient", prepared.center_ids[prepared.center_index])
    if prepared.entry is not None:
        constant["entry"] = ("patient", prepared.entry)
    if modifier:
        constant["treatment"] = ("patient", prepared.treatment.astype(int))
        constant[modifier] = (
            "patient",
            np.asarray(prepared.modifier_levels, dtype=object)[prepared.modifier_index],
        )
    groups["constant_data"] = xr.Dataset(
        constant, coords={"patient": prepared.patient_ids, "term": labels}, attrs=base_attrs
    )
    groups["constant_data"]["time"].attrs["description"] = (
        "event status of `time` (1 event, 0 censored), ArviZ's convention for censored data"
    )
    if log_likelihood:
        ll = pointwise_log_likelihood(post, prepared, baseline)
        groups["log_likelihood"] = xr.Dataset(
            {"time": (("chain", "draw", "patient"), ll)},
            coords={"patient": prepared.patient_ids} | sample_coords,
            attrs=base_attrs,
        )
    tree = xr.DataTree.from_dict(groups)
    tree.attrs = {k: (json.dumps(v) if isinstance(v, dict | list) else v) for k, v in attrs.items()}
    tree.attrs["baseline"] = json.dumps(baseline.to_dict())
    tree.attrs["bayes_sarcoma_version"] = __version__
    return tree


def _subset(coords: dict, variables: dict) -> dict:
    used = {d for dims, _ in variables.values() for d in dims}
    return {k: v for k, v in coords.items() if k in used}
