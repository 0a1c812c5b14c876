"""Centre profiling: which centres do better or worse than their case mix predicts.

:func:`center_profile` summarises each centre's effect ``u_c`` (the log hazard ratio of
the centre against a typical one, after the patients' covariates and the expert flag):
posterior mean, median and interval, the posterior distribution of its rank (1 = lowest
hazard = best), and the posterior probabilities of being among the best or worst
``tail`` (10%) of centres. It also gives the observed events ``O_c`` and the events
expected from the patients' covariates without any centre effect ``E_c`` (posterior
mean of ``sum_i H_i(t_i)``), the raw ratio ``O/E`` of a funnel plot.

Small centres are shrunk to the mean: with one or two patients the data say almost
nothing, so ``u_c`` keeps its prior, ``Normal(0, center_sd)``: a posterior median near 0,
a wide interval, a rank anywhere and no chance of being confidently best or worst. This
is the right answer, not a failure: ranking such centres by their raw ``O/E`` (0 or
several times 1) would be mostly noise. :func:`plot_funnel` shows both, side by side.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from bayes_sarcoma._defaults import CI_PROB
from bayes_sarcoma.data.design import level_codes
from bayes_sarcoma.model.posterior import linear_predictor
from bayes_sarcoma.predict.survival import draws, fitted_design, model_spec

if TYPE_CHECKING:
    from matplotlib.axes import Axes

EFFECTS = ("center", "total")


def expected_events(
    dt: xr.DataTree, *, group: str = "posterior", num_draws: int | None = None
) -> np.ndarray:
    """Return each fitted patient's expected events without a centre effect.

    ``E_i = H_i(t_i) - H_i(a_i)`` (``a_i`` the entry time if any), with the centre effect
    set to 0, averaged over the draws: ``sum_i E_i`` over a centre is the number of events
    the centre would have if its effect were that of a typical centre.

    Examples
    --------
    >>> expected_events(dt).sum()                                          # doctest: +SKIP
    """
    spec = model_spec(dt)
    post = draws(dt, group=group, num_draws=num_draws)
    cd = dt["constant_data"]
    x = cd["x"].to_numpy()
    time = dt["observed_data"]["time"].to_numpy()
    entry = cd["entry"].to_numpy() if "entry" in cd else None
    treatment = modifier_index = None
    modifier = spec.get("effect_modifier")
    if modifier and "interaction_effect" in post:
        treatment = cd["treatment"].to_numpy().astype(float)
        modifier_index = level_codes(cd[modifier].to_series(), list(post[modifier].to_numpy()))
    flat = {
        k: post[k].to_numpy().reshape(-1, *post[k].shape[2:])
        for k in ("intercept", "beta", "interaction_effect")
        if k in post
    }
    n = flat["intercept"].shape[0]
    shape = post["shape"].to_numpy().ravel() if "shape" in post else np.ones(n)
    total = np.zeros(len(time))
    step = max(1, 2**22 // len(time))
    for start in range(0, n, step):
        sl = slice(start, start + step)
        eta = linear_predictor(
            {k: v[sl] for k, v in flat.items()}, x, None, treatment, modifier_index
        )
        a = shape[sl, None]
        h = np.exp(a * np.log(time) + eta)
        if entry is not None:
            with np.errstate(divide="ignore"):
                h = h - np.exp(a * np.log(entry) + eta)
        total += h.sum(axis=0)
    return total / n


def center_profile(
    dt: xr.DataTree,
    *,
    ci_prob: float = CI_PROB,
    tail: float = 0.1,
    effect: str = "center",
    group: str = "posterior",
) -> pd.DataFrame:
    """Return a table of the centres' effects, ranks and observed/expected events.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit with centre effects.
    ci_prob : float
        Probability of the equal-tailed intervals.
    tail : float
        The share of centres counted as "best" or "worst" (default the 10% tails).
    effect : {"center", "total"}
        ``"center"`` ranks ``u_c``, the effect beyond case mix and expert status;
        ``"total"`` ranks ``u_c + beta_T * treated_c`` (the centre against a typical
        non-expert centre: what a patient choosing a centre compares).
    group : str
        Group of ``dt``.

    Returns
    -------
    pandas.DataFrame
        Index ``center``; columns ``n_patients``, ``n_events``, ``expected`` (``E_c``),
        ``o_e`` (``O_c / E_c``), the treatment flag (e.g. ``expert_center``) when the model
        has one, ``mean``, ``median``, ``lower``, ``upper`` (log hazard ratio against a
        typical centre), ``hr_median`` (``exp(median)``), ``rank_mean``, ``rank_lower``,
        ``rank_upper`` (1 = lowest hazard), ``prob_best`` and ``prob_worst``.

    Examples
    --------
    >>> profile = center_profile(dt)                                       # doctest: +SKIP
    >>> profile.sort_values("rank_mean").head()                            # doctest: +SKIP
    """
    if effect not in EFFECTS:
        raise ValueError(f"effect={effect!r}: choose one of {EFFECTS}")
    if not 0 < tail < 1:
        raise ValueError(f"tail must be in (0, 1), got {tail}")
    post = draws(dt, group=group)
    if "center_effect" not in post:
        raise ValueError("this fit has no centre effects (center_effects=False or no cluster)")
    spec = model_spec(dt)
    centers = post["center"].to_numpy()
    treatment = spec.get("treatment")
    table = _observed_and_expected(dt, centers, treatment, group)
    values = _effect_draws(post, table, effect, treatment)
    lo, hi = (1 - ci_prob) / 2, (1 + ci_prob) / 2
    _summarize_effects(table, values, lo, hi)
    k = _summarize_ranks(table, values, lo, hi, tail)
    table.index.name = "center"
    table.attrs = {
        "ci_prob": ci_prob,
        "tail": tail,
        "effect": effect,
        "treatment": treatment,
        "n_centers": len(centers),
        "n_tail": k,
    }
    return table


def _observed_and_expected(
    dt: xr.DataTree, centers: np.ndarray, treatment: str | None, group: str
) -> pd.DataFrame:
    """Return per centre (in the order ``centers``) patients, events, ``E_c`` and ``O/E``.

    The treatment flag of each centre (e.g. ``expert_center``) is a column too when the
    model has that term.
    """
    cd = dt["constant_data"]
    frame = pd.DataFrame(
        {"center": cd["center"].to_numpy(), "event": cd["event"].to_numpy()},
    )
    frame["expected"] = expected_events(dt, group=group)
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
    """Return the ranked effect, ``(draws, centres)``: ``u_c``, or ``u_c + beta_T * flag_c``."""
    u = post["center_effect"]
    if effect == "total":
        if treatment not in table.columns:
            raise ValueError("effect='total' needs a treatment term (e.g. expert_center)")
        flag = xr.DataArray(table[treatment].to_numpy(dtype=float), dims="center")
        u = u + post["beta"].sel(term=treatment) * flag
    return u.to_numpy().reshape(-1, len(table))


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


def plot_caterpillar(profile: pd.DataFrame, *, title: str | None = None):
    """Plot centre effects, ranks and the probabilities of being best/worst, sorted.

    Three panels share the x axis (centres sorted by posterior mean effect): the effect
    with its interval (expert centres in colour when the model has the flag), the
    posterior rank with its interval, and ``P(best)`` / ``P(worst)``.

    Parameters
    ----------
    profile : pandas.DataFrame
        Output of :func:`center_profile`.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> plot_caterpillar(center_profile(dt)).savefig("centres.png", dpi=150)  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    p = profile.sort_values("mean")
    x = np.arange(len(p))
    treatment = profile.attrs.get("treatment")
    flag = p[treatment].to_numpy(dtype=bool) if treatment in p else np.zeros(len(p), bool)
    ci_prob, tail = profile.attrs.get("ci_prob", 0.94), profile.attrs.get("tail", 0.1)
    fig, axes = plt.subplots(
        3, 1, figsize=(9, 8), sharex=True, constrained_layout=True, height_ratios=[3, 2, 1.5]
    )
    width = 0.6 if len(p) > 200 else 1.2
    for mask, colour, label in ((~flag, "0.55", "other"), (flag, "C3", treatment or "")):
        if not mask.any():
            continue
        axes[0].vlines(
            x[mask], p["lower"][mask], p["upper"][mask], color=colour, linewidth=width, label=label
        )
        axes[0].plot(x[mask], p["median"][mask], ".", color=colour, markersize=2)
        axes[1].vlines(
            x[mask], p["rank_lower"][mask], p["rank_upper"][mask], color=colour, linewidth=width
        )
        axes[1].plot(x[mask], p["rank_mean"][mask], ".", color=colour, markersize=2)
    axes[0].axhline(0, color="black", linewidth=0.8)
    axes[0].set_ylabel(
        f"centre effect\n(log hazard ratio vs typical centre,\n{ci_prob:.0%} interval)"
    )
    if flag.any():
        axes[0].legend(loc="upper left", fontsize=8)
    axes[1].set_ylabel(f"posterior rank\n(1 = lowest hazard, {ci_prob:.0%} interval)")
    axes[2].plot(x, p["prob_best"], ".", color="C2", markersize=3, label=f"best {tail:.0%}")
    axes[2].plot(x, p["prob_worst"], ".", color="C3", markersize=3, label=f"worst {tail:.0%}")
    axes[2].set_ylim(-0.02, 1.02)
    axes[2].set_ylabel("posterior\nprobability")
    axes[2].legend(loc="upper center", fontsize=8, ncol=2)
    axes[2].set_xlabel(f"{len(p)} centres, sorted by posterior mean effect")
    fig.suptitle(title or "Centre effects (small centres are shrunk to the mean)")
    return fig


def plot_funnel(
    profile: pd.DataFrame,
    *,
    levels: tuple[float, ...] = (0.95, 0.998),
    ymax: float = 4.0,
    title: str | None = None,
):
    """Plot observed / expected events against expected events, with Poisson funnel limits.

    Dots: each centre's raw ``O/E``; the funnel: where ``O/E`` of a centre with the
    average (typical-centre) hazard falls with probability ``levels`` (exact Poisson
    quantiles, ``O ~ Poisson(E)``). Open circles: the model's shrunk estimate
    ``exp(u_c)`` (posterior median) of the same centres: large centres keep their data,
    tiny ones are pulled to 1.

    Parameters
    ----------
    profile : pandas.DataFrame
        Output of :func:`center_profile` (with ``effect="center"``).
    levels : sequence of float
        Coverage of the funnel limits.
    ymax : float
        Top of the ``O/E`` axis; larger ratios (tiny centres with an event) are drawn as
        triangles at the top.
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

    e = profile["expected"].to_numpy(dtype=float)
    ratio = profile["o_e"].to_numpy(dtype=float)
    top = float(ymax)
    fig, ax = plt.subplots(figsize=(10, 5), constrained_layout=True)
    grid = np.geomspace(max(e.min(), 1e-2) * 0.8, e.max() * 1.25, 400)
    _plot_poisson_limits(ax, grid, levels)
    _plot_centre_ratios(ax, e, ratio, profile["hr_median"], top)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_ylim(0, top * 1.05)
    ax.set_xlabel("expected events E (centre size: events predicted from its patients' covariates)")
    ax.set_ylabel("observed / expected events (O / E)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(title or "Funnel plot of centres")
    return fig


def _plot_poisson_limits(ax: Axes, grid: np.ndarray, levels: tuple[float, ...]) -> None:
    """Draw the ``O/E`` limits of a typical-hazard centre (``O ~ Poisson(E)``) over ``grid``."""
    for level, style in zip(levels, ("--", ":"), strict=False):
        lo = stats.poisson.ppf((1 - level) / 2, grid) / grid
        hi = stats.poisson.ppf((1 + level) / 2, grid) / grid
        hi[hi == 0] = np.nan  # E so small that even one event is beyond the limit
        ax.plot(
            grid,
            lo,
            style,
            color="0.3",
            linewidth=1,
            drawstyle="steps-post",
            label=f"{level:.1%} Poisson limits",
        )
        ax.plot(grid, hi, style, color="0.3", linewidth=1, drawstyle="steps-post")


def _plot_centre_ratios(
    ax: Axes, e: np.ndarray, ratio: np.ndarray, hr_median: pd.Series, top: float
) -> None:
    """Draw each centre's raw ``O/E`` (triangles at ``top`` above it) and shrunk ``exp(u_c)``."""
    clipped = ratio > top
    ax.scatter(
        e[~clipped], ratio[~clipped], s=10, color="C0", alpha=0.6, label="observed / expected"
    )
    ax.scatter(
        e[clipped],
        np.full(clipped.sum(), top),
        s=14,
        marker="^",
        color="C0",
        alpha=0.6,
        label=f"observed / expected > {top:.1f}",
    )
    ax.scatter(
        e,
        hr_median,
        s=14,
        facecolors="none",
        edgecolors="C3",
        linewidth=0.8,
        label="model: exp(centre effect), posterior median",
    )
