"""Centre profiling: which centres do better or worse than their case mix predicts.

:func:`center_profile` judges each centre the way hospitals are judged, by its hazard
ratio against a typical centre of the network. It gives the observed events ``O_c`` and
the events expected from the case-mix model ``E_c`` (the patients' covariates, without
any centre effect; posterior mean of ``sum_i H_i(t_i)``), the raw ratio ``O/E``, and
next to it the model's shrunken ratio ``exp(u_c)`` (posterior median and ``ci_prob``
interval) with the probabilities that the centre's hazard is more than ``threshold``
(1.2: 20%) times the network's, or less than ``1 / threshold`` times. It also gives the
posterior of ``u_c`` itself (the log hazard ratio), its rank (1 = lowest hazard = best)
and the probabilities of being among the best or worst ``tail`` (10%) of centres.

Small centres are shrunk to the mean: with one or two patients the data say almost
nothing, so ``u_c`` keeps its prior, ``Normal(0, center_sd)``: a ratio near 1, a wide
interval, a rank anywhere and no chance of being confidently better or worse. This is the
right answer, not a failure: judging such centres by their raw ``O/E`` (0 or several
times 1) would be mostly noise. :func:`plot_funnel` shows both side by side, the raw
ratios within smooth Poisson control limits (:func:`funnel_limits`, Spiegelhalter 2005)
and the shrunken ones; :func:`plot_caterpillar` shows the shrunken ratios of the centres
that matter (expert centres and centres with at least ``min_patients`` patients) and
summarises the others in one row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from bayes_sarcoma._defaults import CI_PROB
from bayes_sarcoma.data.design import level_codes
from bayes_sarcoma.model.baselines import Baseline
from bayes_sarcoma.model.posterior import linear_predictor
from bayes_sarcoma.predict.survival import draws, fitted_design, model_spec

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.cm import ScalarMappable
    from matplotlib.figure import Figure
    from numpy.typing import ArrayLike

EFFECTS = ("center", "total")
#: Hazard ratio against a typical centre above which a centre counts as worse
#: (``p_above``); below ``1 / THRESHOLD`` it counts as better (``p_below``).
THRESHOLD = 1.2
#: Centres with at least this many patients get a row of their own in the caterpillar.
MIN_PATIENTS = 30
#: Coverage of the funnel plot's control limits (about 2 and 3 standard errors).
FUNNEL_LEVELS = (0.95, 0.998)
#: The first columns of :func:`center_profile`: the shrunken ratios next to the raw one.
_FIRST = (
    "n_patients",
    "n_events",
    "expected",
    "o_e",
    "ratio",
    "ratio_lower",
    "ratio_upper",
    "p_above",
    "p_below",
)
#: Ticks of a ratio axis (log scale) spanning less than 4-fold, 16-fold, or more.
_RATIO_TICKS = (
    (0.5, 0.67, 0.8, 0.9, 1, 1.1, 1.25, 1.5, 2),
    (0.25, 0.33, 0.5, 0.67, 0.8, 1, 1.25, 1.5, 2, 3, 4),
    (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 10, 20),
)


def expected_events(
    dt: xr.DataTree,
    *,
    group: str = "posterior",
    num_draws: int | None = None,
    without: Sequence[str] = (),
) -> np.ndarray:
    """Return each fitted patient's expected events without a centre effect.

    ``E_i = H_i(t_i) - H_i(a_i)`` (``a_i`` the entry time if any), with the centre effect
    set to 0, averaged over the draws: ``sum_i E_i`` over a centre is the number of events
    the centre would have if its effect were that of a typical centre.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit.
    group : str
        Group of ``dt``.
    num_draws : int, optional
        Thin the draws to at most this many.
    without : sequence of str
        Terms whose coefficients are set to 0 as well, e.g. ``("expert_center",)``: the
        events expected at a typical *non-expert* centre. Leaving out the treatment term
        leaves out its interaction with an effect modifier too.

    Returns
    -------
    numpy.ndarray
        One value per patient, in the order of ``dt``'s ``constant_data``.

    Examples
    --------
    >>> expected_events(dt).sum()                                          # doctest: +SKIP
    >>> expected_events(dt, without=["expert_center"]).sum()               # doctest: +SKIP
    """
    spec = model_spec(dt)
    post = draws(dt, group=group, num_draws=num_draws)
    cd = dt["constant_data"]
    terms = [str(t) for t in cd["x"]["term"].to_numpy()]
    if unknown := sorted(set(without) - set(terms)):
        raise ValueError(f"without={unknown}: not terms of this fit; its terms are {terms}")
    x = cd["x"].to_numpy().copy()
    x[:, [terms.index(t) for t in without]] = 0.0
    time = dt["observed_data"]["time"].to_numpy()
    entry = cd["entry"].to_numpy() if "entry" in cd else None
    treatment = modifier_index = None
    modifier = spec.get("effect_modifier")
    if modifier and "interaction_effect" in post and spec.get("treatment") not in without:
        treatment = cd["treatment"].to_numpy().astype(float)
        modifier_index = level_codes(cd[modifier].to_series(), list(post[modifier].to_numpy()))
    flat = {
        k: post[k].to_numpy().reshape(-1, *post[k].shape[2:])
        for k in ("intercept", "beta", "interaction_effect", "shape", "baseline_coef")
        if k in post
    }
    n = flat["intercept"].shape[0]
    baseline = Baseline.from_fit(dt)
    total = np.zeros(len(time))
    step = max(1, 2**22 // len(time))
    for start in range(0, n, step):
        part = {k: v[start : start + step] for k, v in flat.items()}
        eta = linear_predictor(part, x, None, treatment, modifier_index)
        h = np.exp(baseline.log_cumulative(part, time) + eta)
        if entry is not None:
            h = h - np.exp(baseline.log_cumulative(part, entry) + eta)
        total += h.sum(axis=0)
    return total / n


def center_profile(
    dt: xr.DataTree,
    *,
    ci_prob: float = CI_PROB,
    tail: float = 0.1,
    effect: str = "center",
    threshold: float = THRESHOLD,
    group: str = "posterior",
) -> pd.DataFrame:
    """Return a table of the centres' hazard ratios, ranks and observed/expected events.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit with centre effects.
    ci_prob : float
        Probability of the equal-tailed intervals.
    tail : float
        The share of centres counted as "best" or "worst" (default the 10% tails).
    effect : {"center", "total"}
        ``"center"`` judges ``u_c``, the effect beyond case mix and expert status, and
        ``E_c`` is expected at a typical centre of the same expert status; ``"total"``
        judges ``u_c + beta_T * treated_c`` (the centre against a typical non-expert
        centre: what a patient choosing a centre compares), and ``E_c`` is expected at a
        typical non-expert centre (case mix only); only for a centre-level treatment.
    threshold : float
        Hazard ratio (> 1) above which a centre counts as worse than the network
        (``p_above``); below ``1 / threshold`` it counts as better (``p_below``).
    group : str
        Group of ``dt``.

    Returns
    -------
    pandas.DataFrame
        Index ``center``; columns ``n_patients``, ``n_events`` (``O_c``), ``expected``
        (``E_c``), ``o_e`` (the raw ratio ``O_c / E_c``); ``ratio``, ``ratio_lower``,
        ``ratio_upper`` (the shrunken hazard ratio ``exp(effect)`` against a typical
        centre: posterior median and ``ci_prob`` interval), ``p_above``
        (``P(ratio > threshold)``), ``p_below`` (``P(ratio < 1 / threshold)``); the
        flag of a centre-level treatment (e.g. ``expert_center``); ``mean``,
        ``median``, ``lower``, ``upper`` (the log hazard ratio), ``hr_median``
        (``exp(median)``), ``rank_mean``, ``rank_lower``, ``rank_upper`` (1 = lowest
        hazard), ``prob_best`` and ``prob_worst``. ``attrs`` holds ``ci_prob``, ``tail``,
        ``effect``, ``threshold``, ``treatment`` (the flag's column; None when the model's
        treatment varies within centres: then it is part of the case mix, in ``E_c``, and
        describes no centre), ``n_centers`` and ``n_tail``.

    Examples
    --------
    >>> profile = center_profile(dt)                                       # doctest: +SKIP
    >>> profile.sort_values("p_above", ascending=False).head()             # doctest: +SKIP
    """
    _check_profile_args(ci_prob, tail, effect, threshold)
    post = draws(dt, group=group)
    if "center_effect" not in post:
        raise ValueError("this fit has no centre effects (center_effects=False or no cluster)")
    treatment = center_level_treatment(dt)
    if effect == "total" and treatment is None:
        raise ValueError(_no_total_effect(dt))
    centers = post["center"].to_numpy()
    without = (treatment,) if effect == "total" else ()
    table = _observed_and_expected(dt, centers, treatment, group, without)
    values = _effect_draws(post, table, effect, treatment)
    lo, hi = (1 - ci_prob) / 2, (1 + ci_prob) / 2
    _summarize_ratios(table, values, lo, hi, threshold)
    _summarize_effects(table, values, lo, hi)
    k = _summarize_ranks(table, values, lo, hi, tail)
    table = table[[*_FIRST, *(c for c in table.columns if c not in _FIRST)]]
    table.index.name = "center"
    table.attrs = {
        "ci_prob": ci_prob,
        "tail": tail,
        "effect": effect,
        "threshold": threshold,
        "treatment": treatment,
        "n_centers": len(centers),
        "n_tail": k,
    }
    return table


def center_level_treatment(dt: xr.DataTree) -> str | None:
    """Return the model's treatment term if it is constant within every centre, else None.

    A centre-level treatment (expert status) describes centres: :func:`center_profile`
    shows it as a flag per centre and can add its effect (``effect="total"``). A treatment
    that varies within centres (randomised within centres) is patient-level: part of the
    case mix. Read from the fitted design (``constant_data``), so old fits work too.
    """
    treatment = model_spec(dt).get("treatment")
    cd = dt["constant_data"]
    if treatment not in fitted_design(dt).labels or "center" not in cd:
        return None
    flag = pd.Series(cd["x"].sel(term=treatment).to_numpy())
    per_center = flag.groupby(cd["center"].to_numpy(), sort=False).nunique()
    return treatment if (per_center <= 1).all() else None


def _no_total_effect(dt: xr.DataTree) -> str:
    """Return why ``effect="total"`` is refused for ``dt``."""
    treatment = model_spec(dt).get("treatment")
    if treatment not in fitted_design(dt).labels:
        return "effect='total' needs a treatment term (e.g. expert_center)"
    return (
        f"effect='total' adds the effect of a centre-level treatment to each centre's, but "
        f"{treatment} varies within centres (a patient-level treatment): it is part of the "
        "case mix, already in the expected events; use effect='center'"
    )


def _check_profile_args(ci_prob: float, tail: float, effect: str, threshold: float) -> None:
    """Raise a ``ValueError`` naming the first argument of :func:`center_profile` out of range."""
    if effect not in EFFECTS:
        raise ValueError(f"effect={effect!r}: choose one of {EFFECTS}")
    if not 0 < tail < 1:
        raise ValueError(f"tail must be in (0, 1), got {tail}")
    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must be in (0, 1), got {ci_prob}")
    if not threshold > 1:
        raise ValueError(f"threshold must be a hazard ratio > 1 (e.g. 1.2), got {threshold}")


def _observed_and_expected(
    dt: xr.DataTree,
    centers: np.ndarray,
    treatment: str | None,
    group: str,
    without: Sequence[str] = (),
) -> pd.DataFrame:
    """Return per centre (in the order ``centers``) patients, events, ``E_c`` and ``O/E``.

    ``E_c`` leaves out the centre effect and the terms ``without``. The treatment flag of
    each centre (e.g. ``expert_center``) is a column too when the model has that term.
    """
    cd = dt["constant_data"]
    frame = pd.DataFrame(
        {"center": cd["center"].to_numpy(), "event": cd["event"].to_numpy()},
    )
    frame["expected"] = expected_events(dt, group=group, without=without)
    labels = fitted_design(dt).labels
    if treatment in labels:
        frame[treatment] = cd["x"].sel(term=treatment).to_numpy()
    agg = frame.groupby("center", sort=False).agg(
        n_patients=("event", "size"),
        n_events=("event", "sum"),
        expected=("expected", "sum"),
        **({treatment: (treatment, "max")} if treatment in frame else {}),
    )
    table = agg.reindex(centers)
    table["o_e"] = table["n_events"] / table["expected"]
    return table


def _effect_draws(
    post: xr.Dataset, table: pd.DataFrame, effect: str, treatment: str | None
) -> np.ndarray:
    """Return the judged effect, ``(draws, centres)``: ``u_c``, or ``u_c + beta_T * flag_c``."""
    u = post["center_effect"]
    if effect == "total":
        flag = xr.DataArray(table[treatment].to_numpy(dtype=float), dims="center")
        u = u + post["beta"].sel(term=treatment) * flag
    return u.to_numpy().reshape(-1, len(table))


def _summarize_ratios(
    table: pd.DataFrame, values: np.ndarray, lo: float, hi: float, threshold: float
) -> None:
    """Add the hazard ratios' median, interval and P(above/below the threshold) to ``table``."""
    ratio = np.exp(values)
    table["ratio"], table["ratio_lower"], table["ratio_upper"] = np.quantile(
        ratio, [0.5, lo, hi], axis=0
    )
    table["p_above"] = (ratio > threshold).mean(axis=0)
    table["p_below"] = (ratio < 1 / threshold).mean(axis=0)


def _summarize_effects(table: pd.DataFrame, values: np.ndarray, lo: float, hi: float) -> None:
    """Add the effects' mean, median, ``lo``/``hi`` quantiles and ``exp(median)`` to ``table``."""
    table["mean"] = values.mean(axis=0)
    table["median"] = np.median(values, axis=0)
    table["lower"], table["upper"] = np.quantile(values, [lo, hi], axis=0)
    table["hr_median"] = np.exp(table["median"])


def _summarize_ranks(
    table: pd.DataFrame, values: np.ndarray, lo: float, hi: float, tail: float
) -> int:
    """Add the posterior ranks and P(best/worst ``tail``) to ``table``; return the tail size."""
    n_centers = values.shape[1]
    ranks = stats.rankdata(values, axis=1)
    table["rank_mean"] = ranks.mean(axis=0)
    table["rank_lower"], table["rank_upper"] = np.quantile(ranks, [lo, hi], axis=0)
    k = max(1, math.ceil(tail * n_centers))
    table["prob_best"] = (ranks <= k).mean(axis=0)
    table["prob_worst"] = (ranks > n_centers - k).mean(axis=0)
    return k


def funnel_limits(expected: ArrayLike, prob: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Return the lower and upper ``O/E`` control limits of a funnel plot at ``expected``.

    A centre whose hazard is the network's has ``O ~ Poisson(E)`` events, and its ``O/E``
    falls between the limits with probability ``prob``. The Poisson quantiles are made
    continuous in ``E`` by interpolation (Spiegelhalter 2005, "Funnel plots for comparing
    institutional performance", Stat Med 24:1185): with ``r_p`` the ``p``-quantile of
    ``Poisson(E)``, ``p = (1 - prob) / 2`` for the lower limit and ``(1 + prob) / 2`` for
    the upper one, and ``F`` its distribution function,
    ``alpha = (F(r_p) - p) / (F(r_p) - F(r_p - 1))`` and ``limit = (r_p - alpha) / E``:
    ``r_p - alpha`` is where ``F``, joined linearly between the integers, crosses ``p``.
    So the limits are smooth curves, not stairs, and approach the normal approximation
    ``1 ± z sqrt(1 / E)`` for large ``E``. Where ``E`` is so small that the interpolated
    quantile is below 0 events the limit is 0 (for the upper limit: any event is beyond).

    Parameters
    ----------
    expected : array_like
        Expected events ``E`` (> 0).
    prob : float
        Coverage of the limits, e.g. 0.95 or 0.998.

    Returns
    -------
    lower, upper : numpy.ndarray
        The limits of ``O/E``, the shape of ``expected``.

    Examples
    --------
    >>> lower, upper = funnel_limits([10.0, 100.0], 0.95)
    >>> [round(float(v), 3) for v in upper]
    [1.616, 1.196]
    """
    e = np.asarray(expected, dtype=float)
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob}")
    if not np.all(e > 0):
        raise ValueError("expected events must be > 0")
    limits = []
    for p in ((1 - prob) / 2, (1 + prob) / 2):
        r = stats.poisson.ppf(p, e)
        at_r, below_r = stats.poisson.cdf(r, e), stats.poisson.cdf(r - 1, e)
        alpha = (at_r - p) / (at_r - below_r)
        limits.append(np.maximum(r - alpha, 0.0) / e)
    return limits[0], limits[1]


def plot_funnel(
    profile: pd.DataFrame,
    *,
    levels: Sequence[float] = FUNNEL_LEVELS,
    ymax: float = 4.0,
    min_expected: float = 0.1,
    min_patients: int = MIN_PATIENTS,
    title: str | None = None,
) -> Figure:
    """Plot observed / expected events against expected events, raw and shrunken.

    Left, the funnel plot: each centre's raw ``O/E`` against its expected events ``E``
    (its size), with the smooth Poisson control limits of :func:`funnel_limits` at
    ``levels``: where the ``O/E`` of a centre with the network's hazard falls. Right, the
    model's shrunken hazard ratio ``exp(u_c)`` of the same centres (posterior median, and
    the ``ci_prob`` interval of the centres of :func:`caterpillar_rows`): large centres
    keep their data, small ones are pulled to 1. The colour of a centre, the same in both
    panels, is ``p_above - p_below``: red if its hazard is probably above ``threshold``
    times the network's, blue if probably below ``1 / threshold``. Expert centres are
    diamonds.

    Parameters
    ----------
    profile : pandas.DataFrame
        Output of :func:`center_profile`.
    levels : sequence of float
        Coverage of the control limits (default 95% and 99.8%).
    ymax : float
        The ratio axis spans ``1 / ymax`` to ``ymax`` (log scale); ratios beyond it (tiny
        centres: ``O = 0`` or ``O/E`` many times 1) are triangles at the edges.
    min_expected : float
        Centres expecting fewer events (``O/E`` 0 or above ``1 / min_expected``: no
        information) are left out, and counted in a note; 0 shows them all.
    min_patients : int
        Intervals are drawn for expert centres and centres with at least this many
        patients (the others' are all about the prior's width).
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> plot_funnel(center_profile(dt)).savefig("funnel.png", dpi=150)    # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    ci_prob = profile.attrs.get("ci_prob", CI_PROB)
    threshold = profile.attrs.get("threshold", THRESHOLD)
    e = profile["expected"].to_numpy(dtype=float)
    keep = (e >= min_expected) & (e > 0)
    shown = profile[keep]
    fig, (raw, model) = plt.subplots(
        1, 2, figsize=(13, 5.6), sharex=True, sharey=True, layout="constrained"
    )
    handles = _draw_raw_panel(raw, shown, levels, ymax)
    if not keep.all():
        note = f"not shown: {(~keep).sum():,} centres expecting < {min_expected:g} events"
        raw.text(0.98, 0.97, note, transform=raw.transAxes, ha="right", va="top", fontsize=8)
    mappable = _draw_model_panel(model, shown, ymax, min_patients)
    raw.set_title("raw O / E, with Poisson control limits", fontsize=10)
    model.set_title(
        f"model: shrunken hazard ratio vs {_reference(profile)}, median and {ci_prob:.0%} "
        "credible interval",
        fontsize=10,
    )
    _probability_colorbar(fig, mappable, [raw, model], threshold)
    handles += _funnel_marker_handles(profile, ymax, ci_prob, threshold, min_patients)
    fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(title or "Funnel plot of centres: raw and shrunken ratios")
    return fig


def _draw_raw_panel(ax: Axes, profile: pd.DataFrame, levels: Sequence[float], ymax: float) -> list:
    """Draw the funnel: raw ``O/E`` against ``E`` and the control limits; return their handles."""
    e = profile["expected"].to_numpy(dtype=float)
    grid = np.geomspace(e.min() * 0.8, e.max() * 1.25, 1000)
    handles = _draw_funnel_limits(ax, grid, levels)
    _scatter_ratios(ax, e, profile["o_e"].to_numpy(dtype=float), profile, ymax)
    _ratio_axes(ax, ymax)
    ax.set_ylabel("observed / expected events (O / E)")
    return handles


def _draw_model_panel(
    ax: Axes, profile: pd.DataFrame, ymax: float, min_patients: int
) -> ScalarMappable:
    """Draw the shrunken ratios against ``E`` (intervals of the larger centres)."""
    e = profile["expected"].to_numpy(dtype=float)
    big = caterpillar_rows(profile, min_patients)[0]
    ax.vlines(big["expected"], big["ratio_lower"], big["ratio_upper"], color="0.5", lw=0.8)
    mappable = _scatter_ratios(ax, e, profile["ratio"].to_numpy(dtype=float), profile, ymax)
    threshold = profile.attrs.get("threshold", THRESHOLD)
    for level in (threshold, 1 / threshold):
        ax.axhline(level, color="0.3", linestyle=(0, (1, 2)), linewidth=0.8)
    _ratio_axes(ax, ymax)
    return mappable


def _ratio_axes(ax: Axes, ymax: float) -> None:
    """Make ``ax`` a log-log plot of a ratio against expected events, with a line at 1."""
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _format_ratio_axis(ax, "y", 1 / ymax, ymax)
    ax.set_xlabel("expected events (case-mix model)")


def _draw_funnel_limits(ax: Axes, grid: np.ndarray, levels: Sequence[float]) -> list:
    """Draw the smooth ``O/E`` control limits over ``grid``; return their legend handles.

    Upper limits below one event (``E`` so small that any event is beyond them) are not
    drawn: they would be a wall at the left edge, not a limit one can read.
    """
    handles = []
    for level, style in zip(levels, ("--", ":", "-."), strict=False):
        lower, upper = funnel_limits(grid, level)
        lower[lower <= 0] = np.nan
        upper[upper * grid < 1] = np.nan
        (line,) = ax.plot(grid, lower, style, color="0.25", linewidth=1.1)
        ax.plot(grid, upper, style, color="0.25", linewidth=1.1)
        line.set_label(f"{level * 100:g}% control limits (O ~ Poisson(E))")
        handles.append(line)
    return handles


def _scatter_ratios(
    ax: Axes, e: np.ndarray, ratio: np.ndarray, profile: pd.DataFrame, ymax: float
) -> ScalarMappable:
    """Scatter ``ratio`` against ``e``, coloured by ``p_above - p_below``, clipped to the axis.

    Ratios beyond ``[1 / ymax, ymax]`` are triangles at the edge; expert centres are
    diamonds with a black edge, drawn on top.
    """
    score = (profile["p_above"] - profile["p_below"]).to_numpy(dtype=float)
    expert = _expert_flags(profile)
    low, high = ratio < 1 / ymax, ratio > ymax
    y = np.clip(ratio, 1 / ymax, ymax)
    colour = {"cmap": "coolwarm", "vmin": -1, "vmax": 1}
    points = None
    for mask, marker in ((~low & ~high, "o"), (low, "v"), (high, "^")):
        keep = mask & ~expert
        points = ax.scatter(
            e[keep], y[keep], c=score[keep], marker=marker, s=12, alpha=0.8, lw=0, **colour
        )
    if expert.any():
        points = ax.scatter(
            e[expert],
            y[expert],
            c=score[expert],
            marker="D",
            s=30,
            edgecolors="black",
            linewidths=0.7,
            zorder=3,
            **colour,
        )
    return points


def _probability_colorbar(
    fig: Figure, mappable: ScalarMappable, axes: list[Axes], threshold: float
) -> None:
    """Add the colour bar of ``p_above - p_below`` (-1: surely better, 1: surely worse)."""
    bar = fig.colorbar(mappable, ax=axes, shrink=0.8, pad=0.01)
    bar.set_label(f"P(HR > {threshold:g}) − P(HR < {1 / threshold:.2f})")
    bar.set_ticks([-1, -0.5, 0, 0.5, 1], labels=["−1 (better)", "−0.5", "0", "0.5", "1 (worse)"])


def _reference(profile: pd.DataFrame) -> str:
    """Return what the ratios of ``profile`` compare a centre with."""
    if profile.attrs.get("effect") == "total":
        return "a typical non-expert centre"
    return "a typical centre"


def _funnel_marker_handles(
    profile: pd.DataFrame, ymax: float, ci_prob: float, threshold: float, min_patients: int
) -> list:
    """Return the legend handles of the funnel's markers, interval and threshold lines."""
    from matplotlib.lines import Line2D

    def marker(symbol: str, label: str, **kw) -> Line2D:
        style = {"color": "0.6", "markersize": 5, **kw}
        return Line2D([], [], marker=symbol, linestyle="none", label=label, **style)

    handles = [marker("o", "centre")]
    if _expert_flags(profile).any():
        handles.append(marker("D", _treatment_label(profile), markeredgecolor="black"))
    handles += [
        marker("v", f"O / E below {1 / ymax:g} (O = 0: few expected events)"),
        marker("^", f"O / E above {ymax:g} (an event where few were expected)"),
        Line2D(
            [],
            [],
            color="0.5",
            linewidth=1,
            label=f"{ci_prob:.0%} credible interval (≥ {min_patients} patients or expert)",
        ),
        Line2D(
            [],
            [],
            color="0.3",
            linestyle=(0, (1, 2)),
            label=f"HR = {threshold:g} and 1/{threshold:g}",
        ),
    ]
    return handles


def _treatment_label(profile: pd.DataFrame) -> str:
    """Return the legend label of the centres with the treatment flag, e.g. "expert centre"."""
    treatment = profile.attrs.get("treatment") or "expert_center"
    return "expert centre" if treatment == "expert_center" else f"{treatment} centre"


def _expert_flags(profile: pd.DataFrame) -> np.ndarray:
    """Return the treatment flag (e.g. expert centre) of each row of ``profile``, as bool."""
    treatment = profile.attrs.get("treatment")
    if treatment and treatment in profile:
        return profile[treatment].to_numpy(dtype=bool)
    return np.zeros(len(profile), dtype=bool)


def _format_ratio_axis(ax: Axes, axis: str, low: float, high: float) -> None:
    """Put plain ratio ticks (0.5, 1, 2, ...) on the log ``axis`` and set its range."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    span = high / low
    candidates = _RATIO_TICKS[0] if span < 4 else _RATIO_TICKS[1] if span < 16 else _RATIO_TICKS[2]
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(FixedLocator([t for t in candidates if low <= t <= high]))
    target.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())
    (ax.set_xlim if axis == "x" else ax.set_ylim)(low, high)


def plot_caterpillar(
    profile: pd.DataFrame, *, min_patients: int = MIN_PATIENTS, title: str | None = None
) -> Figure:
    """Plot the shrunken hazard ratios of the centres that matter, sorted.

    One row per expert centre and per centre with at least ``min_patients`` patients:
    the hazard ratio against a typical centre (posterior median and ``ci_prob``
    credible interval, log scale; expert centres in red), and in a narrow panel the
    posterior probabilities ``p_above`` and ``p_below`` of a hazard above ``threshold``
    times the network's, or below ``1 / threshold`` times. The other centres, often
    thousands of tiny ones whose ratios the model shrinks to 1, share one last row: the
    range of their medians (a band, with a tick per centre) and their typical interval.

    Parameters
    ----------
    profile : pandas.DataFrame
        Output of :func:`center_profile`.
    min_patients : int
        Centres with fewer patients (and not expert) are summarised in the last row.
    title : str, optional
        Figure title; the interval's level is stated above the plot in any case.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> plot_caterpillar(center_profile(dt)).savefig("centres.png", dpi=150)  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    shown, rest = caterpillar_rows(profile, min_patients)
    ci_prob = profile.attrs.get("ci_prob", CI_PROB)
    threshold = profile.attrs.get("threshold", THRESHOLD)
    rows = len(shown) + 3 * (len(rest) > 0)
    fig, (ax, prob_ax) = plt.subplots(
        1, 2, sharey=True, figsize=(9, 2.2 + 0.19 * rows), width_ratios=[3, 1], layout="constrained"
    )
    labels = _draw_centre_rows(ax, prob_ax, shown, threshold)
    if len(rest):
        labels.append(_draw_other_row(ax, prob_ax, rest, len(shown) + 0.6, min_patients))
    ticks = [*range(len(shown)), len(shown) + 0.6][: len(labels)]
    ax.set_yticks(ticks, labels, fontsize=8 if rows <= 80 else 5)
    for tick, expert in zip(ax.get_yticklabels(), _expert_flags(shown), strict=False):
        tick.set_color("C3" if expert else "black")
    ax.set_ylim(max(ticks, default=0) + (1.6 if len(rest) else 0.7), -0.7)
    bounds = [shown["ratio_lower"], shown["ratio_upper"], rest["ratio_lower"], rest["ratio_upper"]]
    low = min(1 / threshold, *(b.min() for b in bounds if len(b))) / 1.08
    high = max(threshold, *(b.max() for b in bounds if len(b))) * 1.08
    ax.set_xscale("log")
    _format_ratio_axis(ax, "x", low, high)
    ax.axvline(1.0, color="black", linewidth=0.8)
    for level in (threshold, 1 / threshold):
        ax.axvline(level, color="0.3", linestyle=(0, (1, 2)), linewidth=0.8)
    ax.set_xlabel(f"hazard ratio vs {_reference(profile)} (log scale)")
    expert = f"red diamonds: {_treatment_label(profile)}s; " if _expert_flags(shown).any() else ""
    ax.set_title(
        f"posterior medians and {ci_prob:.0%} credible intervals\n{expert}dotted: HR = "
        f"{threshold:g} and 1/{threshold:g}",
        fontsize=9,
    )
    prob_ax.set_xlim(-0.03, 1.03)
    prob_ax.set_xlabel("posterior probability")
    prob_ax.grid(axis="x", color="0.9")
    prob_ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=7, frameon=False)
    fig.suptitle(title or "Centres against a typical centre of the network")
    return fig


def caterpillar_rows(
    profile: pd.DataFrame, min_patients: int = MIN_PATIENTS
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``profile`` into the caterpillar's own rows and the centres it summarises.

    Parameters
    ----------
    profile : pandas.DataFrame
        Output of :func:`center_profile`.
    min_patients : int
        Expert centres and centres with at least this many patients get a row.

    Returns
    -------
    shown, rest : pandas.DataFrame
        The rows of ``profile`` shown one by one, sorted by ``ratio`` (lowest hazard
        first), and the others, in their order.

    Examples
    --------
    >>> shown, rest = caterpillar_rows(center_profile(dt), 30)            # doctest: +SKIP
    """
    keep = _expert_flags(profile) | (profile["n_patients"].to_numpy() >= min_patients)
    return profile[keep].sort_values("ratio", kind="stable"), profile[~keep]


def _draw_centre_rows(ax: Axes, prob_ax: Axes, shown: pd.DataFrame, threshold: float) -> list:
    """Draw one row per centre of ``shown`` (ratio, interval, probabilities); return labels."""
    y = np.arange(len(shown))
    expert = _expert_flags(shown)
    for mask, colour, marker in ((~expert, "0.25", "o"), (expert, "C3", "D")):
        ax.hlines(y[mask], shown["ratio_lower"][mask], shown["ratio_upper"][mask], color=colour)
        ax.plot(shown["ratio"][mask], y[mask], marker, color=colour, markersize=4)
    prob_ax.plot(
        shown["p_above"], y, "o", color="C3", markersize=3.5, label=f"P(HR > {threshold:g})"
    )
    prob_ax.plot(
        shown["p_below"], y, "o", color="C0", markersize=3.5, label=f"P(HR < {1 / threshold:.2f})"
    )
    return [
        f"{center}  (n={n})" for center, n in zip(shown.index, shown["n_patients"], strict=True)
    ]


def _draw_other_row(
    ax: Axes, prob_ax: Axes, rest: pd.DataFrame, y: float, min_patients: int
) -> str:
    """Summarise the centres of ``rest`` in one row at ``y``; return its label.

    A grey band spans their posterior medians (a tick per centre), a line their typical
    interval (the medians of their bounds); in ``prob_ax`` lines span their probabilities.
    """
    medians = rest["ratio"].to_numpy(dtype=float)
    ax.axhline(y - 0.8, color="0.6", linewidth=0.6)
    ax.fill_betweenx([y - 0.35, y + 0.35], medians.min(), medians.max(), color="0.85", lw=0)
    ax.plot(medians, np.full(len(medians), y), "|", color="0.3", alpha=0.3, markersize=9)
    typical = (rest["ratio_lower"].median(), rest["ratio_upper"].median())
    ax.hlines(y, *typical, color="0.45", linewidth=1)
    ax.text(
        math.sqrt(typical[0] * typical[1]),
        y + 0.6,
        f"band: their medians, {medians.min():.2f} to {medians.max():.2f}; line: their typical"
        f" interval, {typical[0]:.2f} to {typical[1]:.2f}",
        ha="center",
        va="top",
        fontsize=7,
        color="0.3",
    )
    for column, colour in (("p_above", "C3"), ("p_below", "C0")):
        values = rest[column]
        prob_ax.hlines(y, values.min(), values.max(), color=colour, linewidth=2, alpha=0.6)
    return f"{len(rest):,} other centres\n(< {min_patients} patients each)"
