"""Prior predictive check of a model's priors: standardized survival under prior draws.

:func:`sample_prior` draws a fitted model's parameters from their priors (scipy, without
the shared compiled PyMC model, so threads cannot interfere); :func:`prior_predictive`
turns the draws into quantile bands of the standardized survival of both arms (every
patient at an expert centre, and none); :func:`observed_survival` gives the data's
Kaplan-Meier curves of the same arms to hold the bands against. A prior sensitivity grid
(:mod:`bayes_sarcoma.study.sensitivity`) computes them per cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from bayes_sarcoma.checks.power_scaling import TopLevelPriors
from bayes_sarcoma.data import schema
from bayes_sarcoma.data.endpoints import derive_endpoints
from bayes_sarcoma.model.posterior import SAMPLE_DIMS, build_datatree, user_scale_posterior
from bayes_sarcoma.predict.survival import predict_survival

if TYPE_CHECKING:
    from bayes_sarcoma.model.hierarchical import HierarchicalWeibull

ARMS = ("expert", "other")
#: Quantiles of the prior predictive bands.
BANDS = (0.05, 0.25, 0.5, 0.75, 0.95)


def sample_prior(model: HierarchicalWeibull, draws: int, *, random_seed: int) -> xr.DataTree:
    """Draw a fitted model's parameters from their priors (scipy; thread-safe).

    Same layout as :meth:`HierarchicalWeibull.sample_prior` (a ``prior`` group with the
    posterior's names, on the user's scale), without touching the shared compiled PyMC
    model, so cells running in threads cannot interfere.

    Examples
    --------
    >>> prior = sample_prior(model, 500, random_seed=1)                          # doctest: +SKIP
    >>> prior["prior"]["beta"].sizes["draw"]                              # doctest: +SKIP
    500
    """
    prepared, design = model.prepared_, model.design
    if prepared is None:
        raise RuntimeError("the model has not been fitted yet: call .fit(data) first")
    rng = np.random.default_rng(random_seed)
    top = TopLevelPriors.from_spec(model.to_dict(), design, prepared.t_ref, model.baseline_)
    has_center = bool(model.cluster) and len(prepared.center_ids) > 0
    modifier = model.effect_modifier
    slots = [s for s, on in (("center_sd", has_center), ("interaction_sd", modifier)) if on]
    internal = top.draw(draws, rng, slots=slots)
    # Vague priors give extreme draws on purpose (that is what the check shows).
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        if has_center:
            z = rng.standard_normal((1, draws, len(prepared.center_ids)))
            internal["center_raw"] = internal["center_sd"][..., None] ** prepared.center_weight * z
        if modifier:
            internal["interaction_raw"] = rng.standard_normal(
                (1, draws, len(prepared.modifier_levels))
            )
        post = user_scale_posterior(internal, design, prepared, model.treatment, model.baseline_)
    attrs = {"model": model.to_dict(), "design": design.to_dict(), "t_ref": prepared.t_ref}
    tree = build_datatree(
        post,
        prepared,
        design,
        xr.Dataset(coords={"chain": [0], "draw": np.arange(draws)}),
        modifier=modifier,
        baseline=model.baseline_,
        log_likelihood=False,
        attrs=attrs,
    )
    out = xr.DataTree.from_dict({"prior": tree["posterior"].dataset})
    out.attrs = dict(tree.attrs)
    return out


def prior_predictive(
    model: HierarchicalWeibull,
    data: pd.DataFrame,
    times: Sequence[float],
    *,
    draws: int = 400,
    patients: int | None = 200,
    random_seed: int = 0,
    n_nodes: int = 16,
) -> xr.DataArray:
    """Prior predictive standardized survival of both arms, as quantile bands.

    For each prior draw, every patient of a random subset is set to an expert centre
    (then to another centre) and their survival, integrated over a new centre's effect
    (:func:`bayes_sarcoma.predict.survival.predict_survival`), is averaged.

    Why not :func:`bayes_sarcoma.predict.standardize.standardized_survival`: its binned expansion
    of the mean over patients is exact and fast when the linear predictor spans a few
    units, as under a posterior; under vague priors it spans thousands (thousands of bins
    per draw), while this direct mean over a few hundred patients stays cheap. Overflows
    of extreme prior draws are intended (survival 0 or 1) and silenced.

    Parameters
    ----------
    model : HierarchicalWeibull
        A fitted model (its coding and ``t_ref`` define the priors' scales).
    data : pandas.DataFrame
        The patients standardized over.
    times : sequence of float
        Months since surgery.
    draws : int
        Prior draws.
    patients : int, optional
        Standardize over a random subset of this many patients (the prior's spread is far
        wider than the subsampling error); None: all.
    random_seed : int
        Seed of the prior draws and of the subset.
    n_nodes : int
        Gauss-Hermite nodes for the new centre's effect.

    Returns
    -------
    xarray.DataArray
        Dims ``(arm, time, quantile)``: quantiles :data:`BANDS` of the standardized
        survival at each time, for ``arm`` ``"expert"`` (every patient at an expert centre)
        and ``"other"``.

    Examples
    --------
    >>> band = prior_predictive(model, df, [0, 12, 60], draws=200)         # doctest: +SKIP
    >>> band.sel(arm="expert", quantile=0.5)                               # doctest: +SKIP
    """
    prior = sample_prior(model, draws, random_seed=random_seed)
    if patients is not None and len(data) > patients:
        data = data.sample(n=patients, random_state=np.random.default_rng(random_seed))
    curves = []
    with np.errstate(all="ignore"):
        for value in (1, 0):  # the order of ARMS
            arm = data.assign(**{model.treatment: value})
            s = predict_survival(prior, arm, times, group="prior", n_nodes=n_nodes)
            curves.append(s.mean("patient").stack(sample=SAMPLE_DIMS).to_numpy())
    curves = np.stack(curves)  # arm, time, sample
    return xr.DataArray(
        np.nanquantile(curves, BANDS, axis=-1).transpose(1, 2, 0),
        dims=("arm", "time", "quantile"),
        coords={"arm": list(ARMS), "time": np.asarray(times, float), "quantile": list(BANDS)},
        attrs={"nonfinite_draws": int((~np.isfinite(curves)).any(axis=(0, 1)).sum())},
    )


def observed_survival(
    data: pd.DataFrame, endpoints: Sequence[str], times: Sequence[float], *, treatment: str
) -> xr.DataArray:
    """Kaplan-Meier survival of each arm per endpoint, dims ``(endpoint, arm, time)``.

    Examples
    --------
    >>> km = observed_survival(df, ["OS"], [0, 60], treatment="expert_center")  # doctest: +SKIP
    """
    from scipy import stats

    t = np.asarray(times, float)
    out = np.full((len(endpoints), len(ARMS), len(t)), np.nan)
    for i, endpoint in enumerate(endpoints):
        time_col, event_col = schema.endpoint_columns(endpoint)
        table = data if time_col in data.columns else derive_endpoints(data)
        arm = table[treatment].astype(bool).to_numpy()
        for j, mask in enumerate((arm, ~arm)):
            event = table.loc[mask, event_col].astype(bool).to_numpy()
            time_ = table.loc[mask, time_col].to_numpy(float)
            cens = stats.CensoredData.right_censored(time_, ~event)
            out[i, j] = stats.ecdf(cens).sf.evaluate(t)
    return xr.DataArray(
        out,
        dims=("endpoint", "arm", "time"),
        coords={"endpoint": list(endpoints), "arm": list(ARMS), "time": t},
    )
