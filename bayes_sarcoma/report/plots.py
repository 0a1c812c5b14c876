"""Figures of a fit's checks and results, saved as PNG (Matplotlib; arviz-plots where it has them).

- :func:`plot_trace_rank`: per-chain densities with rank ECDF (or trace) plots of the key
  parameters (:func:`arviz_plots.plot_rank_dist` / :func:`arviz_plots.plot_trace_dist`),
  each rank panel labelled with its multi-chain rank test (:func:`rank_test`).
- :func:`plot_hazard_ratio_forest`: hazard ratios of every term across endpoints
  (LRFS, RFS, OS) in one forest, on a log axis, continuous terms per clinically
  meaningful unit (:data:`HR_UNITS`, :func:`hazard_ratios_per_unit`).
- :func:`plot_km_check`: observed Kaplan-Meier curves in their posterior predictive bands
  (:func:`bayes_sarcoma.checks.ppc.km_check`), one panel per stratum.
- :func:`plot_ppc_censored`: arviz-plots' censored posterior predictive check on a fit.
- :func:`plot_model_comparison`: ELPD differences (:func:`arviz_plots.plot_compare`).

Standardized curves, the effect by margin, caterpillar and funnel plots are in
:mod:`bayes_sarcoma.predict.standardize`, :mod:`~bayes_sarcoma.predict.effects` and
:mod:`~bayes_sarcoma.predict.centers`. Every function returns the Matplotlib figure and, given
``path``, saves it as PNG first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayes_sarcoma._defaults import CI_PROB
from bayes_sarcoma.checks.ppc import add_posterior_predictive
from bayes_sarcoma.predict.effects import hazard_ratios, log_axis
from bayes_sarcoma.predict.survival import draws, model_spec, summarize, time_label

__all__ = [
    "HR_UNITS",
    "hazard_ratios_per_unit",
    "key_parameters",
    "legend_below",
    "plot_hazard_ratio_forest",
    "plot_km_check",
    "plot_model_comparison",
    "plot_ppc_censored",
    "plot_trace_rank",
    "rank_test",
    "save_figure",
    "term_label",
]

#: Endpoint colours, fixed so that every figure of a report agrees.
ENDPOINT_COLORS = {"LRFS": "C0", "RFS": "C1", "OS": "C2"}
#: Continuous terms' hazard ratios per a clinically meaningful unit: term -> (units, words).
#: Per year of age or per cm the ratios round to 1.02 (1.02 to 1.02); per 10 years and per
#: 5 cm they and their intervals read at two decimals.
HR_UNITS = {"age": (10.0, "per 10 years"), "tumor_size_cm": (5.0, "per 5 cm")}


def save_figure(fig, path: str | Path | None, *, dpi: int = 120):
    """Save ``fig`` as PNG at ``path`` (folders created) unless ``path`` is None; return it.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig = save_figure(plt.figure(), None)
    """
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return fig


def _figure(plot_collection):
    fig = plot_collection.viz["figure"]
    return fig.item() if hasattr(fig, "item") else fig


def key_parameters(dt: xr.DataTree) -> tuple[list[str], dict]:
    """Return the key parameters' names and coords (the treatment's coefficient only).

    Examples
    --------
    >>> key_parameters(dt)  # doctest: +SKIP
    (['intercept', 'shape', 'center_sd', 'beta'], {'term': ['expert_center']})
    """
    post = dt["posterior"].dataset
    keys = ("intercept", "shape", "baseline_sd", "center_sd", "interaction_sd")
    names = [v for v in keys if v in post]
    coords: dict = {}
    if "beta" in post:
        names.append("beta")
        treatment = model_spec(dt).get("treatment")
        terms = list(post["term"].to_numpy())
        coords["term"] = [treatment] if treatment in terms else terms[:1]
    return names, coords


def term_label(term: str, units: Mapping[str, tuple[float, str]] = HR_UNITS) -> str:
    """Return a term's label with its unit, e.g. ``"age (per 10 years)"``.

    Examples
    --------
    >>> term_label("age"), term_label("expert_center")
    ('age (per 10 years)', 'expert_center')
    """
    return f"{term} ({units[term][1]})" if term in units else term


def hazard_ratios_per_unit(
    dt: xr.DataTree,
    *,
    ci_prob: float = CI_PROB,
    units: Mapping[str, tuple[float, str]] = HR_UNITS,
) -> pd.DataFrame:
    """Return :func:`~bayes_sarcoma.predict.effects.hazard_ratios` with continuous terms rescaled.

    A term of ``units`` gets the hazard ratio of ``units[term][0]`` units of its column,
    ``exp(k * beta)``, summarised from the draws like every other row; the other rows are
    :func:`~bayes_sarcoma.predict.effects.hazard_ratios`'s, unchanged.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit.
    ci_prob : float
        Probability of the equal-tailed interval.
    units : mapping
        Term -> (units, words), default :data:`HR_UNITS`.

    Returns
    -------
    pandas.DataFrame
        Index ``term``; columns ``mean``, ``median``, ``lower``, ``upper``, ``prob_lt_1``,
        ``log_hr_mean``, ``log_hr_sd`` and ``per`` (the units of each row, 1 if unscaled).

    Examples
    --------
    >>> hazard_ratios_per_unit(dt).loc["age", ["median", "per"]]  # doctest: +SKIP
    """
    table = hazard_ratios(dt, ci_prob=ci_prob)
    table["per"] = 1.0
    beta = draws(dt)["beta"]
    for term, (k, _) in units.items():
        if term not in table.index:
            continue
        log_hr = k * beta.sel(term=term, drop=True)
        row = summarize(np.exp(log_hr), ci_prob=ci_prob).iloc[0]
        table.loc[term, ["mean", "median", "lower", "upper"]] = row[
            ["mean", "median", "lower", "upper"]
        ].to_numpy(float)
        table.loc[term, ["log_hr_mean", "log_hr_sd", "per"]] = (
            float(log_hr.mean()),
            float(log_hr.std()),
            k,
        )
    return table


def legend_below(fig, *, ncol: int = 3):
    """Move the legends of ``fig``'s axes below the axes, where they hide no data; return fig.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(); _ = ax.plot([0, 1], label="a"); _ = ax.legend()
    >>> legend_below(fig) is fig
    True
    """
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        handles, labels = legend.legend_handles, [t.get_text() for t in legend.get_texts()]
        legend.remove()
        ax.legend(
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.22),
            ncol=ncol,
            fontsize=8,
            frameon=False,
        )
    return fig


# -- convergence -------------------------------------------------------------------------------
def rank_test(
    dt: xr.DataTree, *, var_names: Sequence[str] | None = None, coords: Mapping | None = None
) -> tuple[dict[str, float], float]:
    """Return the multi-chain rank uniformity test's p-value per key parameter, and alpha.

    The test :func:`arviz_plots.plot_rank_dist` draws beside each rank plot
    (``azstats.mchain_uniformity_test`` on the fractional ranks; Tesso et al. 2026): a
    p-value below alpha (``1 - rcParams["stats.envelope_prob"]``, 0.01) says that the
    chains' ranks are not uniform, i.e. the chains disagree.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit.
    var_names, coords : optional
        Variables and coordinates (default :func:`key_parameters`).

    Returns
    -------
    p_values : dict
        Parameter label (``"beta[expert_center]"`` for a coordinate) -> p-value.
    alpha : float
        The test's level.

    Examples
    --------
    >>> p_values, alpha = rank_test(dt)  # doctest: +SKIP
    """
    import arviz_stats  # noqa: F401  (registers the azstats accessor)
    from arviz_base import rcParams

    names, default_coords = key_parameters(dt)
    ds = dt["posterior"].dataset[list(var_names or names)]
    ds = ds.sel({k: v for k, v in dict(default_coords if coords is None else coords).items()})
    ranks = ds.azstats.compute_ranks(dim=["chain", "draw"], relative=True)
    p_values, _, _ = ranks.azstats.mchain_uniformity_test(dim=["chain", "draw"])
    out = {}
    for name, da in p_values.data_vars.items():
        if da.ndim == 0:
            out[str(name)] = float(da)
            continue
        for idx, value in da.to_series().items():
            key = ",".join(map(str, idx)) if isinstance(idx, tuple) else str(idx)
            out[f"{name}[{key}]"] = float(value)
    return out, 1.0 - float(rcParams["stats.envelope_prob"])


def _label_rank_tests(fig, p_values: Mapping[str, float], alpha: float) -> None:
    """Replace arviz-plots' bare ``p=..`` texts by labelled rank-test results on every panel."""
    for ax in fig.axes:
        for text in list(ax.texts):
            if text.get_text().startswith("p="):
                text.remove()
    rank_axes = [ax for ax in fig.axes if ax.get_ylabel()]
    for ax in rank_axes:
        name = ax.get_ylabel()
        p = p_values.get(name, next((v for k, v in p_values.items() if k.startswith(name)), None))
        if p is None:
            continue
        flagged = p < alpha
        ax.text(
            0.01,
            0.97,
            f"rank test p = {p:.2f}: " + (f"chains differ (< {alpha:g})" if flagged else "passes"),
            transform=ax.transAxes,
            va="top",
            fontsize=7,
            color="C3" if flagged else "0.25",
        )


def plot_trace_rank(
    dt: xr.DataTree,
    *,
    var_names: Sequence[str] | None = None,
    coords: Mapping[str, Any] | None = None,
    kind: str = "rank",
    path: str | Path | None = None,
):
    """Plot per-chain posterior densities beside rank ECDFs (or traces) of key parameters.

    Chains that have converged overlap in the densities, and their rank ECDF differences
    stay inside the simultaneous envelope (Vehtari et al. 2021).

    Parameters
    ----------
    dt : xarray.DataTree
        A fit.
    var_names, coords : optional
        Variables and coordinates (default :func:`key_parameters`).
    kind : {"rank", "trace"}
        :func:`arviz_plots.plot_rank_dist` or :func:`arviz_plots.plot_trace_dist`.
    path : str or Path, optional
        Save the figure here (PNG).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> plot_trace_rank(dt, path="rank.png")  # doctest: +SKIP
    """
    import arviz_plots as azp

    names, default_coords = key_parameters(dt)
    var_names = list(var_names) if var_names is not None else names
    coords = dict(default_coords if coords is None else coords)
    if kind == "rank":
        pc = azp.plot_rank_dist(dt, var_names=var_names, coords=coords, backend="matplotlib")
    elif kind == "trace":
        pc = azp.plot_trace_dist(dt, var_names=var_names, coords=coords, backend="matplotlib")
    else:
        raise ValueError(f"kind={kind!r}: choose 'rank' or 'trace'")
    fig = _figure(pc)
    what = "traces"
    if kind == "rank":
        p_values, alpha = rank_test(dt, var_names=var_names, coords=coords)
        _label_rank_tests(fig, p_values, alpha)
        what = (
            "rank ECDF differences: chains agree when these stay flat and together\n"
            f"(multi-chain rank test: p below {alpha:g} flags disagreeing chains)"
        )
    fig.suptitle(
        "Per-chain posterior densities (one line style per chain) and " + what, fontsize=10
    )
    return save_figure(fig, path)


# -- effects -------------------------------------------------------------------------------------
def plot_hazard_ratio_forest(
    fits: Mapping[str, xr.DataTree],
    *,
    terms: Sequence[str] | None = None,
    ci_prob: float = CI_PROB,
    path: str | Path | None = None,
):
    """Plot every term's hazard ratio for several fits (endpoints) in one forest.

    Hand-made with Matplotlib because :func:`arviz_plots.plot_forest` has no ratio (log)
    scale, no reference line at 1 and no legend of the models.

    Parameters
    ----------
    fits : mapping of str to xarray.DataTree
        E.g. ``{"LRFS": dt_lrfs, "RFS": dt_rfs, "OS": dt_os}``.
    terms : sequence of str, optional
        Terms to show (default: those of the first fit).
    ci_prob : float
        Probability of the outer interval (the inner one is 50%).
    path : str or Path, optional
        Save the figure here (PNG).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> plot_hazard_ratio_forest({"LRFS": dt1, "OS": dt2}, path="hr.png")  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    if not fits:
        raise ValueError("give at least one fit")
    tables = {name: hazard_ratios_per_unit(dt, ci_prob=ci_prob) for name, dt in fits.items()}
    inner = {name: hazard_ratios_per_unit(dt, ci_prob=0.5) for name, dt in fits.items()}
    terms = list(terms or next(iter(tables.values())).index)
    n_fits = len(fits)
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(terms) * n_fits + 1.6), constrained_layout=True)
    base = np.arange(len(terms))[::-1] * (n_fits + 1.0)
    for k, (name, table) in enumerate(tables.items()):
        color = ENDPOINT_COLORS.get(name, f"C{k}")
        present = [t for t in terms if t in table.index]
        y = base[[terms.index(t) for t in present]] + (n_fits - 1) / 2 - k
        rows, rows50 = table.loc[present], inner[name].loc[present]
        ax.hlines(y, rows["lower"], rows["upper"], color=color, linewidth=1.3)
        ax.hlines(y, rows50["lower"], rows50["upper"], color=color, linewidth=3.5)
        ax.plot(rows["median"], y, "o", color=color, markersize=4, label=name)
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=0.8)
    ax.set_yticks(base + (n_fits - 1) / 2, [term_label(t) for t in terms])
    log_axis(ax, "x")
    ax.set_xlabel(
        f"hazard ratio (log scale): median, 50% and {ci_prob:.0%} credible intervals; < 1 means "
        "lower hazard\n(age per 10 years, tumour size per 5 cm)"
    )
    ax.set_title("Adjusted hazard ratios by endpoint")
    ax.legend(title="endpoint", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return save_figure(fig, path)


# -- posterior predictive checks -----------------------------------------------------------------
def plot_km_check(
    check,
    *,
    strata: Sequence[str] | None = None,
    ncols: int = 4,
    title: str | None = None,
    path: str | Path | None = None,
):
    """Plot each stratum's observed Kaplan-Meier curve in its posterior predictive band.

    Parameters
    ----------
    check : bayes_sarcoma.checks.ppc.KMCheck
        From :func:`bayes_sarcoma.checks.ppc.km_check`.
    strata : sequence of str, optional
        Strata to show (default all).
    ncols : int
        Panels per row.
    title : str, optional
        Figure title.
    path : str or Path, optional
        Save the figure here (PNG).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> plot_km_check(km_check(dt), path="km_ppc.png")  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    ds = check.data
    strata = list(strata or ds["stratum"].to_numpy())
    ncols = max(1, min(ncols, len(strata)))
    nrows = int(np.ceil(len(strata) / ncols))
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(3.4 * ncols, 2.8 * nrows),
        squeeze=False,
        sharey=True,
        constrained_layout=True,
    )
    grid = ds["time"].to_numpy()
    coverage = check.coverage()
    for ax, label in zip(axes.ravel(), strata, strict=False):
        s = ds.sel(stratum=label)
        ax.fill_between(
            grid,
            s["lower"],
            s["upper"],
            step="post",
            color="C0",
            alpha=0.3,
            label=f"predictive {check.ci_prob:.0%} band",
        )
        ax.step(grid, s["median"], where="post", color="C0", linewidth=1, label="predictive median")
        ax.step(grid, s["observed"], where="post", color="k", linewidth=1.2, label="observed KM")
        ax.set_title(
            f"{label}: n={int(s['n_patients'])}, {int(s['n_events'])} events\n"
            f"inside the band at {coverage[label]:.0%} of times",
            fontsize=9,
        )
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(ds.attrs.get("time_label", "time"))
    for ax in axes[:, 0]:
        ax.set_ylabel("survival probability")
    for ax in axes.ravel()[len(strata) :]:
        ax.set_visible(False)
    axes.ravel()[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(
        title
        or "Observed Kaplan-Meier vs posterior predictive replicates (censored like the data)",
        fontsize=10,
    )
    return save_figure(fig, path)


def plot_ppc_censored(
    dt: xr.DataTree,
    *,
    num_draws: int = 100,
    random_seed: int | None = None,
    path: str | Path | None = None,
):
    """Plot :func:`arviz_plots.plot_ppc_censored` for a fit (uncensored predictive curves).

    Adds the ``posterior_predictive`` group when missing
    (:func:`bayes_sarcoma.checks.ppc.add_posterior_predictive`) and calls arviz-plots with
    ``extrapolation_factor=None``: its default (1.2) drops predicted times beyond 1.2 times
    the last follow-up and renormalises the rest, which pulls the predictive curves far
    below the observed one whenever follow-up ends before most patients have had the event
    (every registry). The x-axis is then limited to the follow-up.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> plot_ppc_censored(dt, path="ppc_censored.png")  # doctest: +SKIP
    """
    import arviz_plots as azp

    tree = dt
    if "posterior_predictive" not in dt.children:
        tree = add_posterior_predictive(dt, num_draws=num_draws, random_seed=random_seed)
    pc = azp.plot_ppc_censored(
        tree,
        var_names=["time"],
        num_samples=num_draws,
        extrapolation_factor=None,
        backend="matplotlib",
    )
    fig = _figure(pc)
    ax = fig.axes[0]
    ax.set_xlim(0, float(dt["observed_data"]["time"].max()))
    ax.set_xlabel(time_label(dt))
    ax.set_ylabel("survival probability")
    ax.set_title(
        "Observed Kaplan-Meier (dashed) vs survival of uncensored predicted times", fontsize=10
    )
    return save_figure(fig, path)


# -- model comparison ------------------------------------------------------------------------------
def plot_model_comparison(comparison, *, path: str | Path | None = None):
    """Plot ELPD differences from the best model with their standard errors.

    Parameters
    ----------
    comparison : bayes_sarcoma.checks.compare.ModelComparison
        From :func:`bayes_sarcoma.checks.compare.compare_models`.
    path : str or Path, optional
        Save the figure here (PNG).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> plot_model_comparison(compare_models(fits), path="loo.png")  # doctest: +SKIP
    """
    import arviz_plots as azp

    pc = azp.plot_compare(comparison.table, rotated=False, backend="matplotlib")
    fig = _figure(pc)
    what = "patients, PSIS-LOO" if comparison.method == "loo" else "centres, leave-centre-out"
    fig.set_size_inches(8, 1.2 + 0.5 * len(comparison.table))
    for ax in fig.axes:
        ax.set_xlabel(
            "ELPD difference from the best model, with its standard error\n"
            f"(log predictive density summed over {what}; higher is better)"
        )
    return save_figure(fig, path)
