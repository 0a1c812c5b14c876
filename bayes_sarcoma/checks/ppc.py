"""Posterior predictive checks for censored survival data (Kaplan-Meier against replicates).

Censored data cannot be compared with predicted event times directly: the observed
Kaplan-Meier (KM) curve describes event times seen through each patient's censoring.
:func:`km_check` therefore replicates the *whole observation process*, per posterior draw:

1. draw an uncensored event time for every patient from the model, with the patient's own
   covariates and own centre's effect ``u_c`` (inverse CDF, ``T = H0^-1(E exp(-eta))`` with
   ``E ~ Exp(1)``: :func:`bayes_sarcoma.math.weibull.sample_times` for the Weibull, the
   numerical inverse of ``H0`` for a flexible baseline,
   :meth:`bayes_sarcoma.model.baselines.Baseline.invert`);
2. censor it at the patient's own censoring time ``C_i``: the replicate is
   ``(min(T_i, C_i), T_i <= C_i)``;
3. compute the KM curve of the replicates on a time grid,

and compares the observed KM curve with the pointwise band of the replicated curves,
overall and within strata (expert centre or not, each resection margin). If the model
is right, the observed curve lies inside the band at most times.

**Censoring times.** A censored patient's ``C_i`` is observed (its follow-up time). For a
patient with an event, ``C_i`` is unobserved; we only know ``C_i >= t_i``. By default it
is drawn, independently per posterior draw, from the Kaplan-Meier estimate of the
censoring distribution (the "reverse" KM, censorings as events) conditioned on
``C >= t_i``: ``P(C > c | C >= t_i) = G(c) / G(t_i-)``. This assumes censoring independent of
the covariates (in a registry: administrative cut-off and loss to follow-up, which depend
on the date of surgery, not on the patient); mass of ``G`` left beyond the last censoring
time means "not censored within follow-up". A user who knows each patient's potential
censoring time (e.g. the data cut-off minus the date of surgery) passes it as
``censoring_time`` instead.

**ArviZ.** :func:`add_posterior_predictive` adds a ``posterior_predictive`` group holding
uncensored predicted ``time`` (ArviZ's convention), which
:func:`arviz_plots.plot_ppc_censored` compares with the observed KM curve.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from bayes_sarcoma._defaults import CI_PROB
from bayes_sarcoma.math import weibull
from bayes_sarcoma.model.baselines import Baseline
from bayes_sarcoma.model.posterior import linear_predictor
from bayes_sarcoma.predict.survival import draws, fitted_design, model_spec, time_label

__all__ = [
    "FittedInputs",
    "KMCheck",
    "add_posterior_predictive",
    "censoring_times",
    "fitted_inputs",
    "km_check",
    "km_curves",
    "km_curves_by_stratum",
    "strata_from_design",
]

#: Default number of posterior draws used by the checks.
NUM_DRAWS = 500


# -- draws and the fitted patients' linear predictor ---------------------------------------
@dataclass
class FittedInputs:
    """Posterior draws (flattened over chain and draw) and the fitted patients' design.

    Attributes
    ----------
    params : dict of numpy.ndarray
        User-scale posterior draws, each (sample, ...).
    chain, draw : numpy.ndarray
        The (chain, draw) coordinates of each sample.
    raw_x : numpy.ndarray
        The design on the user's scale, (patient, term).
    center_index : numpy.ndarray or None
        Each patient's centre, an index into ``center_ids`` (None without centre effects).
    center_ids : numpy.ndarray or None
        The centre coordinate of the posterior.
    treatment, modifier_index : numpy.ndarray or None
        With an effect modifier: each patient's treatment flag and modifier level index.
    entry : numpy.ndarray or None
        Delayed-entry times, if the model has them.
    baseline : Baseline
        The fit's baseline hazard.
    """

    params: dict[str, NDArray]
    chain: NDArray
    draw: NDArray
    raw_x: NDArray
    center_index: NDArray | None
    center_ids: NDArray | None
    treatment: NDArray | None
    modifier_index: NDArray | None
    entry: NDArray | None
    baseline: Baseline = field(default_factory=lambda: Baseline("weibull"))

    @property
    def n_samples(self) -> int:
        """Number of posterior samples."""
        return int(self.chain.size)

    @property
    def shape(self) -> NDArray:
        """Weibull shape per sample (ones for the exponential model)."""
        return self.params.get("shape", np.ones(self.n_samples))

    def sample_times(self, rng: np.random.Generator) -> NDArray:
        """Draw an event time (sample, patient) per sample and patient, own centre included."""
        eta = self.eta()
        if not self.baseline.spline:
            return weibull.sample_times(rng, eta, self.shape[:, None])
        e = rng.standard_exponential(eta.shape)
        return self.baseline.invert(self.params, np.log(e) - eta)

    def log_cumulative(self, t: ArrayLike, samples: slice = slice(None)) -> NDArray:
        """Return ``log H0(t)`` of the samples ``samples``, ``(sample, *t.shape)``."""
        keep = {k: self.params[k][samples] for k in ("shape", "baseline_coef") if k in self.params}
        if not keep:  # exponential
            keep = {"shape": np.ones(self.n_samples)[samples]}
        return self.baseline.log_cumulative(keep, t)

    def log_likelihood(
        self, time: NDArray, event: NDArray, eta: NDArray, samples: slice = slice(None)
    ) -> NDArray:
        """Return the pointwise log-likelihood (sample, patient) at linear predictors ``eta``."""
        keep = {k: self.params[k][samples] for k in ("shape", "baseline_coef") if k in self.params}
        if not keep:
            keep = {"shape": np.ones(self.n_samples)[samples]}
        return self.baseline.log_likelihood(keep, time, event, eta, self.entry)

    @property
    def center_sd(self) -> NDArray | None:
        """Centre sd per sample (None without centre effects)."""
        return self.params.get("center_sd")

    def eta(self, samples: slice = slice(None), *, with_centers: bool = True) -> NDArray:
        """Return the linear predictor (sample, patient) of the samples ``samples``.

        ``with_centers`` adds each patient's own posterior centre effect.
        """
        part = {k: v[samples] for k, v in self.params.items()}
        use_centers = with_centers and self.center_index is not None
        return linear_predictor(
            part,
            self.raw_x,
            self.center_index if use_centers else None,
            self.treatment,
            self.modifier_index,
        )


def fitted_inputs(dt: xr.DataTree, *, num_draws: int | None = None) -> FittedInputs:
    """Return posterior draws and the fitted patients' design, read from a fit.

    Everything comes from the DataTree (``posterior`` and ``constant_data``: the user-scale
    design ``x``, each patient's ``center`` and, with an effect modifier, the
    ``treatment`` flag and the modifier level), so a saved fit is enough.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit of :class:`~bayes_sarcoma.HierarchicalWeibull`.
    num_draws : int, optional
        Keep at most this many draws in all: every k-th draw of each chain
        (:func:`bayes_sarcoma.predict.survival.draws`; default all).

    Returns
    -------
    FittedInputs

    Examples
    --------
    >>> fi = fitted_inputs(dt, num_draws=200)  # doctest: +SKIP
    >>> fi.eta().shape                         # doctest: +SKIP
    (200, 1500)
    """
    post = draws(dt, num_draws=num_draws)
    const = dt["constant_data"].dataset
    n_chains, n_kept = post.sizes["chain"], post.sizes["draw"]
    params = {
        name: post[name].to_numpy().reshape(n_chains * n_kept, *post[name].shape[2:])
        for name in post.data_vars
    }
    center_index = center_ids = None
    if "center_effect" in params:
        center_ids = post["center"].to_numpy()
        center_index = pd.Index(center_ids).get_indexer(const["center"].to_numpy())
        if (center_index < 0).any():
            raise ValueError("constant_data.center holds centres that the posterior lacks")
    treatment = modifier_index = None
    modifier = model_spec(dt).get("effect_modifier")
    if modifier and "interaction_effect" in params:
        treatment = const["treatment"].to_numpy().astype(float)
        modifier_index = pd.Index(post[modifier].to_numpy()).get_indexer(const[modifier].to_numpy())
    return FittedInputs(
        params=params,
        chain=np.repeat(post["chain"].to_numpy(), n_kept),
        draw=np.tile(post["draw"].to_numpy(), n_chains),
        raw_x=const["x"].to_numpy(),
        center_index=center_index,
        center_ids=center_ids,
        treatment=treatment,
        modifier_index=modifier_index,
        entry=const["entry"].to_numpy() if "entry" in const else None,
        baseline=Baseline.from_fit(dt),
    )


# -- censoring -------------------------------------------------------------------------------
def censoring_times(
    time: ArrayLike,
    event: ArrayLike,
    rng: np.random.Generator,
    size: int,
    *,
    potential: ArrayLike | None = None,
) -> NDArray:
    """Draw each patient's censoring time, ``size`` times (see the module docstring).

    Parameters
    ----------
    time, event : array_like
        Observed times and event flags (1 event, 0 censored), one per patient.
    rng : numpy.random.Generator
        Random numbers.
    size : int
        Number of draws (rows of the result).
    potential : array_like, optional
        Known potential censoring times, used for patients with an event (must be
        ``>= time`` there). Default: draws from the reverse Kaplan-Meier estimate
        conditioned on ``C >= t_i``.

    Returns
    -------
    numpy.ndarray
        (size, patient); ``inf`` where a patient is never censored within follow-up.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> c = censoring_times([1.0, 2.0, 3.0, 4.0], [0, 1, 0, 1], rng, 2)
    >>> c[:, [0, 2]].tolist()  # censored patients keep their own time
    [[1.0, 3.0], [1.0, 3.0]]
    >>> bool((c[:, 1] >= 2.0).all())
    True
    """
    time = np.asarray(time, dtype=float)
    had_event = np.asarray(event).astype(bool)
    out = np.broadcast_to(time, (size, time.size)).copy()
    if not had_event.any():
        return out
    if potential is not None:
        potential = np.asarray(potential, dtype=float)
        if potential.shape != time.shape:
            raise ValueError("potential censoring times must have one value per patient")
        if (potential[had_event] < time[had_event]).any():
            raise ValueError("a potential censoring time is before the patient's event time")
        out[:, had_event] = potential[had_event]
        return out
    if had_event.all():
        out[:, had_event] = np.inf
        return out
    # Reverse KM: censorings are the "events"; an event time censors the censoring time.
    reverse = stats.ecdf(stats.CensoredData.right_censored(time, had_event)).sf
    knots, g = reverse.quantiles, reverse.probabilities  # G(knot) = P(C > knot)
    # P(C >= t_i): G just before t_i (an event at t_i is seen when C_i = t_i).
    g_before = np.concatenate([[1.0], g])[np.searchsorted(knots, time[had_event], side="left")]
    level = rng.uniform(size=(size, int(had_event.sum()))) * g_before
    # First knot with G(knot) <= level (G decreases); none left: never censored.
    k = np.searchsorted(-g, -level, side="left")
    drawn = np.where(k < knots.size, knots[np.minimum(k, knots.size - 1)], np.inf)
    out[:, had_event] = np.maximum(drawn, time[had_event])
    return out


# -- Kaplan-Meier curves, many at once -----------------------------------------------------
def km_curves(time: ArrayLike, event: ArrayLike, grid: ArrayLike) -> NDArray:
    """Return the Kaplan-Meier survival of each row of ``time``/``event`` on ``grid``.

    Hand-written because :func:`scipy.stats.ecdf` fits one sample per call and a check
    needs thousands (draws x strata); it is the same product-limit estimator (events
    before censorings at tied times) and the tests compare it with :func:`scipy.stats.ecdf`.

    Parameters
    ----------
    time, event : array_like
        (..., n): follow-up times and event flags of ``n`` patients per row.
    grid : array_like
        Increasing times at which to evaluate the curves.

    Returns
    -------
    numpy.ndarray
        (..., len(grid)): ``S(grid)``, right-continuous.

    Examples
    --------
    >>> km_curves([1.0, 2.0, 3.0, 4.0], [1, 1, 0, 0], [0.5, 1.0, 2.5, 5.0]).round(12).tolist()
    [1.0, 0.75, 0.5, 0.5]
    """
    time = np.asarray(time, dtype=float)
    event = np.broadcast_to(np.asarray(event, dtype=bool), time.shape)
    lead, n = time.shape[:-1], time.shape[-1]
    rows = (time.reshape(-1, n), event.reshape(-1, n))
    curves = km_curves_by_stratum(*rows, grid, [np.ones(n, bool)])
    return curves[0].reshape(*lead, np.size(grid))


def km_curves_by_stratum(
    time: ArrayLike, event: ArrayLike, grid: ArrayLike, strata: Sequence[ArrayLike]
) -> NDArray:
    """Return the Kaplan-Meier curves of each row of ``time``/``event`` within each stratum.

    One sort of each row serves every stratum: the patients of a stratum, taken in the
    order of the whole row, are in their own sorted order (the sort is stable), so each
    curve equals :func:`km_curves` of the stratum's columns, to the last bit.

    Parameters
    ----------
    time, event : array_like
        (rows, n): follow-up times and event flags (``event`` may be (n,)).
    grid : array_like
        Increasing times at which to evaluate the curves.
    strata : sequence of array_like
        Boolean masks over the ``n`` patients (columns).

    Returns
    -------
    numpy.ndarray
        (stratum, rows, len(grid)).

    Examples
    --------
    >>> t, e = [[1.0, 2.0, 3.0, 4.0]], [1, 1, 0, 1]
    >>> strata = [[True, True, False, False], [False, True, True, True]]
    >>> km_curves_by_stratum(t, e, [2.5], strata).round(6).ravel().tolist()
    [0.0, 0.666667]
    """
    time = np.atleast_2d(np.asarray(time, dtype=float))
    event = np.broadcast_to(np.asarray(event, dtype=bool), time.shape)
    grid = np.asarray(grid, dtype=float)
    rows = np.arange(time.shape[0])[:, None]
    order = np.lexsort((~event, time), axis=-1)  # by time, events first at ties
    e_sorted = event[rows, order]
    bins = np.searchsorted(grid, time[rows, order], side="left")  # first grid index >= time
    out = []
    for mask in strata:
        keep = np.asarray(mask, dtype=bool)[order]
        if keep.all():
            out.append(_km_sorted(e_sorted, bins, grid.size))
        else:
            size = int(np.count_nonzero(keep[0]))
            e_in, bins_in = e_sorted[keep].reshape(-1, size), bins[keep].reshape(-1, size)
            out.append(_km_sorted(e_in, bins_in, grid.size))
    return np.stack(out)


def _km_sorted(e_sorted: NDArray, bins: NDArray, n_grid: int) -> NDArray:
    """Kaplan-Meier curves of rows sorted by time (events first at ties), on a grid.

    ``bins`` holds each sorted time's first grid index at or after it.
    """
    rows, n = e_sorted.shape
    at_risk = n - np.arange(n)  # ties: the sequential factors multiply to (n - d) / n
    with np.errstate(divide="ignore"):
        log_factor = np.where(e_sorted, np.log1p(-1.0 / at_risk), 0.0)
    log_s = np.cumsum(log_factor, axis=-1)
    # How many sorted times are <= each grid point, per row (vectorised searchsorted).
    offsets = (np.arange(rows) * (n_grid + 1))[:, None]
    counts = np.bincount((bins + offsets).ravel(), minlength=rows * (n_grid + 1))
    seen = counts.reshape(rows, n_grid + 1)[:, :-1].cumsum(axis=1)
    padded = np.concatenate([np.zeros((rows, 1)), log_s], axis=1)
    return np.exp(np.take_along_axis(padded, seen, axis=1))


# -- strata ----------------------------------------------------------------------------------
def strata_from_design(dt: xr.DataTree, by: Sequence[str]) -> dict[str, NDArray]:
    """Return ``{"term=level": patient mask}`` for binary and categorical terms of the fit.

    The levels are read back from the user-scale design in ``constant_data.x`` (dummy
    columns; all zero is the reference level), so no data table is needed.

    Examples
    --------
    >>> strata_from_design(dt, ["expert_center"])  # doctest: +SKIP
    {'expert_center=1': array([...]), 'expert_center=0': array([...])}
    """
    design = fitted_design(dt)
    x = dt["constant_data"]["x"]
    out: dict[str, NDArray] = {}
    for name in by:
        term = design.term(name)
        if term.kind == "binary":
            value = x.sel(term=name).to_numpy()
            for level in (1, 0):
                out[f"{name}={level}"] = value == level
        elif term.kind == "categorical":
            dummies = x.sel(term=list(term.labels)).to_numpy()
            code = np.where(dummies.any(axis=1), dummies.argmax(axis=1) + 1, 0)
            for k, level in enumerate(term.levels):
                out[f"{name}={level}"] = code == k
        else:
            raise ValueError(
                f"term {name!r} is continuous: stratify by a binary or categorical term"
            )
    return out


# -- the check ------------------------------------------------------------------------------
@dataclass
class KMCheck:
    """The outcome of :func:`km_check`.

    Attributes
    ----------
    data : xarray.Dataset
        ``observed`` (stratum, time): the observed KM curve; ``replicated`` (sample,
        stratum, time): the replicated KM curves; ``lower``, ``median``, ``upper``
        (stratum, time): the pointwise predictive band; ``inside`` (stratum, time):
        whether the observed curve lies in the band; ``n_patients``, ``n_events``
        (stratum). Coordinates ``stratum`` (``"all"``, ``"expert_center=1"`` ...),
        ``time`` and the band's probability in ``attrs["ci_prob"]``.
    """

    data: xr.Dataset

    @property
    def ci_prob(self) -> float:
        """Probability of the pointwise band."""
        return float(self.data.attrs["ci_prob"])

    def coverage(self) -> pd.Series:
        """Share of grid times at which the observed KM lies inside the band, per stratum."""
        return self.data["inside"].mean("time").to_series().rename("coverage")

    def table(self, times: Sequence[float] = (12.0, 24.0, 60.0)) -> pd.DataFrame:
        """Per stratum: patients, events, coverage, and observed vs predicted at ``times``.

        Returns
        -------
        pandas.DataFrame
            Indexed by stratum; for each time ``t`` the columns ``S_obs(t)``,
            ``S_pred(t)`` (posterior predictive median), ``band(t)`` and ``p(t)``, the
            posterior predictive p-value ``P(S_rep(t) <= S_obs(t))`` (near 0 or 1: the
            model misses there).
        """
        ds = self.data
        out = pd.DataFrame(
            {
                "patients": ds["n_patients"].to_series(),
                "events": ds["n_events"].to_series(),
                "coverage": self.coverage(),
            }
        )
        grid = ds["time"].to_numpy()
        for t in times:
            if t > grid[-1]:
                continue
            at = ds.sel(time=t, method="nearest")
            out[f"S_obs({t:g})"] = at["observed"].to_series()
            out[f"S_pred({t:g})"] = at["median"].to_series()
            out[f"band({t:g})"] = [
                f"{lo:.2f}-{hi:.2f}"
                for lo, hi in zip(at["lower"].to_numpy(), at["upper"].to_numpy(), strict=True)
            ]
            out[f"p({t:g})"] = (at["replicated"] <= at["observed"]).mean("sample").to_series()
        return out


def km_check(
    dt: xr.DataTree,
    *,
    by: Sequence[str] | None = None,
    strata: Mapping[str, ArrayLike] | None = None,
    times: ArrayLike | None = None,
    n_times: int = 120,
    num_draws: int = NUM_DRAWS,
    ci_prob: float = CI_PROB,
    censoring_time: ArrayLike | None = None,
    random_seed: int | np.random.Generator | None = None,
) -> KMCheck:
    """Compare the observed Kaplan-Meier curves with posterior predictive replicates.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit of :class:`~bayes_sarcoma.HierarchicalWeibull`.
    by : sequence of str, optional
        Binary or categorical terms to stratify by (default: the treatment term and the
        effect modifier, or ``expert_center`` and ``margin`` when they are terms).
    strata : mapping, optional
        Extra strata, ``{label: boolean mask over patients}``.
    times : array_like, optional
        Time grid (default: ``n_times`` points from 0 to the 99th percentile of the
        observed times, where the KM curve still has patients at risk).
    n_times : int
        Number of grid points of the default grid.
    num_draws : int
        Posterior draws used (thinned evenly within chains).
    ci_prob : float
        Probability of the pointwise predictive band.
    censoring_time : array_like, optional
        Potential censoring time of each patient (used for those with an event); default:
        drawn from the reverse Kaplan-Meier estimate (module docstring).
    random_seed : int or numpy.random.Generator, optional
        Seed of the replicates.

    Returns
    -------
    KMCheck
        ``.data`` (observed curves, replicates and bands), ``.coverage()``, ``.table()``
        and ``.plot()``.

    Examples
    --------
    >>> check = km_check(dt, random_seed=1)  # doctest: +SKIP
    >>> check.coverage()                     # doctest: +SKIP
    stratum
    all                1.00
    expert_center=1    0.98
    ...
    """
    rng = np.random.default_rng(random_seed)
    time, event = _observed_outcome(dt)
    groups = _strata(dt, time, _default_by(dt) if by is None else by, strata)
    grid = (
        np.linspace(0.0, float(np.quantile(time, 0.99)), n_times)
        if times is None
        else np.asarray(times, dtype=float)
    )
    fi = fitted_inputs(dt, num_draws=num_draws)
    y_rep, d_rep = _replicates(fi, time, event, rng, censoring_time)
    observed = km_curves_by_stratum(time, event, grid, list(groups.values()))[:, 0]
    replicated = km_curves_by_stratum(y_rep, d_rep, grid, list(groups.values())).swapaxes(0, 1)
    attrs = {
        "ci_prob": ci_prob,
        "censoring": "given" if censoring_time is not None else "reverse KM",
        "time_label": time_label(dt),
    }
    return KMCheck(_km_dataset(groups, grid, event, observed, replicated, fi, attrs))


def _observed_outcome(dt: xr.DataTree) -> tuple[NDArray, NDArray]:
    """Return the observed times and event flags; raise for delayed entry (not handled)."""
    obs = dt["observed_data"].dataset
    time = obs["time"].to_numpy().astype(float)
    event = obs["event"].to_numpy().astype(bool)
    if "entry" in dt["constant_data"].dataset:
        raise NotImplementedError(
            "km_check does not handle delayed entry (left truncation) yet: replicates "
            "would have to be drawn conditional on survival to entry"
        )
    return time, event


def _strata(
    dt: xr.DataTree,
    time: NDArray,
    by: Sequence[str],
    strata: Mapping[str, ArrayLike] | None,
) -> dict[str, NDArray]:
    """Return ``{label: patient mask}``: all patients, the design's ``by``, then ``strata``.

    Empty strata are left out.
    """
    groups: dict[str, NDArray] = {"all": np.ones(time.size, bool)}
    groups |= strata_from_design(dt, by)
    for label, mask in (strata or {}).items():
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != time.shape:
            raise ValueError(f"stratum {label!r}: the mask needs one value per patient")
        groups[label] = mask
    return {k: v for k, v in groups.items() if v.any()}


def _replicates(
    fi: FittedInputs,
    time: NDArray,
    event: NDArray,
    rng: np.random.Generator,
    censoring_time: ArrayLike | None,
) -> tuple[NDArray, NDArray]:
    """Return replicated follow-up times and event flags (sample, patient), censored like the data.

    Event times are drawn from the model, censoring times by :func:`censoring_times`.
    """
    t_rep = fi.sample_times(rng)
    c_rep = censoring_times(time, event, rng, fi.n_samples, potential=censoring_time)
    return np.minimum(t_rep, c_rep), t_rep <= c_rep


def _km_dataset(
    groups: dict[str, NDArray],
    grid: NDArray,
    event: NDArray,
    observed: NDArray,
    replicated: NDArray,
    fi: FittedInputs,
    attrs: dict,
) -> xr.Dataset:
    """Return :attr:`KMCheck.data`: the curves, their pointwise band and the strata's sizes.

    The band's probability is ``attrs["ci_prob"]``.
    """
    alpha = (1.0 - attrs["ci_prob"]) / 2.0
    lower, median, upper = np.quantile(replicated, [alpha, 0.5, 1.0 - alpha], axis=0)
    tol = 1e-12
    inside = (observed >= lower - tol) & (observed <= upper + tol)
    return xr.Dataset(
        {
            "observed": (("stratum", "time"), observed),
            "replicated": (("sample", "stratum", "time"), replicated),
            "lower": (("stratum", "time"), lower),
            "median": (("stratum", "time"), median),
            "upper": (("stratum", "time"), upper),
            "inside": (("stratum", "time"), inside),
            "n_patients": ("stratum", [int(m.sum()) for m in groups.values()]),
            "n_events": ("stratum", [int(event[m].sum()) for m in groups.values()]),
        },
        coords={
            "stratum": list(groups),
            "time": grid,
            "chain": ("sample", fi.chain),
            "draw": ("sample", fi.draw),
        },
        attrs=attrs,
    )


def _default_by(dt: xr.DataTree) -> list[str]:
    spec = model_spec(dt)
    design = fitted_design(dt)
    names = [spec.get("treatment"), spec.get("effect_modifier"), "expert_center", "margin"]
    kinds = {t.name: t.kind for t in design.terms}
    out = []
    for name in names:
        if name and kinds.get(name) in ("binary", "categorical") and name not in out:
            out.append(name)
    return out


# -- ArviZ ----------------------------------------------------------------------------------
def add_posterior_predictive(
    dt: xr.DataTree,
    *,
    num_draws: int | None = NUM_DRAWS,
    random_seed: int | np.random.Generator | None = None,
) -> xr.DataTree:
    """Return a copy of ``dt`` with a ``posterior_predictive`` group of uncensored times.

    ``posterior_predictive.time`` (chain, draw, patient) holds one event time per patient
    and draw, with the patient's own centre effect, *not* censored: the convention of
    :func:`arviz_plots.plot_ppc_censored`, which compares them with the observed
    Kaplan-Meier curve of ``observed_data.time`` (``constant_data.time`` holds the event
    status). For a check that censors the replicates like the data, use :func:`km_check`.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit.
    num_draws : int or None
        Keep about this many posterior draws (evenly within chains); None keeps all
        (chains x draws x patients floats).
    random_seed : int or numpy.random.Generator, optional
        Seed.

    Returns
    -------
    xarray.DataTree
        The same groups (shared, not copied) plus ``posterior_predictive``.

    Examples
    --------
    >>> import arviz_plots as azp                                # doctest: +SKIP
    >>> azp.plot_ppc_censored(add_posterior_predictive(dt), var_names=["time"])  # doctest: +SKIP
    """
    rng = np.random.default_rng(random_seed)
    post = draws(dt, num_draws=num_draws)
    fi = fitted_inputs(dt, num_draws=num_draws)
    t_rep = fi.sample_times(rng)
    n_chains, n_kept = post.sizes["chain"], post.sizes["draw"]
    patients = dt["observed_data"]["patient"].to_numpy()
    pp = xr.Dataset(
        {"time": (("chain", "draw", "patient"), t_rep.reshape(n_chains, n_kept, -1))},
        coords={
            "chain": post["chain"].to_numpy(),
            "draw": post["draw"].to_numpy(),
            "patient": patients,
        },
        attrs={**dt["observed_data"].attrs, "description": "uncensored predicted event times"},
    )
    groups = {name: dt[name].dataset for name in dt.children}
    groups["posterior_predictive"] = pp
    tree = xr.DataTree.from_dict(groups)
    tree.attrs = dict(dt.attrs)
    return tree
