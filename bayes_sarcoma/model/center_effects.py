"""Centre effects after an integrated fit: drawn from their exact conditionals.

The integrated engine (:mod:`bayes_sarcoma.model.integrated`) samples the global
parameters only. Given one posterior draw of them, centre c's effect has the exact
one-dimensional conditional ``p(u | A_c, D_c, mu_c, sigma) ~ exp(D_c u - A_c e^u)
Normal(u | mu_c, sigma)``; drawing one ``u_c`` per posterior draw from it gives draws from
the joint posterior of the globals and the centre effects, which is what the sampled
engine gives too. ``A_c`` is recomputed here from the same arrays the model's graph reads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.typing import NDArray

from bayes_sarcoma.data.prepare import Prepared
from bayes_sarcoma.math.aghq import REFERENCE_NODES, draw_conditional_effects, log_integrals

#: Posterior draws per chunk (bounds memory at draws x patients floats per chunk).
_CHUNK = 128


def _flat(internal: Mapping[str, NDArray]) -> dict[str, NDArray]:
    """Return the draws with (chain, draw) flattened to one axis."""
    chains, n_draws = internal["intercept_c"].shape[:2]
    return {k: v.reshape(chains * n_draws, *v.shape[2:]) for k, v in internal.items()}


def _grouping(prepared: Prepared) -> tuple[NDArray, NDArray]:
    """Return the patients sorted by centre, and where each centre starts (for reduceat)."""
    order = np.argsort(prepared.center_index, kind="stable")
    starts = np.searchsorted(prepared.center_index[order], np.arange(len(prepared.center_ids)))
    return order, starts


def center_sums(
    internal: Mapping[str, NDArray],
    prepared: Prepared,
    draws: slice,
    grouping: tuple[NDArray, NDArray] | None = None,
) -> tuple[NDArray, NDArray]:
    """Return ``A_c`` and the effects' mean ``mu_c`` for the posterior draws ``draws``.

    ``internal`` holds the sampler's draws flattened to (draw, ...): ``intercept_c``,
    ``shape`` (or a spline baseline's ``baseline_coef``), ``beta_std`` and, with an effect
    modifier, ``interaction_sd`` and ``interaction_raw``; all on the model's internal scale
    (times over ``t_ref``, standardised covariates), as in
    :func:`bayes_sarcoma.model.graph.build_model`. ``grouping`` (from ``_grouping``) saves
    re-sorting the patients on every call.
    """
    arrays = prepared.arrays
    beta = internal["beta_std"][draws]
    patient = [j for j in range(beta.shape[-1]) if j not in prepared.center_terms]
    eta = beta[:, patient] @ arrays["X"][:, patient].T
    if "interaction_raw" in internal:
        deviation = internal["interaction_sd"][draws, None] * internal["interaction_raw"][draws]
        eta = eta + prepared.treatment * deviation[:, prepared.modifier_index]
    if "baseline_coef" in internal:  # a spline baseline: H0 / H0(t_ref) from the basis matrices
        p = internal["baseline_coef"][draws]
        exposure = np.exp(eta) * (p @ arrays["cumbasis"].T) / (p @ arrays["cumbasis_ref"])[:, None]
    else:
        shape = internal["shape"][draws, None]
        exposure = np.exp(shape * arrays["log_t"] + eta)
        if "has_entry" in arrays:
            exposure -= arrays["has_entry"] * np.exp(shape * arrays["log_entry"] + eta)
    order, starts = grouping or _grouping(prepared)
    a = np.add.reduceat(exposure[:, order], starts, axis=1)
    mu = np.repeat(internal["intercept_c"][draws, None], len(starts), axis=1)
    if prepared.center_terms:
        mu = mu + beta[:, list(prepared.center_terms)] @ arrays["X_center"].T
    return a, mu


def draw_center_deviations(
    internal: Mapping[str, NDArray], prepared: Prepared, random_seed: int
) -> NDArray[np.float64]:
    """Draw every centre's effect given each posterior draw; return ``u_c - mu_c``.

    Parameters
    ----------
    internal : mapping
        The sampler's internal draws, each (chain, draw, ...).
    prepared : Prepared
        The fitted data.
    random_seed : int
        The same seed (and draws) give the same centre effects.

    Returns
    -------
    numpy.ndarray
        The centre effects as deviations from their mean (the contract's ``center_effect``),
        (chain, draw, center).
    """
    chains, n_draws = internal["intercept_c"].shape[:2]
    flat, grouping = _flat(internal), _grouping(prepared)
    events = prepared.arrays["center_events"]
    out = np.empty((chains * n_draws, len(prepared.center_ids)))

    def chunk(k: int) -> None:
        # Each chunk of draws has its own seeded stream: the same draws however the
        # chunks are scheduled over the threads (the sampler releases the GIL).
        part = slice(k * _CHUNK, min((k + 1) * _CHUNK, chains * n_draws))
        a, mu = center_sums(flat, prepared, part, grouping)
        sd = flat["center_sd"][part]
        out[part] = draw_conditional_effects(a, events, mu, sd, [random_seed, k])

    n_chunks = -(-chains * n_draws // _CHUNK)
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        list(pool.map(chunk, range(n_chunks)))
    return out.reshape(chains, n_draws, -1)


def quadrature_error(
    internal: Mapping[str, NDArray],
    prepared: Prepared,
    n_nodes: int | str = "auto",
    n_checked: int = 16,
) -> float:
    """Return the largest error of the fit's quadrature on posterior draws.

    For ``n_checked`` draws spread over the posterior, every centre's ``log I_c`` with the
    fit's rule is compared with :data:`~bayes_sarcoma.math.aghq.REFERENCE_NODES` nodes;
    the largest absolute difference (the relative error of ``I_c``) is returned.
    """
    flat, grouping = _flat(internal), _grouping(prepared)
    n_all = len(flat["intercept_c"])
    picks = np.unique(np.linspace(0, n_all - 1, n_checked).astype(int))
    events = prepared.arrays["center_events"]
    worst = 0.0
    for i in picks:
        a, mu = center_sums(flat, prepared, slice(i, i + 1), grouping)
        sd = float(flat["center_sd"][i])
        fit = log_integrals(a[0], events, mu[0], sd, n_nodes)[0]
        reference = log_integrals(a[0], events, mu[0], sd, REFERENCE_NODES)[0]
        worst = max(worst, float(np.max(np.abs(fit - reference))))
    return worst
