"""Effect summaries: hazard ratios, time ratios and the treatment effect by modifier level.

- :func:`hazard_ratios`: ``exp(beta)`` per term; :func:`time_ratios`: the Weibull time
  (acceleration) ratio ``exp(-beta / shape)`` per term, how much longer (> 1) or shorter
  event-free times are. Both are tidy tables (one row per term) with the posterior mean,
  median, an equal-tailed interval and the posterior probability of benefit.
- :func:`effect_by_modifier`: with ``effect_modifier="margin"`` the treatment's hazard
  ratio at each level, partially pooled: ``log HR_m = beta_T + delta_m``,
  ``delta_m ~ Normal(0, interaction_sd)``. The ``common`` row is ``exp(beta_T)``, the
  centre of the levels' distribution. A small ``interaction_sd`` pulls the levels towards
  the common effect (the data cannot tell them apart); a large one lets each level speak.
- :func:`plot_hazard_ratios`, :func:`plot_effect_by_modifier`: forest plots (Matplotlib:
  the tables already hold what is drawn, on a log axis with a reference line at 1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from bayes_sarcoma._defaults import CI_PROB
from bayes_sarcoma.model.baselines import Baseline
from bayes_sarcoma.predict.survival import draws, fitted_design, model_spec, summarize

COLUMNS = ["mean", "median", "lower", "upper"]


def _table(values: xr.DataArray, dim: str, ci_prob: float, *, benefit: str) -> pd.DataFrame:
    """Summarise ``values`` (chain, draw, dim) with P(benefit): ``lt_1`` or ``gt_1``."""
    table = summarize(values, ci_prob=ci_prob).set_index(dim)[COLUMNS]
    if benefit == "lt_1":
        table["prob_lt_1"] = (values < 1).mean(("chain", "draw")).to_series()
    else:
        table["prob_gt_1"] = (values > 1).mean(("chain", "draw")).to_series()
    table.attrs["ci_prob"] = ci_prob
    return table


def hazard_ratios(
    dt: xr.DataTree, *, ci_prob: float = CI_PROB, group: str = "posterior"
) -> pd.DataFrame:
    """Return the hazard ratio ``exp(beta)`` of every term: a tidy table.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit (``group="prior"`` for prior draws).
    ci_prob : float
        Probability of the equal-tailed interval (``lower``, ``upper``).
    group : str
        Group of ``dt`` to summarise.

    Returns
    -------
    pandas.DataFrame
        Index ``term``; columns ``mean``, ``median``, ``lower``, ``upper`` (hazard ratio),
        ``prob_lt_1`` (posterior probability that the HR is below 1, i.e. lower hazard),
        and ``log_hr_mean``, ``log_hr_sd``. Continuous terms are per unit of their column
        (per year of age, per cm). In a model with an effect modifier the treatment's row is
        the common effect ``exp(beta_T)``; :func:`effect_by_modifier` gives each level's.

    Examples
    --------
    >>> hr = hazard_ratios(dt)                                             # doctest: +SKIP
    >>> hr.loc["expert_center", ["median", "lower", "upper", "prob_lt_1"]]  # doctest: +SKIP
    """
    beta = draws(dt, group=group)["beta"]
    table = _table(np.exp(beta), "term", ci_prob, benefit="lt_1")
    table["log_hr_mean"] = beta.mean(("chain", "draw")).to_series()
    table["log_hr_sd"] = beta.std(("chain", "draw")).to_series()
    return table


def time_ratios(
    dt: xr.DataTree, *, ci_prob: float = CI_PROB, group: str = "posterior"
) -> pd.DataFrame:
    """Return the time ratio ``exp(-beta / shape)`` of every term: a tidy table.

    Under the Weibull model a term multiplies every quantile of the event-free time (the
    median included) by this ratio: above 1, events come later.

    Returns
    -------
    pandas.DataFrame
        Index ``term``; columns ``mean``, ``median``, ``lower``, ``upper`` and
        ``prob_gt_1`` (posterior probability of longer times, equal to ``P(HR < 1)``).

    Examples
    --------
    >>> time_ratios(dt).loc["expert_center"]                               # doctest: +SKIP
    """
    if Baseline.from_fit(dt).spline:
        raise ValueError(
            "time ratios exist for the Weibull and exponential baselines only: with a "
            f"flexible baseline ({Baseline.from_fit(dt).name}) a hazard ratio does not scale "
            "time by a constant factor; compare medians or RMSTs (predict_median, "
            "standardized_survival) instead"
        )
    post = draws(dt, group=group)
    shape = post.get("shape", 1.0)
    return _table(np.exp(-post["beta"] / shape), "term", ci_prob, benefit="gt_1")


def effect_by_modifier(
    dt: xr.DataTree, *, ci_prob: float = CI_PROB, group: str = "posterior"
) -> pd.DataFrame:
    """Return the treatment's hazard ratio at each level of the effect modifier.

    Needs a fit with ``effect_modifier=`` (e.g. ``HierarchicalWeibull("LRFS",
    effect_modifier="margin")``).

    Returns
    -------
    pandas.DataFrame
        One row per level and a last row ``common`` (``exp(beta_T)``, the centre of the
        partially pooled levels); columns ``n_patients``, ``n_treated``, ``n_events`` (in
        the fitting data), ``mean``, ``median``, ``lower``, ``upper`` (hazard ratio) and
        ``prob_lt_1``. ``attrs`` holds ``modifier``, ``treatment``, ``ci_prob`` and the
        summary of ``interaction_sd`` (the spread of the log hazard ratios across levels).

    Examples
    --------
    >>> model = bs.HierarchicalWeibull("OS", effect_modifier="margin")     # doctest: +SKIP
    >>> dt = model.fit(df)                                                 # doctest: +SKIP
    >>> effect_by_modifier(dt)                                             # doctest: +SKIP
    """
    spec = model_spec(dt)
    modifier, treatment = spec.get("effect_modifier"), spec.get("treatment")
    post = draws(dt, group=group)
    if not modifier or "treatment_hazard_ratio" not in post:
        raise ValueError(
            "this fit has no effect modifier: fit the model with effect_modifier='margin' "
            "(or another categorical column) to estimate the effect per level"
        )
    hr = post["treatment_hazard_ratio"]
    levels = _table(hr, modifier, ci_prob, benefit="lt_1")
    label = fitted_design(dt).labels.index(treatment)
    common = _table(
        np.exp(post["beta"].isel(term=[label])).assign_coords(term=["common"]),
        "term",
        ci_prob,
        benefit="lt_1",
    )
    common.index.name = modifier
    table = pd.concat([levels, common])
    if "constant_data" in dt.children and modifier in dt.constant_data:
        cd = dt.constant_data
        frame = pd.DataFrame(
            {
                "level": cd[modifier].to_numpy(),
                "treated": cd["treatment"].to_numpy(),
                "event": cd["event"].to_numpy(),
            }
        )
        counts = frame.groupby("level").agg(
            n_patients=("event", "size"), n_treated=("treated", "sum"), n_events=("event", "sum")
        )
        counts.loc["common"] = counts.sum()
        table = counts.reindex(table.index).join(table)
    sd = post["interaction_sd"]
    lo, hi = np.quantile(sd, [(1 - ci_prob) / 2, (1 + ci_prob) / 2])
    table.attrs = {
        "modifier": modifier,
        "treatment": treatment,
        "ci_prob": ci_prob,
        "interaction_sd": {"mean": float(sd.mean()), "lower": float(lo), "upper": float(hi)},
    }
    return table


def _forest(ax, labels, median, lower, upper, inner_lower=None, inner_upper=None) -> None:
    y = np.arange(len(labels))[::-1]
    ax.hlines(y, lower, upper, color="C0", linewidth=1.5)
    if inner_lower is not None:
        ax.hlines(y, inner_lower, inner_upper, color="C0", linewidth=4)
    ax.plot(median, y, "o", color="C0", markersize=5)
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=0.8)
    ax.set_yticks(y, labels)
    log_axis(ax, "x")


def log_axis(ax, which: str = "x") -> None:
    """Put ``which`` axis on a log scale with plain-number ticks (0.5, 1, 2 ...)."""
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    lo, hi = (ax.get_xlim if which == "x" else ax.get_ylim)()
    nice = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 7, 10, 20]
    ticks = [v for v in nice if lo <= v <= hi] or [1.0]
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(ScalarFormatter())
    axis.set_minor_formatter(NullFormatter())


def plot_hazard_ratios(
    dt: xr.DataTree, *, ci_prob: float = CI_PROB, group: str = "posterior", title: str | None = None
):
    """Plot every term's hazard ratio: posterior median, 50% and ``ci_prob`` intervals.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> plot_hazard_ratios(dt).savefig("hazard_ratios.png", dpi=150)       # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    table = hazard_ratios(dt, ci_prob=ci_prob, group=group)
    inner = hazard_ratios(dt, ci_prob=0.5, group=group)
    fig, ax = plt.subplots(figsize=(6, 0.4 * len(table) + 1.2), constrained_layout=True)
    _forest(
        ax,
        list(table.index),
        table["median"],
        table["lower"],
        table["upper"],
        inner["lower"],
        inner["upper"],
    )
    ax.set_xlabel(
        f"hazard ratio (log scale; median, 50% and {ci_prob:.0%} intervals;\n"
        "continuous terms per unit of their column)"
    )
    ax.set_title(title or "Hazard ratios")
    return fig


def plot_effect_by_modifier(
    dt: xr.DataTree, *, ci_prob: float = CI_PROB, group: str = "posterior", title: str | None = None
):
    """Plot the treatment hazard ratio per modifier level (a forest plot).

    The shaded band is the ``ci_prob`` interval of the common effect ``exp(beta_T)``; each
    level shows its posterior median, 50% and ``ci_prob`` intervals and ``P(HR < 1)``.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> plot_effect_by_modifier(dt).savefig("expert_by_margin.png", dpi=150)  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    table = effect_by_modifier(dt, ci_prob=ci_prob, group=group)
    inner = effect_by_modifier(dt, ci_prob=0.5, group=group)
    modifier, treatment = table.attrs["modifier"], table.attrs["treatment"]
    levels = table.drop(index="common")
    fig, ax = plt.subplots(figsize=(7, 0.7 * len(levels) + 1.8), constrained_layout=True)
    common = table.loc["common"]
    ax.axvspan(
        common["lower"],
        common["upper"],
        color="C1",
        alpha=0.2,
        label=f"common effect, {ci_prob:.0%} interval",
    )
    ax.axvline(common["median"], color="C1", linewidth=1)
    labels = [
        f"{modifier} {lvl}\n"
        + (f"n={int(row.n_patients)}, " if "n_patients" in row else "")
        + f"P(HR<1)={row.prob_lt_1:.2f}"
        for lvl, row in levels.iterrows()
    ]
    _forest(
        ax,
        labels,
        levels["median"],
        levels["lower"],
        levels["upper"],
        inner.loc[levels.index, "lower"],
        inner.loc[levels.index, "upper"],
    )
    sd = table.attrs["interaction_sd"]
    ax.set_xlabel(
        f"hazard ratio of {treatment}\n(log scale; median, 50% and {ci_prob:.0%} intervals)"
    )
    ax.set_title(
        title
        or f"{treatment} effect by {modifier}: interaction sd {sd['mean']:.2f} "
        f"[{sd['lower']:.2f}, {sd['upper']:.2f}]",
        fontsize=10,
    )
    ax.legend(loc="upper left", fontsize=8)
    return fig
