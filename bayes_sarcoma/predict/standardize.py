"""Standardized (g-computation) survival: every patient treated versus none treated.

For each posterior draw, every patient of ``data`` is set to treated (e.g. operated at an
expert centre) and then to control, keeping the other covariates, and the survival is
averaged over the patients and integrated over a new centre's effect::

    S_a(t) = mean_i E_u[exp(-exp(u) H0(t) exp(eta_i(a)))],   u ~ Normal(0, center_sd)

(``H0(t) = t**alpha`` for the Weibull).

The contrasts are ``S_1(t) - S_0(t)``, ``S_1(t) / S_0(t)``, and the differences in the
standardized medians and restricted mean survival times. With an effect modifier (the
expert-by-margin interaction) setting the treatment switches the interaction term too.
The assumptions that make these causal contrasts are in ``docs/causal.md``.

Cost and the shortcut used
--------------------------
Done directly, ``S_a`` costs draws x patients x times x nodes exponentials per arm. At
NETSARC size (4000 draws, 9594 patients, 12 nodes) that measured about 380 s here for 3
times and would take well over an hour for 61 (a curve). Here the mean over patients is
compressed, per draw, by a Taylor expansion of ``g(x) = exp(-exp(x))`` inside bins of
the linear predictor: with bin centres ``c_b`` and the patients' within-bin moments
``mu_bj = mean_i [i in b] (eta_i - c_b)**j / j!``::

    mean_i g(s + eta_i) = sum_b sum_{j < J} g^(j)(s + c_b) mu_bj  +  R,
    |R| <= max|g^(J)| (width / 2)**J / J!,

and ``g^(j)(x) = exp(-y) sum_k S2(j, k) (-y)**k`` with ``y = exp(x)`` (Stirling numbers of
the second kind). With bins 0.25 wide and ``J = 10`` the bound is 1.8e-12, so the
result equals the direct computation to numerical precision (tested), while the patients
enter only through ~30 bins a draw: 5 s for 3 times, 14 s for 61 (same machine, loaded).
Without an effect modifier the treated arm is the control arm shifted by the treatment
coefficient, so its moments are reused. The RMST uses the same expansion of
``r(x) = integral_0^1 g(x + alpha log v) dv`` (``RMST = tau * r``), whose derivatives
follow from ``r' = (g - r) / alpha``; the median is found by a safeguarded Newton search.

With a flexible baseline (``"mspline"``, ``"piecewise"``) ``t**alpha`` becomes ``H0(t)``:
the survival is the same expansion at ``log H0(t)``, the median inverts ``H0`` at the point
the Newton search finds, and the RMST integrates the standardized survival over time by
Gauss-Legendre quadrature cut at the knots (``Baseline.time_quadrature``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike
from scipy import special

from bayes_sarcoma._defaults import CI_PROB
from bayes_sarcoma.data.design import Design
from bayes_sarcoma.predict.survival import (
    Predictor,
    fitted_design,
    log_cumulative_hazard_quantile,
    model_spec,
    solve_decreasing,
    summarize,
    time_label,
)

#: Width of the linear-predictor bins and the number of Taylor terms (error < 2e-12).
BIN_WIDTH = 0.25
TAYLOR_TERMS = 10
#: Floats per intermediate array of the mixture evaluation.
_CHUNK = 2**22
#: exp(-y) is 0 in double precision beyond this, so larger y are clipped to it.
_Y_MAX = 800.0


def _stirling2(n: int) -> np.ndarray:
    """Return the Stirling numbers of the second kind ``S2[j, k]``, ``0 <= j, k <= n``.

    Computed as exact integers (``exact=True``), then stored as floats.
    """
    j = np.arange(n + 1)
    return special.stirling2(j[:, None], j[None, :], exact=True).astype(float)


_S2 = _stirling2(TAYLOR_TERMS + 1)


class PatientMixture:
    """The mean over patients of ``f(s + eta_i)``, per draw, for ``f = g, g', r``.

    ``g(x) = exp(-exp(x))`` is the survival of a patient whose log cumulative hazard is
    ``x``. Built from the linear predictors ``eta`` ``(draws, patients)``; see the module
    docstring for the binned Taylor expansion.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> eta = rng.normal(0, 1, (2, 500))
    >>> s = np.array([[-1.0, 0.5], [0.0, 2.0]])
    >>> direct = np.exp(-np.exp(s[:, :, None] + eta[:, None, :])).mean(-1)
    >>> bool(np.allclose(PatientMixture(eta).survival(s), direct, atol=1e-11))
    True
    """

    def __init__(self, eta: np.ndarray, *, width: float = BIN_WIDTH, terms: int = TAYLOR_TERMS):
        eta = np.asarray(eta, dtype=float)
        n_draws, n = eta.shape
        lo = eta.min(axis=1, keepdims=True)
        idx = np.floor((eta - lo) / width).astype(np.int64)
        n_bins = int(idx.max()) + 1
        centres = lo + (np.arange(n_bins) + 0.5) * width
        delta = (eta - lo) - (idx + 0.5) * width
        flat = (idx + n_bins * np.arange(n_draws)[:, None]).ravel()
        moments = np.empty((n_draws, n_bins, terms))
        power = np.ones_like(delta)
        for j in range(terms):
            moments[..., j] = np.bincount(
                flat, weights=power.ravel(), minlength=n_draws * n_bins
            ).reshape(n_draws, n_bins) / (n * math.factorial(j))
            power *= delta
        # Bins empty in every draw carry nothing: drop them.
        used = moments[..., 0].any(axis=0)
        self.centres = centres[:, used]
        self.moments = moments[:, used]
        self.eta_min = lo[:, 0]
        self.eta_max = eta.max(axis=1)
        self.terms = terms
        self.coef = self.moments @ _S2[:terms, : terms + 1]
        self.coef_derivative = self.moments @ _S2[1 : terms + 1, : terms + 1]

    def shifted(self, shift: np.ndarray) -> PatientMixture:
        """Return the mixture of ``eta_i + shift`` (one shift per draw): no new moments."""
        out = copy.copy(self)
        out.centres = self.centres + shift[:, None]
        out.eta_min = self.eta_min + shift
        out.eta_max = self.eta_max + shift
        return out

    def _y(self, s: np.ndarray, sl: slice = slice(None)) -> np.ndarray:
        with np.errstate(over="ignore"):
            return np.minimum(np.exp(s[..., None] + self.centres[sl, None, :]), _Y_MAX)

    def _poly(self, s: np.ndarray, *coefs: np.ndarray) -> list[np.ndarray]:
        """Return ``sum_b exp(-y) sum_k coef[b, k] (-y)**k`` (``y = exp(s + c_b)``) per coef."""
        outs = [np.empty(s.shape) for _ in coefs]
        per_draw = s.shape[1] * self.centres.shape[1]
        step = max(1, _CHUNK // max(per_draw, 1))
        for start in range(0, s.shape[0], step):
            sl = slice(start, start + step)
            y = self._y(s[sl], sl)
            neg_y, decay = -y, np.exp(-y)
            for out, coef in zip(outs, coefs, strict=True):
                c = coef[sl, None]
                acc = c[..., -1]
                for k in range(coef.shape[-1] - 2, -1, -1):
                    acc = acc * neg_y + c[..., k]
                out[sl] = np.sum(acc * decay, axis=-1)
        return outs

    def survival(self, s: np.ndarray) -> np.ndarray:
        """Return ``mean_i g(s + eta_i)`` for points ``s`` ``(draws, points)``."""
        return self._poly(s, self.coef)[0]

    def survival_and_derivative(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``mean_i g(s + eta_i)`` and ``mean_i g'(s + eta_i)``."""
        value, slope = self._poly(s, self.coef, self.coef_derivative)
        return value, slope

    def restricted(self, x: np.ndarray, shape: np.ndarray) -> np.ndarray:
        """Return ``mean_i r(x + eta_i)``, ``r(x) = integral_0^1 g(x + shape log v) dv``.

        ``tau * r(shape * log(tau) + eta)`` is the RMST to ``tau`` of a patient with
        linear predictor ``eta``. ``x`` is ``(draws, points)``, ``shape`` ``(draws,)``.
        """
        a = (1.0 / shape)[:, None, None]
        xb = x[..., None] + self.centres[:, None, :]
        y = self._y(x)
        r = _r0(xb, y, a)
        total = r * self.moments[:, None, :, 0]
        neg_y = -y
        for j in range(1, self.terms):
            # r^(j) = a (g^(j-1) - r^(j-1)), g^(j-1) = exp(-y) sum_k S2(j-1, k) (-y)^k
            g = np.polynomial.polynomial.polyval(neg_y, _S2[j - 1, :j], tensor=False)
            r = a * (g * np.exp(-y) - r)
            total = total + r * self.moments[:, None, :, j]
        return total.sum(axis=-1)


def _r0(x: np.ndarray, y: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Return ``r(x) = Gamma(a + 1) exp(-a x) P(a, exp(x))`` (``a = 1 / shape``).

    For ``y = exp(x) < 1e-5`` the series ``sum_n (-y)**n / (n! (n / a + 1))`` (4 terms,
    error < 1e-21) avoids ``0 * inf``.
    """
    a = np.broadcast_to(a, x.shape)
    small = y < 1e-5
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        out = np.exp(special.gammaln(a + 1.0) - a * x) * special.gammainc(a, y)
    if small.any():
        ys, as_ = y[small], a[small]
        out[small] = sum((-ys) ** n / (math.factorial(n) * (n / as_ + 1.0)) for n in range(4))
    return out


def _mixture_survival(mix: PatientMixture, log_cum: np.ndarray, offsets: np.ndarray, w):
    """Return the standardized survival at ``log H0`` values ``log_cum`` ``(draws, times)``."""
    n, k = offsets.shape
    s = log_cum[:, :, None] + offsets[:, None, :]  # -inf at t = 0 stays -inf
    return mix.survival(s.reshape(n, -1)).reshape(n, log_cum.shape[1], k) @ w


def _arm_quantities(
    mix: PatientMixture,
    arm: Predictor,
    sl: slice,
    t: np.ndarray,
    log_c_half: np.ndarray,
    horizon: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the standardized survival ``(draws, times)``, median and RMST of one arm."""
    offsets = arm.offsets(sl)
    _, w = arm.nodes()
    surv = _mixture_survival(mix, arm.log_cumulative(sl, t), offsets, w)

    def fun(x):
        value, slope = mix.survival_and_derivative(x[:, None] + offsets)
        return value @ w - 0.5, slope @ w

    # s is log H0(t) (alpha log t): 1e-10 is a relative error of ~1e-10 in the median.
    s_half = solve_decreasing(fun, log_c_half - mix.eta_max, log_c_half - mix.eta_min, xtol=1e-10)
    median = arm.invert(sl, s_half[:, None])[:, 0]
    if arm.baseline.spline:
        nodes, weights = arm.baseline.time_quadrature(horizon)
        rmst = _mixture_survival(mix, arm.log_cumulative(sl, nodes), offsets, w) @ weights
    else:
        shape = arm.shape(sl)
        x = shape[:, None] * np.log(horizon) + offsets
        rmst = horizon * (mix.restricted(x, shape) @ w)
    return surv, median, rmst


def standardized_survival(
    dt: xr.DataTree,
    data: pd.DataFrame,
    times: ArrayLike,
    *,
    treatment: str | None = None,
    center: str = "new",
    horizon: float | None = None,
    group: str = "posterior",
    num_draws: int | None = None,
    n_nodes: int | None = None,
) -> xr.Dataset:
    """Return the standardized survival of both arms and their contrasts, per draw.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit (or prior draws, ``group="prior"``).
    data : pandas.DataFrame
        The patients whose covariate distribution is standardized over: the fitting data
        for the whole registry, or a subset (e.g. ``df[df.margin == "R1"]``) for a subgroup.
    times : array_like
        Times (>= 0) in the fit's time unit.
    treatment : str, optional
        A binary term (default: the model's treatment, ``expert_center`` for registry
        endpoints) set to 1 (``treated``) and 0 (``control``) for every patient.
    center : {"new", "typical"}
        ``"new"`` integrates over a new centre's effect (the population of centres);
        ``"typical"`` sets it to 0.
    horizon : float, optional
        Horizon of the RMST (default ``max(times)``).
    group : {"posterior", "prior"}
        Which draws of ``dt``.
    num_draws : int, optional
        Use at most this many draws.
    n_nodes : int, optional
        Gauss-Hermite nodes for ``center="new"`` (default: enough for an error below
        1e-10 at the largest centre sd of the draws, :func:`nodes_for`).

    Returns
    -------
    xarray.Dataset
        ``treated``, ``control``, ``difference`` (treated - control) and ``ratio``
        (treated / control), dims ``(chain, draw, time)``; ``median_treated``,
        ``median_control``, ``median_difference``, ``rmst_treated``, ``rmst_control`` and
        ``rmst_difference`` (to ``horizon``), dims ``(chain, draw)``.

    Examples
    --------
    >>> std = standardized_survival(dt, df, [12, 24, 60])                  # doctest: +SKIP
    >>> standardized_summary(std)                                          # doctest: +SKIP
    >>> r1 = standardized_survival(dt, df[df.margin == "R1"], [60])        # doctest: +SKIP
    """
    _check_center(center)
    spec = model_spec(dt)
    treatment = treatment or spec.get("treatment")
    design = fitted_design(dt)
    _check_treatment(treatment, design)
    t, horizon = _times_and_horizon(times, horizon)
    kw = dict(center=center, group=group, num_draws=num_draws, n_nodes=n_nodes)
    arms = {
        "treated": Predictor.from_fit(dt, data, set_term=(treatment, 1.0), **kw),
        "control": Predictor.from_fit(dt, data, set_term=(treatment, 0.0), **kw),
    }
    # With an effect modifier of this treatment, the interaction switches with it.
    modified = arms["treated"].modifier_index is not None and treatment == spec.get("treatment")
    shift_column = None if modified else design.labels.index(treatment)
    out = _standardize_arms(arms, t, horizon, shift_column)
    attrs = {"treatment": treatment, "center": center, "horizon": horizon}
    return _standardized_dataset(arms["treated"], out, t, attrs, time_label(dt))


def arm_labels(treatment: str | None) -> tuple[str, str]:
    """Return the names of the treated and control arms of ``treatment``.

    Examples
    --------
    >>> arm_labels("expert_center"), arm_labels("arm")
    (('expert centre', 'other centre'), ('arm = 1', 'arm = 0'))
    """
    if treatment in (None, "expert_center"):
        return "expert centre", "other centre"
    return f"{treatment} = 1", f"{treatment} = 0"


def _check_center(center: str) -> None:
    """Raise unless ``center`` is one that both arms can share (a new or typical centre)."""
    if center not in ("new", "typical"):
        raise ValueError(
            f"center={center!r}: standardized survival integrates over a new centre "
            "('new') or uses a typical one ('typical'); a patient's own centre cannot be "
            "switched to the other arm"
        )


def _check_treatment(treatment: str | None, design: Design) -> None:
    """Raise unless ``treatment`` is a binary term of the fitted ``design``."""
    if treatment is None or treatment not in design.columns:
        raise ValueError(
            f"treatment={treatment!r} must be one of the model's terms {design.columns}"
        )
    if design.term(treatment).kind != "binary":
        raise ValueError(f"treatment={treatment!r} must be a binary term")


def _times_and_horizon(times: ArrayLike, horizon: float | None) -> tuple[np.ndarray, float]:
    """Return the checked times as a 1-d float array and the RMST horizon (default their max)."""
    t = np.atleast_1d(np.asarray(times, dtype=float))
    if t.ndim != 1 or not np.all(np.isfinite(t) & (t >= 0)):
        raise ValueError("times must be finite numbers >= 0")
    horizon = float(np.max(t) if horizon is None else horizon)
    if not horizon > 0:
        raise ValueError("horizon must be > 0")
    return t, horizon


def _arm_mixtures(
    arms: dict[str, Predictor], sl: slice, shift_column: int | None
) -> dict[str, PatientMixture]:
    """Return the patient mixtures of the treated and control arms for the draws ``sl``.

    With ``shift_column`` (no effect modifier) eta is linear in the treatment, so the treated
    arm is the control one shifted by that column of ``beta``; without, both are built.
    """
    control = PatientMixture(arms["control"].eta(sl))
    if shift_column is None:
        treated = PatientMixture(arms["treated"].eta(sl))
    else:
        treated = control.shifted(arms["treated"].params["beta"][sl, shift_column])
    return {"treated": treated, "control": control}


def _standardize_arms(
    arms: dict[str, Predictor], t: np.ndarray, horizon: float, shift_column: int | None
) -> dict[str, np.ndarray]:
    """Return each arm's survival at ``t``, median and RMST per draw (``s_treated``, ...).

    The draws are taken in chunks; ``shift_column`` is passed on to :func:`_arm_mixtures`.
    """
    first = arms["treated"]
    _, w = first.nodes()
    n = first.n_samples
    out = {
        f"{q}_{a}": np.empty((n, len(t)) if q == "s" else n)
        for q in ("s", "median", "rmst")
        for a in arms
    }
    for sl in first.chunks(first.n_patients):
        log_c_half = log_cumulative_hazard_quantile(np.array([0.5]), first.offsets(sl), w)[:, 0]
        for name, mix in _arm_mixtures(arms, sl, shift_column).items():
            s, med, rmst = _arm_quantities(mix, first, sl, t, log_c_half, horizon)
            out[f"s_{name}"][sl], out[f"median_{name}"][sl], out[f"rmst_{name}"][sl] = s, med, rmst
    return out


def _standardized_dataset(
    first: Predictor, out: dict[str, np.ndarray], t: np.ndarray, attrs: dict, label: str
) -> xr.Dataset:
    """Return the arms' curves, medians, RMSTs and their contrasts as labelled draws.

    ``attrs`` (treatment, centre, horizon) are completed with the number of patients and the
    time axis ``label``.
    """

    def wrap(values, dims=(), coords=None):
        return first.wrap(values, dims, coords or {})

    tc = {"time": t}
    return xr.Dataset(
        {
            "treated": wrap(out["s_treated"], ("time",), tc),
            "control": wrap(out["s_control"], ("time",), tc),
            "difference": wrap(out["s_treated"] - out["s_control"], ("time",), tc),
            "ratio": wrap(out["s_treated"] / out["s_control"], ("time",), tc),
            "median_treated": wrap(out["median_treated"]),
            "median_control": wrap(out["median_control"]),
            "median_difference": wrap(out["median_treated"] - out["median_control"]),
            "rmst_treated": wrap(out["rmst_treated"]),
            "rmst_control": wrap(out["rmst_control"]),
            "rmst_difference": wrap(out["rmst_treated"] - out["rmst_control"]),
        },
        attrs={**attrs, "n_patients": first.n_patients, "time_label": label},
    )


def standardized_summary(ds: xr.Dataset, *, ci_prob: float = CI_PROB) -> pd.DataFrame:
    """Return a tidy table of :func:`standardized_survival`'s output.

    One row per quantity (``treated``, ``control``, ``difference``, ``ratio``) and time,
    then the medians and RMSTs (``time`` is NaN for those, and ``horizon`` holds the RMST
    horizon); columns ``quantity``, ``time``, ``mean``, ``median``, ``lower``, ``upper``;
    ``attrs["treatment"]`` names the treatment.

    Examples
    --------
    >>> standardized_summary(std, ci_prob=CI_PROB)                               # doctest: +SKIP
    """
    rows = []
    for name in ("treated", "control", "difference", "ratio"):
        rows.append(summarize(ds[name], ci_prob=ci_prob).assign(quantity=name))
    for name in (
        "median_treated",
        "median_control",
        "median_difference",
        "rmst_treated",
        "rmst_control",
        "rmst_difference",
    ):
        rows.append(summarize(ds[name], ci_prob=ci_prob).assign(quantity=name, time=np.nan))
    table = pd.concat(rows, ignore_index=True)
    table["horizon"] = np.where(table.quantity.str.startswith("rmst"), ds.attrs["horizon"], np.nan)
    table = table[["quantity", "time", "horizon", "mean", "median", "lower", "upper"]]
    table.attrs["treatment"] = ds.attrs.get("treatment")
    return table


def plot_standardized(
    ds: xr.Dataset,
    *,
    ci_prob: float = CI_PROB,
    labels: Sequence[str] | None = None,
    title: str | None = None,
):
    """Plot the standardized curves of both arms and their difference, with intervals.

    Parameters
    ----------
    ds : xarray.Dataset
        Output of :func:`standardized_survival` (use many times for smooth curves).
    ci_prob : float
        Probability of the equal-tailed intervals (shaded).
    labels : (str, str), optional
        Names of the treated and control arms (default: :func:`arm_labels` of the
        treatment, "expert centre" and "other centre" for ``expert_center``).
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> std = standardized_survival(dt, df, np.linspace(0, 120, 61))        # doctest: +SKIP
    >>> plot_standardized(std).savefig("standardized.png", dpi=150)         # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    t = ds["time"].to_numpy()
    labels = labels or arm_labels(ds.attrs.get("treatment"))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for name, label, colour in zip(("treated", "control"), labels, ("C0", "C1"), strict=True):
        s = summarize(ds[name], ci_prob=ci_prob)
        left.plot(t, s["mean"], color=colour, label=label)
        left.fill_between(t, s["lower"], s["upper"], color=colour, alpha=0.25, linewidth=0)
    left.set_xlabel(ds.attrs.get("time_label", "time"))
    left.set_ylabel("standardized survival probability")
    left.set_ylim(0, 1.01)
    left.legend(title=f"every patient at ({ci_prob:.0%} interval)")
    d = summarize(ds["difference"], ci_prob=ci_prob)
    right.plot(t, d["mean"], color="C2")
    right.fill_between(t, d["lower"], d["upper"], color="C2", alpha=0.25, linewidth=0)
    right.axhline(0, color="grey", linewidth=0.8)
    right.set_xlabel(ds.attrs.get("time_label", "time"))
    right.set_ylabel(f"difference in survival probability\n({labels[0]} - {labels[1]})")
    fig.suptitle(title or f"Standardized survival over {ds.attrs.get('n_patients')} patients")
    return fig
