"""The result of a prior-sensitivity grid (:func:`~bayes_sarcoma.prior_sensitivity`).

:class:`SensitivityResult` keeps the grid as one DataTree and makes from it the tidy
summary table, the power-scaling table, the per-cell record, a one-paragraph statement
of whether the conclusion depends on the prior, the comparison and prior predictive
figures, and a Zarr copy (:meth:`SensitivityResult.save` / :meth:`SensitivityResult.load`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from bayes_sarcoma.checks.power_scaling import THRESHOLD
from bayes_sarcoma.checks.prior_predictive import ARMS
from bayes_sarcoma.model.posterior import SAMPLE_DIMS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

GRID_DIMS = ("model", "endpoint", "prior_set")


def quantity_names(horizon: float = 60.0) -> dict[str, str]:
    """Return the grid's quantities and their axis labels (with units).

    Examples
    --------
    >>> list(quantity_names(60))
    ['log_hr_expert', 'hr_expert', 'surv_diff_60m', 'median_diff_months', 'center_sd']
    """
    return {
        "log_hr_expert": "log hazard ratio, expert vs other centre",
        "hr_expert": "hazard ratio, expert vs other centre",
        f"surv_diff_{horizon:g}m": f"difference in standardized {horizon:g}-month survival\n"
        "(probability, expert - other)",
        "median_diff_months": "difference in standardized median\n(months, expert - other)",
        "center_sd": "centre SD sigma_u (log-hazard scale)",
    }


@dataclass
class SensitivityResult:
    """A finished grid: its DataTree, and tables and plots made from it.

    ``tree`` has a ``posterior`` group of the quantities with dims ``(model, endpoint,
    prior_set, chain, draw)`` (NaN for failed cells), ``power_scaling`` (``prior``,
    ``likelihood``, ``diagnosis`` by ``quantity``), ``prior_predictive`` (``survival``
    bands by ``arm``, ``time``, ``quantile`` and the Kaplan-Meier ``observed``), and in
    ``attrs`` the cells (random_seed, status, error, warnings, timings, diagnostics), prior sets,
    model specs, settings and the wall time (JSON). :meth:`save` / :meth:`load` keep it.
    """

    tree: xr.DataTree

    # -- tables ----------------------------------------------------------------------
    @property
    def ci_prob(self) -> float:
        """Probability of the table's intervals."""
        return float(self.tree.attrs.get("ci_prob", 0.95))

    @property
    def table(self) -> pd.DataFrame:
        """Tidy summary: one row per model, endpoint, prior set and quantity.

        Columns ``endpoint``, ``prior_set``, ``quantity``, ``mean``, ``lower``, ``upper``
        (equal-tailed ``ci_prob`` interval), plus ``model`` and ``sd``. Failed cells and
        quantities a model lacks have no row.
        """
        import arviz_stats as azs

        columns = ["endpoint", "model", "prior_set", "quantity", "mean", "sd", "lower", "upper"]
        if "posterior" not in self.tree.children:
            return pd.DataFrame(columns=columns)
        post = self.tree["posterior"].dataset
        eti = azs.eti(post, prob=self.ci_prob, dim=list(SAMPLE_DIMS))
        frames = []
        for name in post.data_vars:
            ds = xr.Dataset(
                {
                    "mean": post[name].mean(SAMPLE_DIMS),
                    "sd": post[name].std(SAMPLE_DIMS),
                    "lower": eti[name].sel(ci_bound="lower", drop=True),
                    "upper": eti[name].sel(ci_bound="upper", drop=True),
                }
            )
            frames.append(ds.to_dataframe().reset_index().assign(quantity=name))
        table = pd.concat(frames, ignore_index=True).dropna(subset=["mean"])
        order = {"quantity": self._quantity_order(post.data_vars)}
        for dim in GRID_DIMS:
            order[dim] = list(post[dim].to_numpy())
        key = {c: table[c].map({v: i for i, v in enumerate(order[c])}) for c in order}
        table = table.assign(**{f"_{c}": v for c, v in key.items()})
        table = table.sort_values(["_model", "_endpoint", "_quantity", "_prior_set"])
        return table[columns].reset_index(drop=True)

    def _quantity_order(self, names) -> list[str]:
        known = list(quantity_names(float(self.tree.attrs.get("horizon", 60.0))))
        return [q for q in known if q in names] + sorted(set(names) - set(known))

    @property
    def power_scaling(self) -> pd.DataFrame:
        """Tidy power-scaling table: ``prior``/``likelihood`` sensitivity, ``diagnosis``."""
        if "power_scaling" not in self.tree.children:
            return pd.DataFrame()
        ds = self.tree["power_scaling"].dataset
        table = ds.to_dataframe().reset_index().dropna(subset=["prior"])
        table["prior_sensitive"] = table["prior"] >= ds.attrs.get("threshold", THRESHOLD)
        rank = {q: i for i, q in enumerate(self._quantity_order(ds["quantity"].values))}
        table = table.assign(_q=table["quantity"].map(rank)).sort_values(
            ["model", "endpoint", "prior_set", "_q"], key=_position(ds)
        )
        columns = ["endpoint", "prior_set", "model", "quantity", "prior", "likelihood"]
        return table[[*columns, "diagnosis", "prior_sensitive"]].reset_index(drop=True)

    @property
    def cells(self) -> pd.DataFrame:
        """One row per cell: key, random_seed, ``ok``, error, warnings, timings, diagnostics."""
        return pd.DataFrame(json.loads(self.tree.attrs["cells"]))

    @property
    def failures(self) -> pd.DataFrame:
        """The failed cells, with their errors."""
        cells = self.cells
        return cells.loc[~cells["ok"], ["key", "error", "traceback"]]

    @property
    def compilations(self) -> int:
        """Number of model compilations the grid's fits did (in all processes)."""
        cells = self.cells
        return int(cells["compiled"].fillna(False).astype(bool).sum()) if "compiled" in cells else 0

    @property
    def wall_seconds(self) -> float:
        """Wall time of the whole grid."""
        return float(self.tree.attrs.get("wall_seconds", np.nan))

    def statement(self) -> str:
        """Say, per endpoint, whether the expert effect's conclusion depends on the prior.

        Reports the range of the hazard ratio's posterior mean over the prior sets, whether
        every interval excludes 1, and the quantities flagged prior-sensitive by
        power-scaling (with the prior sets where they are).
        """
        table = self.table
        lines = []
        for (model, endpoint), sub in table.groupby(["model", "endpoint"], sort=False):
            hr = sub[sub.quantity == "hr_expert"]
            if hr.empty:
                continue
            below = bool((hr.upper < 1).all())
            above = bool((hr.lower > 1).all())
            verdict = (
                "every interval excludes 1 (benefit)"
                if below
                else "every interval excludes 1 (harm)"
                if above
                else "the conclusion depends on the prior set"
                if ((hr.upper < 1) | (hr.lower > 1)).any()
                else "no interval excludes 1"
            )
            lines.append(
                f"{endpoint} ({model}): expert HR posterior mean {hr['mean'].min():.2f} to "
                f"{hr['mean'].max():.2f} across {len(hr)} prior sets; {verdict}."
            )
        ps = self.power_scaling
        if not ps.empty:
            flagged = ps[ps.prior_sensitive]
            if flagged.empty:
                lines.append("Power-scaling: no quantity is prior-sensitive in any cell.")
            for prior_set, sub in flagged.groupby("prior_set", sort=False):
                quantities = ", ".join(dict.fromkeys(sub.quantity))
                endpoints = ", ".join(dict.fromkeys(sub.endpoint))
                lines.append(
                    f"Power-scaling: under {prior_set}, {quantities} prior-sensitive for "
                    f"{endpoints} ({'; '.join(sorted(set(sub.diagnosis)))})."
                )
            quiet = [p for p in dict.fromkeys(ps.prior_set) if p not in set(flagged.prior_set)]
            if quiet and not flagged.empty:
                lines.append(f"Power-scaling: nothing prior-sensitive under {', '.join(quiet)}.")
        failed = self.failures
        for _, row in failed.iterrows():
            lines.append(f"Cell {row['key']} failed: {row['error']}")
        return "\n".join(lines)

    # -- plots -------------------------------------------------------------------------
    def plot(
        self, *, quantities: Sequence[str] | None = None, path: str | Path | None = None
    ) -> Figure:
        """Plot each quantity across prior sets: posterior mean and interval, per endpoint.

        Rows are quantities, columns endpoints, the y axis lists the prior sets (one
        marker per model spec); a faint line marks the first prior set's mean.
        Hand-written with matplotlib: the summaries are already in :attr:`table`, and
        each row needs its own unit and reference line, which
        ``arviz_plots.plot_forest`` does not lay out this way.

        Returns
        -------
        matplotlib.figure.Figure

        Examples
        --------
        >>> res.plot(path="sensitivity.png")                             # doctest: +SKIP
        """
        import matplotlib.pyplot as plt

        table = self.table
        labels = quantity_names(float(self.tree.attrs.get("horizon", 60.0)))
        quantities = list(quantities or [q for q in labels if q in set(table.quantity)])
        quantities = [q for q in quantities if q != "hr_expert"] if quantities else quantities
        endpoints = list(dict.fromkeys(table.endpoint))
        models = list(dict.fromkeys(table.model))
        prior_sets = list(dict.fromkeys(table.prior_set))
        fig, axes = plt.subplots(
            len(quantities),
            len(endpoints),
            figsize=(3.6 * len(endpoints) + 1.5, 0.35 * len(prior_sets) * len(quantities) + 2),
            squeeze=False,
            sharey=True,
            constrained_layout=True,
        )
        step = 0.6 / max(len(models), 1)
        for i, quantity in enumerate(quantities):
            for j, endpoint in enumerate(endpoints):
                ax = axes[i, j]
                for m, model in enumerate(models):
                    sub = table[
                        (table.quantity == quantity)
                        & (table.endpoint == endpoint)
                        & (table.model == model)
                    ]
                    y = (
                        np.array([prior_sets.index(p) for p in sub.prior_set])
                        + (m - (len(models) - 1) / 2) * step
                    )
                    ax.errorbar(
                        sub["mean"],
                        y,
                        xerr=[sub["mean"] - sub["lower"], sub["upper"] - sub["mean"]],
                        fmt="o",
                        color=f"C{m}",
                        capsize=2,
                        label=model,
                    )
                    if len(sub):  # the first prior set's mean, to read shifts against
                        ax.axvline(sub["mean"].iloc[0], color=f"C{m}", lw=0.8, alpha=0.35)
                if quantity != "center_sd":
                    ax.axvline(0.0, color="grey", linewidth=0.8, linestyle=":")
                ax.set_yticks(range(len(prior_sets)), prior_sets)
                ax.set_ylim(len(prior_sets) - 0.5, -0.5)
                ax.set_xlabel(labels[quantity], fontsize=8)
                if i == 0:
                    ax.set_title(endpoint)
        if len(models) > 1:
            axes[0, -1].legend(fontsize=7, loc="best")
        fig.suptitle(
            f"Posterior mean and {self.ci_prob:.0%} interval across prior sets",
            fontsize=10,
        )
        if path is not None:
            fig.savefig(path, dpi=150)
        return fig

    def plot_prior_predictive(
        self, *, model: str | None = None, path: str | Path | None = None
    ) -> Figure:
        """Plot the prior predictive standardized survival per endpoint and prior set.

        Median and 50% / 90% bands of the standardized survival under prior draws (every
        patient at an expert centre, and none), with the data's Kaplan-Meier curves of
        each arm (dashed): a prior whose bands miss the data, or that spreads over all of
        [0, 1], shows here.

        Returns
        -------
        matplotlib.figure.Figure

        Examples
        --------
        >>> res.plot_prior_predictive(path="prior_predictive.png")       # doctest: +SKIP
        """
        import matplotlib.pyplot as plt

        if "prior_predictive" not in self.tree.children:
            raise ValueError("the grid was run with prior_predictive=False")
        ds = self.tree["prior_predictive"].dataset
        model = model or str(ds["model"].values[0])
        band = ds["survival"].sel(model=model)
        endpoints = list(band["endpoint"].to_numpy())
        prior_sets = list(band["prior_set"].to_numpy())
        t = band["time"].to_numpy()
        fig, axes = plt.subplots(
            len(endpoints),
            len(prior_sets),
            figsize=(2.6 * len(prior_sets) + 1, 2.4 * len(endpoints) + 1),
            squeeze=False,
            sharex=True,
            sharey=True,
            constrained_layout=True,
        )
        for i, endpoint in enumerate(endpoints):
            for j, prior_set in enumerate(prior_sets):
                ax = axes[i, j]
                for k, arm in enumerate(ARMS):
                    b = band.sel(endpoint=endpoint, prior_set=prior_set, arm=arm)
                    q = {float(v): b.sel(quantile=v).to_numpy() for v in b["quantile"].values}
                    ax.fill_between(t, q[0.05], q[0.95], color=f"C{k}", alpha=0.15, lw=0)
                    ax.fill_between(t, q[0.25], q[0.75], color=f"C{k}", alpha=0.3, lw=0)
                    ax.plot(t, q[0.5], color=f"C{k}", label=f"{arm} (prior)")
                    km = ds["observed"].sel(endpoint=endpoint, arm=arm)
                    ax.step(t, km, where="post", color=f"C{k}", ls="--", lw=1, label=f"{arm} (KM)")
                ax.set_ylim(0, 1.02)
                if i == 0:
                    ax.set_title(prior_set, fontsize=9)
                if j == 0:
                    ax.set_ylabel(f"{endpoint}\nstandardized survival probability", fontsize=8)
                if i == len(endpoints) - 1:
                    ax.set_xlabel("months since surgery", fontsize=8)
        axes[0, 0].legend(fontsize=6, loc="lower left")
        fig.suptitle(
            f"Prior predictive standardized survival ({model}): median, 50% and 90% bands; "
            "dashed: Kaplan-Meier",
            fontsize=10,
        )
        if path is not None:
            fig.savefig(path, dpi=150)
        return fig

    # -- persistence ---------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the grid to a Zarr folder (no dependency beyond the package's).

        Examples
        --------
        >>> res.save("sensitivity.zarr")                                 # doctest: +SKIP
        """
        path = Path(path)
        # Consolidated metadata is not part of Zarr v3 (zarr warns); the store is small.
        self.tree.to_zarr(path, mode="w", consolidated=False)
        return path

    @classmethod
    def load(cls, path: str | Path) -> SensitivityResult:
        """Read a grid written by :meth:`save`.

        Examples
        --------
        >>> res = SensitivityResult.load("sensitivity.zarr")             # doctest: +SKIP
        """
        with xr.open_datatree(Path(path), engine="zarr", consolidated=False) as tree:
            loaded = tree.load()
        # Zarr gives strings back as NumPy's StringDType: make them plain str arrays again.
        return cls(loaded.map_over_datasets(_plain_strings))


def _position(ds: xr.Dataset):
    """Sort key: grid coordinates in the order of the grid, other columns as they are."""

    def key(column: pd.Series) -> pd.Series:
        if column.name in GRID_DIMS:
            order = {v: i for i, v in enumerate(ds[column.name].values)}
            return column.map(order)
        return column

    return key


def _plain_strings(ds: xr.Dataset) -> xr.Dataset:
    def plain(var):
        return var.astype(str) if var.dtype.kind == "T" else var

    ds = ds.map(plain)
    return ds.assign_coords({k: plain(v) for k, v in ds.coords.items()})
