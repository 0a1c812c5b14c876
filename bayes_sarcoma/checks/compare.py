"""Model comparison by cross-validation: PSIS-LOO over patients and leave-centre-out.

**Why not the stored log-likelihood.** ``log_likelihood.time`` is conditional on the
centre effect, ``log p(y_i | theta, u_c)``. A patient alone in a hospital (most
non-expert "centres") is the only data on its ``u_c``, so leaving it out changes the
posterior of ``u_c`` completely: PSIS-LOO on the conditional log-likelihood then has
Pareto k > 0.7 for exactly those patients and its estimate is unreliable.

**Integrated LOO (default).** For one centre ``c`` and the global parameters ``theta``
(intercept, baseline parameters, coefficients, ``sigma_u``), the centre effect integrates
out in closed form up to one 1-D integral. With ``A_j = H_j(t_j) - H_j(a_j)`` at ``u = 0``
and ``k_j = d_j (log h0(t_j) + eta_j)`` (Weibull: ``log h0 = log alpha + (alpha - 1) log t``;
any baseline of :mod:`bayes_sarcoma.model.baselines`)::

    p(y_c | theta) = exp(sum_j k_j) * E_u[exp(D_c u - A_c e^u)],   u ~ Normal(0, sigma_u),

where ``D_c`` and ``A_c`` are the centre's events and cumulative hazard. Each patient's
leave-one-out predictive then follows exactly, for any centre size, from
``p(y_i | y_{c without i}, theta) = p(y_c | theta) / p(y_{c without i} | theta)``, and

    p(theta | y_{-i}) ∝ p(theta | y) / p(y_i | y_{c without i}, theta)

so PSIS-LOO with these pointwise values targets the exact LOO predictive
``p(y_i | y_{-i})``: the importance ratios depend on ``theta`` only, never on ``u_c``.
For a singleton centre this is the likelihood integrated over a new centre's effect.
Models without centre effects use the ordinary log-likelihood, so every model is judged on
the same ``p(y_i | y_{-i})`` and their ELPDs are comparable.

**Leave-centre-out (LCO).** LOO over patients asks how well the model predicts a patient
of a centre it has seen; the centre question ("do centres differ, and does the expert
effect generalise to a new centre?") needs whole centres left out. The LCO pointwise value
is ``log p(y_c | theta)`` above (a new centre's effect integrated out), and PSIS over
centres approximates ``log p(y_c | y_{-c})`` (an importance-sampling approximation; large
centres move the posterior and get high Pareto k). ``refit=`` replaces the PSIS estimate
of the worst centres by exact refits without them.

The 1-D integral ``log E_u[exp(D u - A e^u)]`` is computed by adaptive Gauss-Hermite
quadrature centred at the integrand's mode (closed form with the Lambert W function) and
scaled by its curvature, as lme4 does (``nAGQ``): 15 nodes are accurate to ~1e-6 for
``sigma_u <= 1`` (tests compare it with :func:`scipy.integrate.quad`).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats.utils import ELPDDataLOO
from numpy.typing import ArrayLike, NDArray

from bayes_sarcoma.checks import psis
from bayes_sarcoma.checks.ppc import FittedInputs, fitted_inputs
from bayes_sarcoma.math import aghq
from bayes_sarcoma.model.hierarchical import HierarchicalWeibull
from bayes_sarcoma.predict.survival import draws

__all__ = [
    "CANDIDATES",
    "ModelComparison",
    "compare_loo_and_lco",
    "compare_models",
    "compare_results",
    "fit_candidates",
    "integrated_log_likelihood",
    "integrated_log_likelihoods",
    "leave_center_out",
    "log_frailty_integral",
    "loo",
    "loo_and_lco",
    "pareto_k_table",
    "patient_centers",
]

#: Adaptive Gauss-Hermite nodes (``"auto"``: chosen per centre, math/aghq.py).
N_NODES = "auto"
#: Floats per intermediate array (draws x patients x nodes) when work is chunked.
CHUNK_ELEMENTS = 2**22
#: Global (non-centre) parameters: the ones the integrated likelihood depends on.
GLOBALS = (
    "intercept",
    "shape",
    "baseline_coef",
    "baseline_sd",
    "beta",
    "center_sd",
    "interaction_sd",
    "interaction_effect",
)


# -- the 1-D integral over a centre effect ---------------------------------------------------
def log_frailty_integral(
    events: ArrayLike, cumhaz: ArrayLike, sigma: ArrayLike, *, n_nodes: int | str = N_NODES
) -> NDArray:
    """Return ``log E[exp(D u - A exp(u))]`` over ``u ~ Normal(0, sigma)``, elementwise.

    This is the part of a centre's likelihood that its effect ``u`` enters: ``D`` events
    and cumulative hazard ``A`` (at ``u = 0``) in the centre. The integral is the fitting
    engine's (:func:`bayes_sarcoma.math.aghq.log_integral_values`); ``A = 0`` and ``sigma = 0``
    have closed forms.

    Parameters
    ----------
    events : array_like
        ``D >= 0``.
    cumhaz : array_like
        ``A >= 0``.
    sigma : array_like
        ``sigma >= 0`` (0 gives ``-A``).
    n_nodes : int or "auto"
        Gauss-Hermite nodes of the adaptive rule.

    Returns
    -------
    numpy.ndarray
        The broadcast shape of the inputs.

    Examples
    --------
    >>> float(log_frailty_integral(0.0, 0.0, 0.5))
    0.0
    >>> round(float(log_frailty_integral(2.0, 0.0, 0.5)), 12)  # E[e^{2u}] = e^{2 sigma^2}
    0.5
    """
    d, a, s = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (events, cumhaz, sigma)))
    out = np.where(s <= 0, -a, 0.5 * (d * s) ** 2)  # sigma = 0; A = 0: E[e^{Du}]
    regular = (s > 0) & (a > 0)
    if regular.any():
        out[regular] = aghq.log_integral_values(a[regular], d[regular], 0.0, s[regular], n_nodes)
    return out


# -- integrated pointwise log-likelihoods ------------------------------------------------------
def _row_bincount(index: NDArray, weights: NDArray, n_bins: int) -> NDArray:
    """``np.bincount`` of ``weights`` (rows, n) by ``index`` (n,), row by row, vectorised."""
    rows = weights.shape[0]
    flat = (index[None, :] + n_bins * np.arange(rows)[:, None]).ravel()
    return np.bincount(flat, weights=weights.ravel(), minlength=rows * n_bins).reshape(rows, n_bins)


def _pieces(fi: FittedInputs, time: NDArray, event: NDArray, sl: slice):
    """Per sample and patient: ``k`` (event part) and ``A`` (cumulative hazard), u = 0."""
    eta = fi.eta(sl, with_centers=False)
    cum = np.exp(fi.log_cumulative(time, sl) + eta)
    if fi.entry is not None:
        cum = cum - np.exp(fi.log_cumulative(fi.entry, sl) + eta)
    ll0 = fi.log_likelihood(time, event, eta, sl)
    return ll0 + cum, cum  # k = ll(u=0) + A


def integrated_log_likelihood(
    dt: xr.DataTree,
    *,
    unit: str = "patient",
    centers: ArrayLike | None = None,
    n_nodes: int | str = N_NODES,
    num_draws: int | None = None,
) -> xr.DataArray:
    """Return pointwise log predictive densities with the centre effects integrated out.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit.
    unit : {"patient", "center"}
        ``"patient"``: ``log p(y_i | y_{c without i}, theta)`` per patient (exact
        within-centre leave-one-out, for PSIS-LOO); ``"center"``: ``log p(y_c | theta)``
        per centre (a new centre's effect integrated out, for leave-centre-out).
    centers : array_like, optional
        Each patient's centre id, for ``unit="center"`` with a model without centre
        effects (default: ``constant_data.center``).
    n_nodes : int or "auto"
        Adaptive Gauss-Hermite nodes per centre (``"auto"``: chosen per centre).
    num_draws : int, optional
        Use at most this many posterior draws (every k-th of each chain); default all.

    Returns
    -------
    xarray.DataArray
        (chain, draw, patient) or (chain, draw, center).

    Examples
    --------
    >>> ll = integrated_log_likelihood(dt)                 # doctest: +SKIP
    >>> ll_centre = integrated_log_likelihood(dt, unit="center")  # doctest: +SKIP
    """
    return integrated_log_likelihoods(
        dt, units=(unit,), centers=centers, n_nodes=n_nodes, num_draws=num_draws
    )[unit]


def integrated_log_likelihoods(
    dt: xr.DataTree,
    *,
    units: Sequence[str] = ("patient", "center"),
    centers: ArrayLike | None = None,
    n_nodes: int | str = N_NODES,
    num_draws: int | None = None,
) -> dict[str, xr.DataArray]:
    """Return :func:`integrated_log_likelihood` for several units in one pass over the draws.

    The per-patient and per-centre values share their costliest parts (the linear
    predictor, the cumulative hazards and each centre's integral), so computing both at
    once costs little more than the per-patient values alone; each is the same, to the
    last bit, as :func:`integrated_log_likelihood` gives it.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit.
    units : sequence of {"patient", "center"}
        The units wanted.
    centers, n_nodes, num_draws
        As in :func:`integrated_log_likelihood`.

    Returns
    -------
    dict
        Unit -> DataArray (chain, draw, unit).

    Examples
    --------
    >>> both = integrated_log_likelihoods(dt)                 # doctest: +SKIP
    >>> both["patient"], both["center"]                       # doctest: +SKIP
    """
    units = tuple(dict.fromkeys(units))
    unknown = [u for u in units if u not in ("patient", "center")]
    if unknown or not units:
        raise ValueError(f"units={list(units)!r}: choose 'patient' and/or 'center'")
    fi = fitted_inputs(dt, num_draws=num_draws)
    obs = dt["observed_data"].dataset
    time = obs["time"].to_numpy().astype(float)
    event = obs["event"].to_numpy().astype(float)
    post = draws(dt, num_draws=num_draws)
    n_chains, n_draws = post.sizes["chain"], post.sizes["draw"]
    targets = {u: _output_units(dt, fi, u, centers, time.size) for u in units}
    out = {u: np.empty((fi.n_samples, len(labels))) for u, (_, labels) in targets.items()}
    per_chunk = max(1, CHUNK_ELEMENTS // max(time.size, 1))
    for start in range(0, fi.n_samples, per_chunk):
        sl = slice(start, min(start + per_chunk, fi.n_samples))
        for u, values in _chunk_log_likelihoods(fi, time, event, sl, targets, n_nodes).items():
            out[u][sl] = values
    sample = {"chain": post["chain"].to_numpy(), "draw": post["draw"].to_numpy()}
    return {
        u: xr.DataArray(
            out[u].reshape(n_chains, n_draws, len(labels)),
            dims=("chain", "draw", u),
            coords={**sample, u: labels},
            name="time",
        )
        for u, (_, labels) in targets.items()
    }


def _output_units(dt, fi, unit: str, centers, n_patients: int):
    """Return each patient's output index (None for patients) and the output labels."""
    if unit == "patient":
        return None, dt["observed_data"].dataset["patient"].to_numpy()
    if fi.center_index is not None:
        return fi.center_index, fi.center_ids
    const = dt["constant_data"].dataset
    ids = centers
    if ids is None and "center" in const:
        ids = const["center"].to_numpy()
    if ids is None:
        raise ValueError("a model without centre effects needs centers= for unit='center'")
    ids = np.asarray(ids)
    if ids.shape != (n_patients,):
        raise ValueError("centers= needs one centre id per patient")
    codes, labels = pd.factorize(ids, sort=True)
    return codes, labels


def _chunk_log_likelihoods(fi, time, event, sl: slice, targets: dict, n_nodes) -> dict:
    """Pointwise log-likelihoods of the draws ``sl``, per unit of ``targets``.

    ``targets`` maps each unit to (each patient's output index, the output labels).
    """
    k, cum = _pieces(fi, time, event, sl)
    if fi.center_index is None:
        ll = k - cum
        return {
            u: ll if u == "patient" else _row_bincount(index, ll, len(labels))
            for u, (index, labels) in targets.items()
        }
    sigma = fi.center_sd[sl][:, None]
    ci, n_c = fi.center_index, len(fi.center_ids)
    d_c = np.bincount(ci, weights=event, minlength=n_c)
    a_c = _row_bincount(ci, cum, n_c)
    whole = log_frailty_integral(d_c[None, :], a_c, sigma, n_nodes=n_nodes)
    out = {}
    if "center" in targets:
        out["center"] = _row_bincount(ci, k, n_c) + whole
    if "patient" in targets:
        rest_a = np.maximum(a_c[:, ci] - cum, 0.0)
        rest = log_frailty_integral(d_c[ci] - event, rest_a, sigma, n_nodes=n_nodes)
        out["patient"] = k + whole[:, ci] - rest
    return out


def _elpd(dt: xr.DataTree, pointwise: xr.DataArray) -> ELPDDataLOO:
    """PSIS-LOO of ``pointwise`` values; Pareto k problems are reported, not warned.

    :func:`arviz_stats.loo`'s computation, vectorised over the units
    (:mod:`bayes_sarcoma.checks.psis`), with its relative ESS of the global parameters.
    """
    post = dt["posterior"].dataset
    keep = [v for v in GLOBALS if v in post.data_vars]
    post = post[keep].sel(chain=pointwise["chain"], draw=pointwise["draw"])  # if thinned
    n_samples = pointwise.sizes["chain"] * pointwise.sizes["draw"]
    return psis.loo_pointwise(pointwise, r_eff=psis.relative_ess(post, n_samples))


def loo(
    dt: xr.DataTree,
    *,
    integrated: bool = True,
    n_nodes: int | str = N_NODES,
    num_draws: int | None = None,
) -> ELPDDataLOO:
    """PSIS-LOO over patients, with the centre effects integrated out (module docstring).

    Parameters
    ----------
    dt : xarray.DataTree
        A fit.
    integrated : bool
        Use the integrated pointwise values (default); False uses the stored
        conditional ``log_likelihood`` (Pareto k problems for patients alone in a centre).
    n_nodes : int or "auto"
        Adaptive Gauss-Hermite nodes per centre (``"auto"``: chosen per centre).
    num_draws : int, optional
        Use at most this many posterior draws (every k-th of each chain; the result's
        ``n_samples`` says how many); default all.

    Returns
    -------
    arviz_stats.utils.ELPDDataLOO
        With pointwise ``elpd_i`` and ``pareto_k`` (dim ``patient``).

    Examples
    --------
    >>> result = loo(dt)               # doctest: +SKIP
    >>> result.elpd, result.se         # doctest: +SKIP
    >>> pareto_k_table({"model": result})  # doctest: +SKIP
    """
    if integrated:
        pointwise = integrated_log_likelihood(dt, n_nodes=n_nodes, num_draws=num_draws)
    else:
        if "log_likelihood" not in dt.children:
            raise ValueError("the fit has no log_likelihood group: fit(..., log_likelihood=True)")
        ll = xr.DataTree.from_dict({"posterior": dt["log_likelihood"].dataset})
        pointwise = draws(ll, num_draws=num_draws)["time"]
    return _elpd(dt, pointwise)


# -- leave-centre-out --------------------------------------------------------------------------
def leave_center_out(
    dt: xr.DataTree,
    *,
    centers: ArrayLike | None = None,
    model: Any = None,
    data: pd.DataFrame | None = None,
    refit: int | Sequence = 0,
    fit_kwargs: Mapping[str, Any] | None = None,
    n_nodes: int | str = N_NODES,
    num_draws: int | None = None,
) -> ELPDDataLOO:
    """Leave-centre-out cross-validation: PSIS over centres, optionally exact refits.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit.
    centers : array_like, optional
        Each patient's centre id (only for a model without centre effects whose
        ``constant_data`` has no ``center``).
    model, data : optional
        The fitted model and its data, needed for ``refit``.
    refit : int or sequence
        Refit the model without each of these centres (ids) or, given an int, without the
        ``refit`` centres with the highest Pareto k above the threshold, and use the
        exact ``log mean_s p(y_c | theta_s)`` under the refitted posterior instead of the
        PSIS estimate. A refit costs one fit (one compilation for all refits).
    fit_kwargs : mapping, optional
        Passed to the refits' ``fit`` (e.g. ``draws``, ``tune``, ``random_seed``).
    n_nodes : int or "auto"
        Adaptive Gauss-Hermite nodes per centre (``"auto"``: chosen per centre).
    num_draws : int, optional
        Use at most this many posterior draws for PSIS (every k-th of each chain).

    Returns
    -------
    arviz_stats.utils.ELPDDataLOO
        Pointwise values with dim ``center``; refitted centres get Pareto k = 0 (exact).

    Examples
    --------
    >>> lco = leave_center_out(dt)                                   # doctest: +SKIP
    >>> lco = leave_center_out(dt, model=model, data=df, refit=2)   # doctest: +SKIP
    """
    pointwise = integrated_log_likelihood(
        dt, unit="center", centers=centers, n_nodes=n_nodes, num_draws=num_draws
    )
    result = _elpd(dt, pointwise)
    if isinstance(refit, int) and refit <= 0:
        return result
    if model is None or data is None:
        raise ValueError("refit needs the fitted model and its data (model=, data=)")
    k = result.pareto_k.to_series()
    if isinstance(refit, int):
        chosen = list(k[k > result.good_k].sort_values(ascending=False).index[:refit])
    else:
        chosen = list(refit)
    if not chosen:
        return result
    elpd_i = result.elpd_i.copy()
    pareto_k = result.pareto_k.copy()
    for center in chosen:
        elpd_i.loc[{"center": center}] = _exact_center(
            dt, model, data, center, dict(fit_kwargs or {}), n_nodes
        )
        pareto_k.loc[{"center": center}] = 0.0
    return _rebuild(result, elpd_i, pareto_k, pointwise)


def _exact_center(dt, model, data, center, fit_kwargs, n_nodes) -> float:
    """``log mean_s p(y_c | theta_s)`` with ``theta_s`` from a refit without centre ``c``."""
    cluster = model.cluster
    if cluster is None:
        raise ValueError("refits need a model with a cluster column")
    kept = data[data[cluster] != center]
    if len(kept) == len(data):
        raise ValueError(f"centre {center!r} is not in the data")
    refitted = type(model).from_dict(model.to_dict())
    fit_kwargs.setdefault("progressbar", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a short refit's sampler warnings
        new = refitted.fit(kept, **fit_kwargs)
    fi_new = fitted_inputs(new)
    fi_old = fitted_inputs(dt, num_draws=1)
    labels_old = list(dt["constant_data"]["term"].to_numpy())
    labels_new = list(new["constant_data"]["term"].to_numpy())
    if labels_old != labels_new:
        raise ValueError(
            f"leaving out centre {center!r} changes the model's terms ({labels_new} vs "
            f"{labels_old}): a level only occurs there; exact refit impossible"
        )
    mask = dt["constant_data"]["center"].to_numpy() == center
    obs = dt["observed_data"].dataset
    time = obs["time"].to_numpy()[mask].astype(float)
    event = obs["event"].to_numpy()[mask].astype(float)
    fi = FittedInputs(
        params={k: v for k, v in fi_new.params.items() if k != "center_effect"},
        chain=fi_new.chain,
        draw=fi_new.draw,
        raw_x=fi_old.raw_x[mask],
        center_index=None,
        center_ids=None,
        treatment=None if fi_old.treatment is None else fi_old.treatment[mask],
        modifier_index=None if fi_old.modifier_index is None else fi_old.modifier_index[mask],
        entry=None if fi_old.entry is None else fi_old.entry[mask],
    )
    k, cum = _pieces(fi, time, event, slice(None))
    whole = log_frailty_integral(event.sum(), cum.sum(axis=1), fi.center_sd, n_nodes=n_nodes)
    ll = k.sum(axis=1) + whole
    return float(np.logaddexp.reduce(ll) - math.log(ll.size))


def _rebuild(result: ELPDDataLOO, elpd_i, pareto_k, pointwise) -> ELPDDataLOO:
    values = elpd_i.to_numpy()
    n = values.size
    lpd = np.logaddexp.reduce(pointwise.to_numpy().reshape(-1, n), axis=0) - math.log(
        pointwise.sizes["chain"] * pointwise.sizes["draw"]
    )
    return ELPDDataLOO(
        elpd=float(values.sum()),
        se=float(math.sqrt(n * values.var())),
        p=float((lpd - values).sum()),
        n_samples=result.n_samples,
        n_data_points=n,
        scale="log",
        warning=bool((pareto_k > result.good_k).any()),
        good_k=result.good_k,
        elpd_i=elpd_i,
        pareto_k=pareto_k,
        approx_posterior=False,
        log_weights=result.log_weights,
    )


# -- comparison ------------------------------------------------------------------------------
def pareto_k_table(results: Mapping[str, ELPDDataLOO], *, worst: int = 3) -> pd.DataFrame:
    """Summarise each result's Pareto k diagnostics.

    Returns
    -------
    pandas.DataFrame
        Per model: ``n`` units, ``good_k`` (the threshold ``min(1 - 1/log10(S), 0.7)``),
        ``n_bad`` (k > good_k: the estimate for that unit is unreliable), ``n_very_bad``
        (k > 1), ``max_k`` and ``worst`` (the units with the highest k).

    Examples
    --------
    >>> pareto_k_table({"weibull": loo(dt)})  # doctest: +SKIP
    """
    rows = []
    for name, res in results.items():
        k = res.pareto_k.to_series()
        top = k.sort_values(ascending=False).head(worst)
        rows.append(
            {
                "model": name,
                "n": int(k.size),
                "good_k": float(res.good_k),
                "n_bad": int((k > res.good_k).sum()),
                "n_very_bad": int((k > 1.0).sum()),
                "max_k": float(k.max()),
                "worst": ", ".join(f"{i} ({v:.2f})" for i, v in top.items() if v > res.good_k),
            }
        )
    return pd.DataFrame(rows).set_index("model")


@dataclass
class ModelComparison:
    """The outcome of :func:`compare_models`.

    Attributes
    ----------
    table : pandas.DataFrame
        :func:`arviz_stats.compare`'s table (best model first): ``elpd``, ``se``,
        ``elpd_diff``, ``dse``, ``p``, ``weight`` ...
    pareto : pandas.DataFrame
        :func:`pareto_k_table` of every model.
    results : dict
        Model name -> ``ELPDDataLOO``.
    method : str
        ``"loo"`` (patients) or ``"lco"`` (leave-centre-out).
    messages : list of str
        Plain-language reading of the comparison and of its Pareto k problems.
    """

    table: pd.DataFrame
    pareto: pd.DataFrame
    results: dict = field(default_factory=dict)
    method: str = "loo"
    messages: list[str] = field(default_factory=list)

    @property
    def best(self) -> str:
        """Name of the model with the highest ELPD."""
        return str(self.table.index[0])


def compare_models(
    fits: Mapping[str, xr.DataTree],
    *,
    method: str = "loo",
    integrated: bool = True,
    centers: ArrayLike | None = None,
    num_draws: int | None = None,
) -> ModelComparison:
    """Compare fits of the same patients by PSIS-LOO or leave-centre-out ELPD.

    Parameters
    ----------
    fits : mapping of str to xarray.DataTree
        Fits of the same patients (e.g. from :func:`fit_candidates`).
    method : {"loo", "lco"}
        Patient-level PSIS-LOO (:func:`loo`) or leave-centre-out (:func:`leave_center_out`).
    integrated : bool
        For ``"loo"``: integrate the centre effects out (default; see the module docstring).
    centers : array_like, optional
        Patients' centre ids for ``"lco"`` when no fit has centre effects.
    num_draws : int, optional
        Use at most this many posterior draws of each fit (every k-th of each chain; the
        results' ``n_samples`` say how many); default all.

    Returns
    -------
    ModelComparison

    Examples
    --------
    >>> fits = fit_candidates(df, endpoint="OS", draws=500)            # doctest: +SKIP
    >>> comparison = compare_models({k: dt for k, (_, dt) in fits.items()})  # doctest: +SKIP
    >>> comparison.table[["elpd", "elpd_diff", "dse"]]                # doctest: +SKIP
    """
    if method not in ("loo", "lco"):
        raise ValueError(f"method={method!r}: choose 'loo' or 'lco'")
    centers = _check_fits(fits, centers, need_centers=method == "lco")
    results = {}
    for name, dt in fits.items():
        if method == "loo":
            results[name] = loo(dt, integrated=integrated, num_draws=num_draws)
        else:
            results[name] = leave_center_out(dt, centers=centers, num_draws=num_draws)
    return _comparison(results, method)


def compare_loo_and_lco(
    fits: Mapping[str, xr.DataTree],
    *,
    centers: ArrayLike | None = None,
    num_draws: int | None = None,
) -> dict[str, ModelComparison]:
    """Compare fits by integrated PSIS-LOO and by leave-centre-out, sharing the work.

    The same as ``compare_models(fits, method="loo")`` and ``compare_models(fits,
    method="lco")`` (integrated, no refits), with each fit's pointwise values computed in
    one pass (:func:`loo_and_lco`): about the cost of the LOO alone.

    Parameters
    ----------
    fits : mapping of str to xarray.DataTree
        Fits of the same patients.
    centers : array_like, optional
        Patients' centre ids when no fit has centre effects.
    num_draws : int, optional
        Use at most this many posterior draws of each fit (every k-th of each chain).

    Returns
    -------
    dict
        ``{"loo": ModelComparison, "lco": ModelComparison}``.

    Examples
    --------
    >>> both = compare_loo_and_lco({k: dt for k, (_, dt) in fits.items()})  # doctest: +SKIP
    >>> both["loo"].best, both["lco"].best                                # doctest: +SKIP
    """
    centers = _check_fits(fits, centers, need_centers=True)
    return compare_results(
        {name: loo_and_lco(dt, centers=centers, num_draws=num_draws) for name, dt in fits.items()}
    )


def loo_and_lco(
    dt: xr.DataTree, *, centers: ArrayLike | None = None, num_draws: int | None = None
) -> dict[str, ELPDDataLOO]:
    """Return one fit's integrated PSIS-LOO and leave-centre-out, from one pass over its draws.

    Equal to ``loo(dt, num_draws=...)`` and ``leave_center_out(dt, centers=...,
    num_draws=...)``.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit.
    centers : array_like, optional
        Each patient's centre id (needed for a fit without centre effects; see
        :func:`patient_centers`).
    num_draws : int, optional
        Use at most this many posterior draws (every k-th of each chain).

    Returns
    -------
    dict
        ``{"loo": ELPDDataLOO, "lco": ELPDDataLOO}``.

    Examples
    --------
    >>> found = {name: loo_and_lco(dt) for name, dt in fits.items()}  # doctest: +SKIP
    >>> compare_results(found)["loo"].table                            # doctest: +SKIP
    """
    both = integrated_log_likelihoods(dt, centers=centers, num_draws=num_draws)
    return {"loo": _elpd(dt, both["patient"]), "lco": _elpd(dt, both["center"])}


def patient_centers(fits: Mapping[str, xr.DataTree]) -> NDArray | None:
    """Return the patients' centre ids of the first fit that stores them (None if none).

    Examples
    --------
    >>> patient_centers({"weibull": dt})  # doctest: +SKIP
    array(['C001', 'C001', 'C002', ...], dtype=object)
    """
    for dt in fits.values():
        if "center" in dt["constant_data"].dataset:
            return dt["constant_data"]["center"].to_numpy()
    return None


def compare_results(
    results: Mapping[str, Mapping[str, ELPDDataLOO]],
    *,
    fits: Mapping[str, xr.DataTree] | None = None,
) -> dict[str, ModelComparison]:
    """Compare models from their :func:`loo_and_lco` results, by method.

    Parameters
    ----------
    results : mapping
        Model name -> ``{"loo": ELPDDataLOO, "lco": ELPDDataLOO}`` (fits of the same
        patients).
    fits : mapping of str to xarray.DataTree, optional
        The fits, checked to be of the same patients.

    Returns
    -------
    dict
        ``{"loo": ModelComparison, "lco": ModelComparison}``, as :func:`compare_models`
        gives them.

    Examples
    --------
    >>> compare_results({name: loo_and_lco(dt) for name, dt in fits.items()})  # doctest: +SKIP
    """
    if fits is not None:
        _check_fits(fits, None, need_centers=False)
    if len(results) < 2:
        raise ValueError("compare at least two fits")
    return {
        method: _comparison({name: r[method] for name, r in results.items()}, method)
        for method in ("loo", "lco")
    }


def _check_fits(fits: Mapping[str, xr.DataTree], centers, *, need_centers: bool):
    """Check that the fits are two or more, of the same patients; return the centre ids.

    With ``need_centers`` and no ``centers``, the ids come from the first fit that has them.
    """
    if len(fits) < 2:
        raise ValueError("compare at least two fits")
    patients = [tuple(dt["observed_data"]["patient"].to_numpy()) for dt in fits.values()]
    if len(set(patients)) != 1:
        raise ValueError("the fits must be of the same patients, in the same order")
    if need_centers and centers is None:
        return patient_centers(fits)
    return centers


def _comparison(results: Mapping[str, ELPDDataLOO], method: str) -> ModelComparison:
    """Return the :class:`ModelComparison` of the results of one method."""
    table = _arviz_compare(results)
    pareto = pareto_k_table(results)
    return ModelComparison(table, pareto, dict(results), method, _messages(table, pareto, method))


def _arviz_compare(results: Mapping[str, ELPDDataLOO]) -> pd.DataFrame:
    """Return :func:`arviz_stats.compare`'s table, with stacking weights that cannot underflow.

    arviz-stats 1.3 stacks with ``exp(elpd_i)``, which underflows to 0 for every model when
    a pointwise ELPD is below about -745 (a large centre left out), and ``log(0)`` then
    breaks the weights (R's loo fixed the same in stan-dev/loo#273). The table and the
    weights are unchanged by subtracting the same number from every model's ``elpd_i`` of
    a unit (``elpd``, ``se`` and ``p`` are read from the scalars; differences are paired),
    so the weights are computed on values shifted by their maximum over models.
    """
    top = np.max([r.elpd_i.to_numpy() for r in results.values()], axis=0)
    shifted = {name: dataclasses.replace(r, elpd_i=r.elpd_i - top) for name, r in results.items()}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
        return azs.compare(shifted, round_to="none")


def _messages(table: pd.DataFrame, pareto: pd.DataFrame, method: str) -> list[str]:
    unit = "patient" if method == "loo" else "centre"
    best = table.index[0]
    out = [
        f"Best predictive model ({'PSIS-LOO' if method == 'loo' else 'leave-centre-out'}): {best}."
    ]
    for name in table.index[1:]:
        diff, dse = float(table.loc[name, "elpd_diff"]), float(table.loc[name, "dse"])
        p_worse = float(table.loc[name, "p_worse"]) if "p_worse" in table else math.nan
        if abs(diff) < 4:
            verdict = f"practically the same predictions as {best} (|difference| < 4)"
        elif abs(diff) < 2 * dse:
            verdict = f"not distinguishable from {best} (difference < 2 standard errors)"
        else:
            verdict = f"worse than {best}, with probability {p_worse:.4f} (normal approximation)"
        out.append(f"{name}: ELPD {diff:+.1f} (SE of the difference {dse:.1f}): {verdict}.")
    for name, row in pareto.iterrows():
        if row["n_bad"]:
            out.append(
                f"{name}: {row['n_bad']} of {row['n']} {unit}s have Pareto k > "
                f"{row['good_k']:.2f} (worst: {row['worst']}); their PSIS estimates are "
                "unreliable"
                + (
                    " - refit without them for exact values (leave_center_out(refit=...))."
                    if method == "lco"
                    else " - check them, or use the integrated LOO (integrated=True)."
                )
            )
    return out


#: Candidate model variants: name -> constructor overrides of HierarchicalWeibull.
CANDIDATES = {
    "weibull": {},
    "exponential": {"baseline": "exponential"},
    "mspline": {"baseline": "mspline"},
    "piecewise": {"baseline": "piecewise"},
    "no centre effects": {"center_effects": False},
    "expert x margin": {"effect_modifier": "margin"},
}
#: The candidates :func:`fit_candidates` fits when none are named.
DEFAULT_CANDIDATES = ("weibull", "exponential", "no centre effects", "expert x margin")


def fit_candidates(
    data: pd.DataFrame,
    *,
    endpoint: str | None = None,
    model: Any = None,
    candidates: Mapping[str, Mapping[str, Any]] | Sequence[str] | None = None,
    **fit_kwargs: Any,
) -> dict[str, tuple[Any, xr.DataTree]]:
    """Fit variants of one model (exponential, no centre effects, an interaction ...).

    Parameters
    ----------
    data : pandas.DataFrame
        The table.
    endpoint : str, optional
        A registry endpoint (``"LRFS"``, ``"RFS"``, ``"OS"``); or give ``model``.
    model : HierarchicalWeibull, optional
        The base model; each candidate is its specification with overrides.
    candidates : mapping or sequence of str, optional
        ``{name: overrides}`` or names of :data:`CANDIDATES` (default:
        :data:`DEFAULT_CANDIDATES`; ``"expert x margin"`` is skipped when the model has no
        ``margin`` term). A candidate that changes the baseline drops the base model's
        ``n_basis`` and ``knots`` unless it sets them.
    **fit_kwargs
        Passed to every ``fit`` (``draws``, ``tune``, ``chains``, ``random_seed`` ...).

    Returns
    -------
    dict
        Name -> ``(model, dt)``.

    Examples
    --------
    >>> fits = fit_candidates(df, endpoint="OS", draws=500, random_seed=1)  # doctest: +SKIP
    >>> compare_models({name: dt for name, (_, dt) in fits.items()}).table   # doctest: +SKIP
    """
    if model is None:
        if endpoint is None:
            raise ValueError("give endpoint= or model=")
        model = HierarchicalWeibull(endpoint)
    base = model.to_dict()
    if candidates is None:
        chosen = {name: CANDIDATES[name] for name in DEFAULT_CANDIDATES}
        if "margin" not in base["terms"] or not base.get("treatment"):
            chosen.pop("expert x margin")
    elif isinstance(candidates, Mapping):
        chosen = dict(candidates)
    else:
        chosen = {name: CANDIDATES[name] for name in candidates}
    out = {}
    for name, overrides in chosen.items():
        spec = {**base, **overrides}
        if overrides.get("baseline", base["baseline"]) != base["baseline"]:
            spec["n_basis"], spec["knots"] = overrides.get("n_basis"), overrides.get("knots")
        if overrides.get("center_effects") is False:
            spec["cluster"] = None
        candidate = HierarchicalWeibull.from_dict(spec)
        out[name] = (candidate, candidate.fit(data, **fit_kwargs))
    return out
