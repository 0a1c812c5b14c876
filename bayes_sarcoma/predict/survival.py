"""Patient-level predictions from a fit, vectorised over posterior draws.

Every function takes the fit's DataTree ``dt`` (its ``attrs`` hold the model's
specification and covariate coding, so a saved DataTree is enough) and a table of patients
``data`` with the model's term columns, and returns an ``xarray.DataArray`` with dims
``(chain, draw, patient, ...)``: survival ``S(t)``, hazard ``h(t)``, cumulative hazard
``H(t)``, quantiles and the median, the restricted mean survival time (RMST) up to a
horizon, and the survival conditional on being event-free at a landmark time.

How the centre effect enters (``center=``):

``"known"``
    The patient's own centre's posterior effect ``u_c`` (the centre column must hold
    centres of the fit; another centre is an error).
``"new"`` (default)
    A centre not in the data: the survival is averaged over ``u ~ Normal(0, center_sd)``
    for each posterior draw, ``S(t) = E_u[exp(-exp(u) H_0(t))]``. This is the marginal
    survival of a patient whose centre is unknown or new. It is flatter than the
    conditional curve (frailty selection): its hazard ``-d log S / dt`` is not
    proportional across patients, and the marginal median has no closed form.
``"typical"``
    The centre effect set to 0 (a centre of median effect). For the Weibull model this
    keeps every closed form, but it describes no real population of centres.

Models without centre effects: the three choices coincide (``u = 0``).

The integral over a new centre uses Gauss-Hermite quadrature
(:func:`bayes_sarcoma.math.gauss_hermite.gauss_hermite_normal`) with enough nodes for an error below
1e-10 at the largest centre sd of the draws (:func:`~bayes_sarcoma.math.marginal.nodes_for`: 8
nodes for sd 0.15, 24 for 0.5); tests check it against adaptive quadrature and Monte Carlo.
Because ``S`` depends on ``t`` and the patient only through ``H_0(t) = t**alpha exp(eta)``,
a marginal quantile is ``t_q = (c_q exp(-eta))**(1/alpha)`` where ``c_q`` solves
``E_u[exp(-exp(u) c)] = 1 - q`` once per draw (a vectorised safeguarded Newton search),
and the marginal RMST is the quadrature-weighted sum of the closed forms
(:func:`bayes_sarcoma.math.weibull.restricted_mean`). The integration kernels are in
:mod:`bayes_sarcoma.math.marginal`.

Flexible baselines (``"mspline"``, ``"piecewise"``; :mod:`bayes_sarcoma.model.baselines`).
The same holds with ``H0(t)`` in place of ``t**alpha``: the quantile is ``H0^-1(c_q
exp(-eta))``, found by inverting ``H0`` numerically (monotone, bracketed Newton steps; closed
form past the last knot), and the RMST integrates the survival over time by composite
Gauss-Legendre quadrature cut at the knots (``Baseline.time_quadrature``). Past the last
knot (the longest follow-up of the fitted data) the hazard is held constant: predictions
there rest on that assumption.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike

from bayes_sarcoma._defaults import CI_PROB
from bayes_sarcoma.data.design import Design, level_codes
from bayes_sarcoma.math import weibull
from bayes_sarcoma.math.marginal import (
    log_cumulative_hazard_quantile,
    marginal_log_survival,
    nodes_for,
    quadrature,
)
from bayes_sarcoma.math.marginal import solve_decreasing as solve_decreasing
from bayes_sarcoma.model.baselines import COEF, Baseline
from bayes_sarcoma.model.posterior import SAMPLE_DIMS, linear_predictor

CENTER_CHOICES = ("known", "new", "typical")
#: Floats per intermediate array when a computation is split into chunks of draws.
CHUNK_ELEMENTS = 2**22


# -- the fit's specification -------------------------------------------------------------
def model_spec(dt: xr.DataTree) -> dict:
    """Return the model specification stored in ``dt.attrs["model"]``."""
    spec = dt.attrs.get("model")
    if spec is None:
        raise ValueError("dt has no model specification in attrs['model']: is it a fit?")
    return json.loads(spec) if isinstance(spec, str) else dict(spec)


def fitted_design(dt: xr.DataTree) -> Design:
    """Return the covariate coding stored in ``dt.attrs["design"]``."""
    spec = dt.attrs["design"]
    return Design.from_dict(json.loads(spec) if isinstance(spec, str) else spec)


def time_label(dt: xr.DataTree) -> str:
    """Return an axis label for the time of ``dt``'s model (its unit included)."""
    spec = model_spec(dt)
    if spec.get("endpoint"):
        return "months since surgery"
    unit = spec.get("time_unit") or "the data's unit"
    return f"time ({spec['time']}, {unit})"


def draws(dt: xr.DataTree, *, group: str = "posterior", num_draws: int | None = None) -> xr.Dataset:
    """Return the draws of ``group``, thinned to at most ``num_draws`` draws in all.

    Thinning keeps every k-th draw of each chain (``k = ceil(total / num_draws)``), so
    the result keeps the ``(chain, draw)`` dims.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> post = xr.Dataset({"a": (("chain", "draw"), np.zeros((2, 100)))})
    >>> tree = xr.DataTree.from_dict({"posterior": post})
    >>> draws(tree, num_draws=50).sizes["draw"]
    25
    """
    if group not in dt.children:
        raise ValueError(f"dt has no group {group!r}; it has {sorted(dt.children)}")
    ds = dt[group].to_dataset()
    if num_draws is not None:
        if num_draws < 1:
            raise ValueError(f"num_draws must be >= 1, got {num_draws}")
        total = ds.sizes["chain"] * ds.sizes["draw"]
        factor = int(np.ceil(total / num_draws))
        if factor > 1:
            ds = azs.thin(ds, factor=factor)
    return ds


# -- the linear predictor of patients under posterior draws -----------------------------
@dataclass
class Predictor:
    """Patients' linear predictors under a set of draws, computed chunk by chunk.

    Build one with :meth:`from_fit`. ``eta(sl)`` is the user-scale linear predictor of the
    draws ``sl`` (flattened over chain and draw), with the patient's own centre effect for
    ``center="known"``; ``offsets(sl)`` are the centre effects to integrate over (one
    column per quadrature node; a single zero column when nothing is integrated).
    """

    params: dict[str, np.ndarray]
    sample_coords: dict[str, np.ndarray]
    raw_x: np.ndarray
    center_index: np.ndarray | None
    treatment: np.ndarray | None
    modifier_index: np.ndarray | None
    patient: np.ndarray
    integrate: bool
    n_nodes: int = 1
    baseline: Baseline = field(default_factory=lambda: Baseline("weibull"))

    @classmethod
    def from_fit(
        cls,
        dt: xr.DataTree,
        data: pd.DataFrame,
        *,
        center: str = "new",
        group: str = "posterior",
        num_draws: int | None = None,
        n_nodes: int | None = None,
        set_term: tuple[str, float] | None = None,
    ) -> Predictor:
        """Code ``data`` with the fit's design and gather the draws it needs.

        ``set_term=(column, value)`` sets a binary term (e.g. the treatment) to ``value``
        for every patient first (g-computation).
        """
        if center not in CENTER_CHOICES:
            raise ValueError(f"center={center!r}: choose one of {CENTER_CHOICES}")
        if not isinstance(data, pd.DataFrame):
            raise TypeError(f"data must be a pandas DataFrame, not {type(data).__name__}")
        if len(data) == 0:
            raise ValueError("data has no rows: there is no patient to predict for")
        spec = model_spec(dt)
        design = fitted_design(dt)
        if set_term is not None:
            data = data.assign(**{set_term[0]: set_term[1]})
        post = draws(dt, group=group, num_draws=num_draws)
        flat = {
            name: post[name].to_numpy().reshape(-1, *post[name].shape[2:])
            for name in post.data_vars
        }
        baseline = Baseline.from_fit(dt)
        if not baseline.spline and "shape" not in flat:
            flat["shape"] = np.ones(flat["intercept"].shape[0])
        has_centers = "center_effect" in flat
        center_index = None
        if center == "known" and has_centers:
            center_index = _known_centers(data, spec["cluster"], post["center"].to_numpy())
        treatment = modifier_index = None
        modifier = spec.get("effect_modifier")
        if modifier and "interaction_effect" in flat:
            for col in (spec["treatment"], modifier):
                if col not in data.columns:
                    raise ValueError(f"data lacks the column {col!r} that the model uses")
            treatment = data[spec["treatment"]].to_numpy(dtype=float)
            levels = list(post[modifier].to_numpy())
            modifier_index = level_codes(data[modifier], levels)
            if (modifier_index < 0).any():
                bad = pd.unique(data[modifier][modifier_index < 0].to_numpy(dtype=object))
                raise ValueError(
                    f"{modifier} values {list(bad)} are not levels of the fit {levels}"
                )
        integrate = center == "new" and has_centers
        if integrate and n_nodes is None:
            n_nodes = nodes_for(flat["center_sd"])
        return cls(
            params=flat,
            sample_coords={k: post[k].to_numpy() for k in SAMPLE_DIMS},
            raw_x=design.raw_matrix(data),
            center_index=center_index,
            treatment=treatment,
            modifier_index=modifier_index,
            patient=_patient_ids(data, spec, design),
            integrate=integrate,
            n_nodes=n_nodes or 1,
            baseline=baseline,
        )

    @property
    def n_samples(self) -> int:
        """Number of draws (chains times draws)."""
        return self.params["intercept"].shape[0]

    @property
    def n_patients(self) -> int:
        """Number of patients."""
        return self.raw_x.shape[0]

    def eta(self, sl: slice = slice(None)) -> np.ndarray:
        """Return the linear predictor ``(draws, patients)`` of the draws ``sl``."""
        part = {k: v[sl] for k, v in self.params.items()}
        return linear_predictor(
            part, self.raw_x, self.center_index, self.treatment, self.modifier_index
        )

    def shape(self, sl: slice = slice(None)) -> np.ndarray:
        """Return the Weibull shape ``(draws,)`` (Weibull and exponential baselines only)."""
        return self.params["shape"][sl]

    def baseline_params(self, sl: slice = slice(None)) -> dict[str, np.ndarray]:
        """Return the baseline's draws ``sl`` (``shape`` or ``baseline_coef``)."""
        return {k: self.params[k][sl] for k in ("shape", COEF) if k in self.params}

    def log_cumulative(self, sl: slice, t: np.ndarray) -> np.ndarray:
        """Return ``log H0(t)`` of the draws ``sl``, ``(draws, *t.shape)``."""
        return self.baseline.log_cumulative(self.baseline_params(sl), t)

    def log_hazard(self, sl: slice, t: np.ndarray) -> np.ndarray:
        """Return ``log h0(t)`` of the draws ``sl``, ``(draws, *t.shape)``."""
        return self.baseline.log_hazard(self.baseline_params(sl), t)

    def invert(self, sl: slice, log_h: np.ndarray) -> np.ndarray:
        """Return the times at which ``log H0`` reaches ``log_h`` ``(draws, ...)``."""
        return self.baseline.invert(self.baseline_params(sl), log_h)

    def nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the standard-normal nodes and weights of the centre integral."""
        if not self.integrate:
            return np.zeros(1), np.ones(1)
        return quadrature(self.n_nodes)

    def offsets(self, sl: slice = slice(None)) -> np.ndarray:
        """Return the centre effects integrated over, ``(draws, nodes)``."""
        z, _ = self.nodes()
        if not self.integrate:
            return np.zeros((len(self.params["intercept"][sl]), 1))
        return self.params["center_sd"][sl, None] * z

    def chunks(self, per_draw: int) -> Iterator[slice]:
        """Yield slices of draws whose intermediate arrays stay near ``CHUNK_ELEMENTS``."""
        step = max(1, CHUNK_ELEMENTS // max(int(per_draw), 1))
        for start in range(0, self.n_samples, step):
            yield slice(start, min(start + step, self.n_samples))

    def wrap(self, values: np.ndarray, dims: Sequence[str], coords: dict, **attrs) -> xr.DataArray:
        """Return ``values`` (draws flattened first) as a DataArray with chain and draw."""
        shape = tuple(len(self.sample_coords[d]) for d in SAMPLE_DIMS)
        values = values.reshape(*shape, *values.shape[1:])
        return xr.DataArray(
            values,
            dims=(*SAMPLE_DIMS, *dims),
            coords={**self.sample_coords, **coords},
            attrs=attrs,
        )


def _known_centers(data: pd.DataFrame, cluster: str | None, fitted: np.ndarray) -> np.ndarray:
    if cluster is None or cluster not in data.columns:
        raise ValueError(
            f"center='known' needs the centre column {cluster!r} in data; use center='new' "
            "(a centre not in the fit) or center='typical' (centre effect 0)"
        )
    index = level_codes(data[cluster], list(fitted))
    if (index < 0).any():
        unknown = pd.unique(data[cluster][index < 0].to_numpy(dtype=object))
        shown = ", ".join(map(repr, unknown[:5])) + (
            f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        )
        raise ValueError(
            f"center='known': centre(s) {shown} of column {cluster!r} are not in the fit "
            f"(it has {len(fitted)} centres, e.g. {', '.join(map(repr, fitted[:3]))}). Use "
            "center='new' to integrate over the distribution of centres (a centre not in the "
            "data) or center='typical' for a centre effect of 0."
        )
    return index


def _patient_ids(data: pd.DataFrame, spec: dict, design: Design) -> np.ndarray:
    idc = spec.get("id_column")
    if idc == "auto":
        idc = "patient_id" if "patient_id" in data.columns else None
    if idc and idc in data.columns:
        return data[idc].to_numpy()
    return data.index.to_numpy()


def _times(times: ArrayLike, name: str = "times") -> np.ndarray:
    t = np.atleast_1d(np.asarray(times, dtype=float))
    if t.ndim != 1 or not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError(f"{name} must be finite numbers >= 0 (a scalar or a 1-D sequence)")
    return t


# -- public predictions ------------------------------------------------------------------
def _curves(
    predictor: Predictor, t: np.ndarray, what: str
) -> np.ndarray:  # (samples, patients, times)
    z, w = predictor.nodes()
    out = np.empty((predictor.n_samples, predictor.n_patients, len(t)))
    for sl in predictor.chunks(predictor.n_patients * len(t) * len(z)):
        eta = predictor.eta(sl)
        log_cum = predictor.log_cumulative(sl, t)[:, None, :] + eta[..., None]  # -inf at t = 0
        hazard = what == "hazard"
        log_s, mean_frailty = marginal_log_survival(
            log_cum, predictor.offsets(sl), w, frailty=hazard
        )
        if what == "survival":
            out[sl] = np.exp(log_s)
        elif what == "cumulative_hazard":
            out[sl] = -log_s
        else:  # hazard = h0(t) * E[exp(u) | T > t]
            with np.errstate(over="ignore"):
                h = np.exp(predictor.log_hazard(sl, t)[:, None, :] + eta[..., None])
            out[sl] = h * mean_frailty
    return out


def _curve_array(dt, data, times, what: str, quantity: str, **kw) -> xr.DataArray:
    t = _times(times)
    p = Predictor.from_fit(dt, data, **kw)
    coords = {"patient": p.patient, "time": t}
    out = _curves(p, t, what)
    return p.wrap(out, ("patient", "time"), coords, quantity=quantity, center=kw["center"])


def predict_survival(
    dt: xr.DataTree,
    data: pd.DataFrame,
    times: ArrayLike,
    *,
    center: str = "new",
    group: str = "posterior",
    num_draws: int | None = None,
    n_nodes: int | None = None,
) -> xr.DataArray:
    """Return each patient's survival ``S(t)`` for each draw.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit (``HierarchicalWeibull.fit``) or prior draws (``sample_prior``).
    data : pandas.DataFrame
        Patients: the model's term columns (and the centre column for ``center="known"``).
    times : array_like
        Times (>= 0) in the fit's time unit (months for registry endpoints).
    center : {"new", "known", "typical"}
        How the centre effect enters (see :mod:`bayes_sarcoma.predict.survival`).
    group : {"posterior", "prior"}
        The group of ``dt`` whose draws are used.
    num_draws : int, optional
        Use at most this many draws (every k-th draw of each chain).
    n_nodes : int, optional
        Gauss-Hermite nodes for ``center="new"`` (default: enough for an error below
        1e-10 at the largest centre sd of the draws,
        :func:`~bayes_sarcoma.math.marginal.nodes_for`).

    Returns
    -------
    xarray.DataArray
        Dims ``(chain, draw, patient, time)``.

    Examples
    --------
    >>> import bayes_sarcoma as bs                                        # doctest: +SKIP
    >>> df = bs.simulate_registry(1500, random_seed=1)                           # doctest: +SKIP
    >>> model = bs.HierarchicalWeibull("OS")                              # doctest: +SKIP
    >>> dt = model.fit(df, draws=300, tune=300, chains=2)                 # doctest: +SKIP
    >>> s = predict_survival(dt, df.head(3), [12, 24, 60])                # doctest: +SKIP
    >>> s.mean(("chain", "draw")).sel(time=60)                            # doctest: +SKIP
    """
    kw = dict(center=center, group=group, num_draws=num_draws, n_nodes=n_nodes)
    return _curve_array(dt, data, times, "survival", "survival probability S(t)", **kw)


def predict_cumulative_hazard(
    dt: xr.DataTree,
    data: pd.DataFrame,
    times: ArrayLike,
    *,
    center: str = "new",
    group: str = "posterior",
    num_draws: int | None = None,
    n_nodes: int | None = None,
) -> xr.DataArray:
    """Return each patient's cumulative hazard ``H(t) = -log S(t)`` for each draw.

    Parameters are those of :func:`predict_survival`; dims ``(chain, draw, patient, time)``.

    Examples
    --------
    >>> h = predict_cumulative_hazard(dt, df.head(3), [12, 60])           # doctest: +SKIP
    """
    kw = dict(center=center, group=group, num_draws=num_draws, n_nodes=n_nodes)
    return _curve_array(dt, data, times, "cumulative_hazard", "cumulative hazard H(t)", **kw)


def predict_hazard(
    dt: xr.DataTree,
    data: pd.DataFrame,
    times: ArrayLike,
    *,
    center: str = "new",
    group: str = "posterior",
    num_draws: int | None = None,
    n_nodes: int | None = None,
) -> xr.DataArray:
    """Return each patient's hazard ``h(t)`` (events per time unit) for each draw.

    For ``center="new"`` this is the marginal hazard ``-d log S / dt``:
    ``h_0(t) E[exp(u) | T > t]``, the conditional hazard times the mean frailty of the
    patients still event-free at ``t``. Parameters are those of :func:`predict_survival`;
    dims ``(chain, draw, patient, time)``.

    Examples
    --------
    >>> h = predict_hazard(dt, df.head(3), [12, 60], center="typical")    # doctest: +SKIP
    """
    kw = dict(center=center, group=group, num_draws=num_draws, n_nodes=n_nodes)
    return _curve_array(dt, data, times, "hazard", "hazard h(t), events per time unit", **kw)


def predict_quantile(
    dt: xr.DataTree,
    data: pd.DataFrame,
    q: ArrayLike,
    *,
    center: str = "new",
    group: str = "posterior",
    num_draws: int | None = None,
    n_nodes: int | None = None,
) -> xr.DataArray:
    """Return the time by which a fraction ``q`` of such patients has had the event.

    Solves ``S(t) = 1 - q``: closed form for ``"known"``/``"typical"``; for ``"new"``
    ``t_q = (c_q exp(-eta))**(1/alpha)`` with ``c_q`` found once per draw. With a flexible
    baseline, ``t_q = H0^-1(c_q exp(-eta))`` by numerical inversion of ``H0``.

    Parameters
    ----------
    dt, data, center, group, num_draws, n_nodes
        As in :func:`predict_survival`.
    q : array_like
        Probabilities in (0, 1).

    Returns
    -------
    xarray.DataArray
        Dims ``(chain, draw, patient, quantile)``, in the fit's time unit.

    Examples
    --------
    >>> predict_quantile(dt, df.head(3), [0.25, 0.5])                     # doctest: +SKIP
    """
    q = np.atleast_1d(np.asarray(q, dtype=float))
    if q.ndim != 1 or not np.all((q > 0) & (q < 1)):
        raise ValueError("q must be probabilities strictly between 0 and 1")
    kw = dict(center=center, group=group, num_draws=num_draws, n_nodes=n_nodes)
    p = Predictor.from_fit(dt, data, **kw)
    _, w = p.nodes()
    out = np.empty((p.n_samples, p.n_patients, len(q)))
    for sl in p.chunks(p.n_patients * len(q)):
        log_c = log_cumulative_hazard_quantile(q, p.offsets(sl), w)  # (s, Q)
        out[sl] = p.invert(sl, log_c[:, None, :] - p.eta(sl)[..., None])
    return p.wrap(
        out,
        ("patient", "quantile"),
        {"patient": p.patient, "quantile": q},
        quantity="time by which a fraction q has had the event",
        center=center,
    )


def predict_median(
    dt: xr.DataTree,
    data: pd.DataFrame,
    *,
    center: str = "new",
    group: str = "posterior",
    num_draws: int | None = None,
    n_nodes: int | None = None,
) -> xr.DataArray:
    """Return each patient's median event-free time, dims ``(chain, draw, patient)``.

    ``(log 2 exp(-eta))**(1/alpha)`` for ``"known"``/``"typical"``; the marginal median
    over a new centre's effect for ``"new"`` (:func:`predict_quantile`).

    Examples
    --------
    >>> predict_median(dt, df.head(3)).median(("chain", "draw"))         # doctest: +SKIP
    """
    med = predict_quantile(
        dt, data, 0.5, center=center, group=group, num_draws=num_draws, n_nodes=n_nodes
    )
    return med.isel(quantile=0, drop=True).assign_attrs(quantity="median event-free time")


def predict_rmst(
    dt: xr.DataTree,
    data: pd.DataFrame,
    horizon: float | ArrayLike,
    *,
    center: str = "new",
    group: str = "posterior",
    num_draws: int | None = None,
    n_nodes: int | None = None,
) -> xr.DataArray:
    """Return the restricted mean survival time ``integral_0^horizon S(t) dt``.

    Closed form (:func:`bayes_sarcoma.math.weibull.restricted_mean`); for ``"new"`` the
    quadrature-weighted sum over a new centre's effect (the integral over time and over
    the centre effect commute). With a flexible baseline the survival is integrated over
    time by Gauss-Legendre quadrature cut at the knots (error ~1e-10).

    Parameters
    ----------
    dt, data, center, group, num_draws, n_nodes
        As in :func:`predict_survival`.
    horizon : float or array_like
        The horizon(s) ``tau`` (> 0) in the fit's time unit.

    Returns
    -------
    xarray.DataArray
        Dims ``(chain, draw, patient)``, or ``(chain, draw, patient, horizon)`` when
        several horizons are given; in the fit's time unit.

    Examples
    --------
    >>> predict_rmst(dt, df.head(3), 60).mean(("chain", "draw"))          # doctest: +SKIP
    """
    scalar = np.ndim(horizon) == 0
    tau = _times(horizon, "horizon")
    if np.any(tau <= 0):
        raise ValueError("horizon must be > 0")
    kw = dict(center=center, group=group, num_draws=num_draws, n_nodes=n_nodes)
    p = Predictor.from_fit(dt, data, **kw)
    out = _rmst(p, tau)
    da = p.wrap(
        out,
        ("patient", "horizon"),
        {"patient": p.patient, "horizon": tau},
        quantity="restricted mean survival time",
        center=center,
    )
    return da.isel(horizon=0, drop=True).assign_attrs(horizon=float(tau[0])) if scalar else da


def _rmst(p: Predictor, tau: np.ndarray) -> np.ndarray:
    """Return the RMST ``(draws, patients, horizons)``: closed form or quadrature over time."""
    _, w = p.nodes()
    out = np.empty((p.n_samples, p.n_patients, len(tau)))
    if not p.baseline.spline:
        for sl in p.chunks(p.n_patients * len(tau) * len(w)):
            eta = p.eta(sl)[:, :, None, None] + p.offsets(sl)[:, None, None, :]
            alpha = p.shape(sl)[:, None, None, None]
            out[sl] = weibull.restricted_mean(tau[:, None], eta, alpha) @ w
        return out
    for j, horizon in enumerate(tau):
        nodes, weights = p.baseline.time_quadrature(float(horizon))
        for sl in p.chunks(p.n_patients * len(nodes) * len(w)):
            log_cum = p.log_cumulative(sl, nodes)[:, None, :] + p.eta(sl)[..., None]
            log_s, _ = marginal_log_survival(log_cum, p.offsets(sl), w)
            out[sl, :, j] = np.exp(log_s) @ weights
    return out


def predict_conditional_survival(
    dt: xr.DataTree,
    data: pd.DataFrame,
    times: ArrayLike,
    *,
    landmark: float,
    center: str = "new",
    group: str = "posterior",
    num_draws: int | None = None,
    n_nodes: int | None = None,
) -> xr.DataArray:
    """Return ``P(T > t | T > landmark) = S(t) / S(landmark)`` (1 for ``t <= landmark``).

    Times count from the time origin (surgery), not from the landmark. For ``"new"`` the
    ratio of marginal survivals is the right conditional probability: being event-free at
    the landmark is itself evidence about the unknown centre's effect.

    Parameters
    ----------
    dt, data, times, center, group, num_draws, n_nodes
        As in :func:`predict_survival`.
    landmark : float
        The time (>= 0) at which the patients are known to be event-free.

    Returns
    -------
    xarray.DataArray
        Dims ``(chain, draw, patient, time)``.

    Examples
    --------
    >>> s = predict_conditional_survival(dt, df.head(3), [60], landmark=24)  # doctest: +SKIP
    """
    t = _times(times)
    landmark = float(_times(landmark, "landmark")[0])
    kw = dict(center=center, group=group, num_draws=num_draws, n_nodes=n_nodes)
    p = Predictor.from_fit(dt, data, **kw)
    log_s = -_curves(p, np.append(np.maximum(t, landmark), landmark), "cumulative_hazard")
    out = np.exp(log_s[..., :-1] - log_s[..., -1:])
    return p.wrap(
        out,
        ("patient", "time"),
        {"patient": p.patient, "time": t},
        quantity=f"survival conditional on being event-free at {landmark:g}",
        center=center,
        landmark=landmark,
    )


def summarize(
    da: xr.DataArray, *, ci_prob: float = CI_PROB, sample_dims: Sequence[str] = SAMPLE_DIMS
) -> pd.DataFrame:
    """Return a tidy table of posterior means, medians and equal-tailed intervals.

    One row per combination of the non-sample coordinates, with columns for those
    coordinates and ``mean``, ``median``, ``lower``, ``upper``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.ones((2, 10, 3)), dims=("chain", "draw", "time"),
    ...                   coords={"time": [12, 24, 60]})
    >>> list(summarize(da).columns)
    ['time', 'mean', 'median', 'lower', 'upper']
    """
    import arviz_stats as azs

    dims = list(sample_dims)
    ci = azs.eti(da, prob=ci_prob, dim=dims)
    table = xr.Dataset(
        {
            "mean": da.mean(dims),
            "median": da.median(dims),
            "lower": ci.sel(ci_bound="lower", drop=True),
            "upper": ci.sel(ci_bound="upper", drop=True),
        }
    )
    if not table["mean"].dims:
        return pd.DataFrame([{k: float(table[k]) for k in table.data_vars}])
    return table.to_dataframe().reset_index()
