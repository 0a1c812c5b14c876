"""LRFS, RFS and OS from one multi-state fit: per patient and standardized (DESIGN.md 3.4).

A :class:`~bayes_sarcoma.model.multistate.MultiStateModel` fit holds the four transitions'
Weibull parameters and the centres' correlated effects; the endpoints follow from them
exactly (:func:`bayes_sarcoma.math.multistate.derived_survival`), draw by draw, so that
``RFS <= LRFS <= OS`` holds in every draw.

Centre effects: ``center="known"`` uses each patient's own centre's effects;
``center="new"`` a centre not in the data, ``u ~ MvNormal(0, Sigma)``, drawn per posterior
draw and patient (Monte Carlo). A patient's curve for a new centre is then one draw of the
centre effect, not its average over centres; a *standardized* curve averages over the
patients as well, so the Monte Carlo error of its centre integral shrinks with the number
of patients (``1 / sqrt(n)`` of the spread of centres) and is well below the posterior
spread for a registry.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike

from bayes_sarcoma.data.design import Design
from bayes_sarcoma.math.multistate import GRID_STEPS, STATES, TRANSITIONS, derived_survival

#: Endpoints derived from a multi-state fit.
ENDPOINTS = ("LRFS", "RFS", "OS")
#: Draws x patients x grid points handled at once (about 160 MB per transition).
CHUNK = 20_000_000


def _flat(dt: xr.DataTree, name: str, num_draws: int | None) -> np.ndarray:
    values = dt.posterior[name].to_numpy()
    values = values.reshape(-1, *values.shape[2:])
    if num_draws is not None and num_draws < values.shape[0]:
        keep = np.linspace(0, values.shape[0] - 1, num_draws).round().astype(int)
        values = values[keep]
    return values


def _center_effects(dt, data, center: str, num_draws, rng) -> np.ndarray:
    """Return the centre effects ``(draws, patients, transitions)``."""
    if center == "known":
        cluster = dt.attrs["cluster"]
        known = dt.posterior["center"].to_numpy()
        where = pd.Index(known).get_indexer(data[cluster].to_numpy())
        if (where < 0).any():
            bad = data[cluster].to_numpy()[where < 0]
            raise ValueError(f"centres {list(pd.unique(bad))[:5]} are not in the fit")
        return _flat(dt, "center_effect", num_draws)[:, where, :]
    if center != "new":
        raise ValueError(f"center={center!r}: choose 'new' or 'known'")
    sd = _flat(dt, "center_sd", num_draws)
    corr = _flat(dt, "center_corr", num_draws)
    chol = np.linalg.cholesky(corr * sd[:, :, None] * sd[:, None, :])
    z = rng.standard_normal((sd.shape[0], len(data), len(TRANSITIONS)))
    return z @ np.swapaxes(chol, -1, -2)


def _linear_predictors(dt, data, center, num_draws, rng, set_term=None) -> np.ndarray:
    """Return ``eta`` per draw, patient and transition (user scale, per month)."""
    design = Design.from_dict(dt.attrs["design"])
    if set_term is not None:
        data = data.assign(**{set_term[0]: set_term[1]})
    x = design.raw_matrix(data)
    beta = _flat(dt, "beta", num_draws)  # (draws, transitions, terms)
    eta = _flat(dt, "intercept", num_draws)[:, None, :] + np.einsum("pj,skj->spk", x, beta)
    return eta + _center_effects(dt, data, center, num_draws, rng)


def _curves(eta: np.ndarray, shape: np.ndarray, times: np.ndarray, clock: str) -> dict:
    """Return the derived curves for ``eta`` ``(draws, patients, transitions)``, chunk by chunk."""
    n_draws, n_patients, _ = eta.shape
    per_draw = n_patients * (times.size + GRID_STEPS + 2)
    step = max(1, CHUNK // per_draw)
    parts = []
    for start in range(0, n_draws, step):
        scale = np.exp(eta[start : start + step])[..., None]  # (s, p, k, 1)
        a = shape[start : start + step][:, None, :, None]

        def cumhaz(t, scale=scale, a=a):
            # t**a once per draw and transition, then one product per patient
            h = scale * np.asarray(t, dtype=float) ** a  # (s, p, k, grid); 0 at t = 0
            return {k: h[:, :, j] for j, k in enumerate(TRANSITIONS)}

        parts.append(derived_survival(times, cumhaz, clock=clock))
    return {k: np.concatenate([p[k] for p in parts]) for k in (*ENDPOINTS, "occupation")}


def _times(times: ArrayLike) -> np.ndarray:
    t = np.atleast_1d(np.asarray(times, dtype=float))
    if t.ndim != 1 or np.any(t < 0) or not np.all(np.isfinite(t)):
        raise ValueError("times must be a 1-d array of finite times >= 0")
    return t


def _sample_shape(dt: xr.DataTree, num_draws: int | None) -> tuple[int, int]:
    n_chain, n_draw = dt.posterior.sizes["chain"], dt.posterior.sizes["draw"]
    if num_draws is not None and num_draws < n_chain * n_draw:
        return 1, num_draws
    return n_chain, n_draw


def predict_endpoints(
    dt: xr.DataTree,
    data: pd.DataFrame,
    times: ArrayLike,
    *,
    center: str = "new",
    num_draws: int | None = None,
    random_seed: int | None = 0,
) -> xr.Dataset:
    """Return each patient's LRFS, RFS and OS survival and state occupation at ``times``.

    Parameters
    ----------
    dt : xarray.DataTree
        A :class:`~bayes_sarcoma.model.multistate.MultiStateModel` fit.
    data : pandas.DataFrame
        Patients (the fit's terms and, for ``center="known"``, the centre column).
    times : array_like
        Months since surgery.
    center : {"new", "known"}
        Centre effects of a new centre (drawn) or of each patient's own centre.
    num_draws : int, optional
        Use this many posterior draws (evenly spaced; chains merged into one).
    random_seed : int, optional
        Seed of the new centres' effects.

    Returns
    -------
    xarray.Dataset
        ``LRFS``, ``RFS``, ``OS`` (``chain``, ``draw``, ``patient``, ``time``) and
        ``occupation`` (... ``state``): the probabilities of :data:`STATES`.
    """
    t = _times(times)
    rng = np.random.default_rng(random_seed)
    eta = _linear_predictors(dt, data, center, num_draws, rng)
    curves = _curves(eta, _flat(dt, "shape", num_draws), t, dt.attrs["clock"])
    shape = _sample_shape(dt, num_draws)
    dims = ("chain", "draw", "patient", "time")
    out = {k: (dims, curves[k].reshape(*shape, *curves[k].shape[1:])) for k in ENDPOINTS}
    occ = curves["occupation"]
    out["occupation"] = ((*dims, "state"), occ.reshape(*shape, *occ.shape[1:]))
    return xr.Dataset(out, coords={"time": t, "state": list(STATES)})


def standardized_endpoints(
    dt: xr.DataTree,
    data: pd.DataFrame,
    times: ArrayLike,
    *,
    treatment: str = "expert_center",
    num_draws: int | None = None,
    random_seed: int | None = 0,
) -> xr.Dataset:
    """Return LRFS, RFS and OS standardized over ``data`` with ``treatment`` set to 1 and 0.

    Every patient of ``data`` is operated at an expert centre (``treated``) and nowhere
    expert (``control``), each at a new centre; the curves are averaged over patients
    (g-computation). Returns ``treated``, ``control`` and ``difference`` (``chain``,
    ``draw``, ``endpoint``, ``time``). The same centre-effect draws serve both arms, so
    the contrast carries no Monte Carlo noise from them beyond the patients' average.
    """
    t = _times(times)
    if random_seed is None:  # one seed for both arms: the same centre-effect draws
        random_seed = int(np.random.default_rng().integers(2**31 - 1))
    arms = {}
    for arm, value in (("treated", 1), ("control", 0)):
        rng = np.random.default_rng(random_seed)
        eta = _linear_predictors(dt, data, "new", num_draws, rng, set_term=(treatment, value))
        curves = _curves(eta, _flat(dt, "shape", num_draws), t, dt.attrs["clock"])
        arms[arm] = np.stack([curves[k].mean(axis=1) for k in ENDPOINTS], axis=1)
    shape = _sample_shape(dt, num_draws)
    dims = ("chain", "draw", "endpoint", "time")
    out = {arm: (dims, v.reshape(*shape, *v.shape[1:])) for arm, v in arms.items()}
    out["difference"] = (
        dims,
        (arms["treated"] - arms["control"]).reshape(*shape, len(ENDPOINTS), t.size),
    )
    return xr.Dataset(out, coords={"endpoint": list(ENDPOINTS), "time": t})
