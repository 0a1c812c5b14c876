"""Has the sampler converged? One call: :func:`diagnose`.

A biostatistician signs off a posterior only after checking, in this order:

1. **Sampler pathologies** (from ``sample_stats``): divergent transitions (the sampler
   could not follow the posterior's curvature, so the draws may be biased), draws that
   hit the maximum tree depth (inefficient, not biased) and the energy Bayesian fraction
   of missing information, E-BFMI, per chain (Betancourt 2016; < 0.3 means the momentum
   resampling explores the energy distribution poorly, typical of funnels).
2. **Convergence and precision** of the key quantities (``intercept``, ``shape``,
   ``beta``, ``center_sd`` and, with an effect modifier, ``interaction_sd`` and
   ``treatment_log_hr``): rank-normalised split R-hat, bulk and tail effective sample
   sizes, and the Monte Carlo standard errors of the mean and the sd (Vehtari, Gelman,
   Simpson, Carpenter & Buerkner 2021, via :mod:`arviz_stats`). The centre effects
   (hundreds or thousands of them) are summarised in one row: the worst R-hat and the
   smallest ESS over centres.

Thresholds follow current practice (Vehtari et al. 2021; Stan and ArviZ): R-hat < 1.01,
bulk and tail ESS >= 400 (100 per chain with 4 chains), E-BFMI >= 0.3, no divergences.
They are arguments of :func:`diagnose`. The *worst* of hundreds of converged centre
effects exceeds 1.01 by chance, so that maximum is compared with a limit that keeps the
same 5% false-alarm rate for the whole family (:func:`family_rhat_max`). Hazard ratios
need no separate row: R-hat and bulk/tail ESS are rank-based, so ``hazard_ratio =
exp(beta)`` has the same values.

:meth:`bayes_sarcoma.HierarchicalWeibull.fit` calls :func:`diagnose` on every fit and
warns (:class:`~bayes_sarcoma.SamplerWarning`) with its messages when the run is not ok.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

__all__ = [
    "CHECKED_CENTERS",
    "KEY_QUANTITIES",
    "Diagnosis",
    "diagnose",
    "family_rhat_max",
    "fit_diagnosis",
]

#: Posterior variables checked one by one (those present in the fit).
KEY_QUANTITIES = (
    "intercept",
    "shape",
    "baseline_sd",
    "baseline_coef",
    "beta",
    "center_sd",
    "interaction_sd",
    "treatment_log_hr",
)
#: Variables with one coordinate per centre, summarised by their worst value.
AGGREGATED = ("center_effect",)
SAMPLE_DIMS = ("chain", "draw")
#: Centre effects the fit's own check summarises (at random, seeded): the check stays cheap
#: at 26,000 centres; ``diagnose(dt)`` checks them all.
CHECKED_CENTERS = 500
#: Tail ESS: the smaller ESS of the 5% and 95% quantile indicators (Vehtari et al. 2021).
#: Given explicitly: arviz-stats' default is its ``stats.ci_prob`` setting (0.89), not 0.05.
TAIL_PROB = 0.05
TABLE_COLUMNS = (
    "quantity",
    "mean",
    "sd",
    "mcse_mean",
    "mcse_sd",
    "ess_bulk",
    "ess_tail",
    "r_hat",
    "ok",
)


@dataclass
class Diagnosis:
    """The outcome of :func:`diagnose`.

    Attributes
    ----------
    ok : bool
        True when no check failed.
    table : pandas.DataFrame
        One row per key quantity (``beta[expert_center]`` ...) and one summary row per
        aggregated variable (``center_effect (worst of 453)``), columns ``quantity``,
        ``mean``, ``sd``, ``mcse_mean``, ``mcse_sd``, ``ess_bulk``, ``ess_tail``,
        ``r_hat`` and ``ok``.
    chains : pandas.DataFrame
        One row per chain: ``divergences``, ``max_treedepth_hits``, ``e_bfmi``,
        ``max_tree_depth``, ``mean_tree_depth``, ``step_size``, ``acceptance_rate`` (those
        available).
    messages : list of str
        Plain-language findings, each saying what to do; one all-clear line when ok.
    problems : list of str
        Short keys of the failed checks (``"divergences"``, ``"treedepth"``,
        ``"e_bfmi"``, ``"r_hat"``, ``"ess"``).
    thresholds : dict
        The thresholds used.
    """

    ok: bool
    table: pd.DataFrame
    chains: pd.DataFrame
    messages: list[str]
    problems: list[str] = field(default_factory=list)
    thresholds: dict = field(default_factory=dict)

    def __str__(self) -> str:
        head = "Sampling diagnostics: OK" if self.ok else "Sampling diagnostics: PROBLEMS"
        return "\n".join([head, *(f"- {m}" for m in self.messages)])

    def __bool__(self) -> bool:
        return self.ok

    def to_json(self) -> str:
        """Return the diagnosis as JSON (what :meth:`HierarchicalWeibull.fit` stores)."""
        return json.dumps(
            {
                "ok": self.ok,
                "table": self.table.to_dict(orient="list"),
                "chains": self.chains.reset_index().to_dict(orient="list"),
                "chains_index": self.chains.index.name,
                "messages": self.messages,
                "problems": self.problems,
                "thresholds": self.thresholds,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Diagnosis:
        """Rebuild a diagnosis from :meth:`to_json`."""
        d = json.loads(text)
        chains = pd.DataFrame(d["chains"])
        index = d.get("chains_index") or "index"
        chains = chains.set_index(index).rename_axis(d.get("chains_index"))
        return cls(
            bool(d["ok"]),
            pd.DataFrame(d["table"]),
            chains,
            list(d["messages"]),
            list(d["problems"]),
            dict(d["thresholds"]),
        )


def fit_diagnosis(dt: xr.DataTree) -> Diagnosis:
    """Return the diagnosis the fit made of itself, or make it now (the same call).

    :meth:`~bayes_sarcoma.HierarchicalWeibull.fit` runs
    ``diagnose(dt, max_centers=CHECKED_CENTERS)`` and keeps the result in
    ``dt.attrs["diagnosis"]``; the report, the demo's headline and ``summary`` read it from
    there, so they state the same numbers and do not recompute them. A DataTree without
    it (saved by an older version, or built by hand) is diagnosed here the same way.
    """
    if "diagnosis" in dt.attrs:
        return Diagnosis.from_json(dt.attrs["diagnosis"])
    return diagnose(dt, max_centers=CHECKED_CENTERS)


def diagnose(
    dt: xr.DataTree,
    *,
    var_names: Sequence[str] | None = None,
    rhat_max: float = 1.01,
    ess_min: float = 400.0,
    bfmi_min: float = 0.3,
    max_divergences: int = 0,
    max_centers: int | None = None,
) -> Diagnosis:
    """Check a fit's sampler statistics and the convergence of its key quantities.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit (:meth:`bayes_sarcoma.HierarchicalWeibull.fit`), or any DataTree with a
        ``posterior`` (and ideally a ``sample_stats``) group.
    var_names : sequence of str, optional
        Posterior variables to check one coordinate at a time (default: those of
        :data:`KEY_QUANTITIES` present). ``center_effect`` is always summarised in one row.
    rhat_max : float
        A quantity fails when its rank-normalised split R-hat is >= ``rhat_max``; the
        worst of the centre effects is compared with :func:`family_rhat_max` (the same
        false-alarm rate for the whole family, e.g. 1.021 for 453 centres and 4 chains).
    ess_min : float
        ... or when its bulk or tail effective sample size is < ``ess_min``.
    bfmi_min : float
        A chain fails when its E-BFMI is < ``bfmi_min``.
    max_divergences : int
        The run fails when it has more divergent transitions than this.
    max_centers : int, optional
        Summarise at most this many centre effects, chosen at random (seeded), in their
        row; default: all. ``fit`` checks 500 after sampling, so that its own check stays
        cheap at 26,000 centres; call ``diagnose(dt)`` for all of them.

    Returns
    -------
    Diagnosis
        ``.ok``, ``.table``, ``.chains`` and ``.messages``.

    Examples
    --------
    >>> import bayes_sarcoma as bs
    >>> df = bs.simulate_registry(2000, random_seed=1)             # doctest: +SKIP
    >>> dt = bs.HierarchicalWeibull("OS").fit(df)                  # doctest: +SKIP
    >>> result = bs.diagnose(dt)                                   # doctest: +SKIP
    >>> result.ok, result.table.set_index("quantity").loc["center_sd", "ess_bulk"]  # doctest: +SKIP
    >>> print(result)                                              # doctest: +SKIP
    Sampling diagnostics: OK
    - No problems: 0 divergences, R-hat < 1.01 and ESS >= 400 for every key quantity ...
    """
    if "posterior" not in dt.children:
        raise ValueError("diagnose needs a DataTree with a 'posterior' group (a fit)")
    post = dt["posterior"].dataset
    names = [v for v in (var_names or KEY_QUANTITIES) if v in post.data_vars]
    missing = [v for v in (var_names or ()) if v not in post.data_vars]
    if missing:
        raise ValueError(f"not in the posterior: {missing}; it has {sorted(post.data_vars)}")
    n_chains, n_draws = post.sizes["chain"], post.sizes["draw"]
    thresholds = {
        "rhat_max": rhat_max,
        "ess_min": ess_min,
        "bfmi_min": bfmi_min,
        "max_divergences": max_divergences,
    }
    table = _quantity_table(post, names, max_centers, thresholds, n_chains)
    stats = dt["sample_stats"].dataset if "sample_stats" in dt.children else xr.Dataset()
    chains = _chain_table(stats, n_chains)
    messages, problems = _sampler_messages(chains, n_chains * n_draws, thresholds, dt.attrs)
    m, p = _convergence_messages(table, thresholds, n_chains, n_draws)
    messages += m
    problems += p
    ok = not problems
    if ok:
        messages.append(_all_clear(table, chains, thresholds))
    return Diagnosis(ok, table, chains, messages, problems, thresholds)


def _quantity_table(
    post: xr.Dataset, names: list[str], max_centers: int | None, th: dict, n_chains: int
) -> pd.DataFrame:
    """One row per key quantity and one per aggregated variable, judged against ``th``."""
    rows = [*_quantity_rows(post, names)]
    rows += [
        _aggregate_row(post, name, max_centers) for name in AGGREGATED if name in post.data_vars
    ]
    table = pd.DataFrame(rows, columns=[*TABLE_COLUMNS[:-1], "n_coords"])
    limit = np.array(
        [family_rhat_max(th["rhat_max"], int(k), max(n_chains, 1)) for k in table["n_coords"]]
    )
    table["rhat_limit"] = limit
    with np.errstate(invalid="ignore"):
        table["ok"] = (
            (table["r_hat"] < limit)
            & (table["ess_bulk"] >= th["ess_min"])
            & (table["ess_tail"] >= th["ess_min"])
        )
    return table.drop(columns="n_coords")


# -- per-quantity diagnostics ------------------------------------------------------------
_STATISTICS = {
    "mean": lambda ds: ds.mean(SAMPLE_DIMS),
    "sd": lambda ds: ds.std(SAMPLE_DIMS, ddof=1),
    "mcse_mean": lambda ds: ds.azstats.mcse(sample_dims=SAMPLE_DIMS, method="mean"),
    "mcse_sd": lambda ds: ds.azstats.mcse(sample_dims=SAMPLE_DIMS, method="sd"),
    "ess_bulk": lambda ds: ds.azstats.ess(sample_dims=SAMPLE_DIMS, method="bulk"),
    "ess_tail": lambda ds: ds.azstats.ess(sample_dims=SAMPLE_DIMS, method="tail", prob=TAIL_PROB),
    "r_hat": lambda ds: ds.azstats.rhat(sample_dims=SAMPLE_DIMS),
}


def _summary(ds: xr.Dataset, names: Sequence[str] = tuple(_STATISTICS)) -> xr.Dataset:
    """Compute the statistics ``names`` of every variable of ``ds`` (dim ``statistic``)."""
    return xr.concat(
        [_STATISTICS[k](ds).expand_dims(statistic=[k]) for k in names],
        dim="statistic",
        join="outer",
    )


def _quantity_rows(post: xr.Dataset, names: list[str]):
    if not names:
        return
    summary = _summary(post[names])
    for name in names:
        da = summary[name]
        extra = [d for d in da.dims if d != "statistic"]
        if not extra:
            yield {"quantity": name, **_values(da), "n_coords": 1}
            continue
        stacked = da.stack(_flat=extra)
        for k in range(stacked.sizes["_flat"]):
            cell = stacked.isel(_flat=k)
            label = ", ".join(str(cell[d].item()) for d in extra)
            yield {"quantity": f"{name}[{label}]", **_values(cell), "n_coords": 1}


def _values(da: xr.DataArray) -> dict[str, float]:
    return {str(s): float(da.sel(statistic=s)) for s in da["statistic"].values}


def _aggregate_row(post: xr.Dataset, name: str, max_coords: int | None = None) -> dict:
    """Worst R-hat, smallest ESSs and largest MCSE of the mean over the coordinates.

    With ``max_coords``, over that many coordinates chosen at random (seed 0).
    """
    da = post[name]
    extra = [d for d in da.dims if d not in SAMPLE_DIMS]
    flat = da.stack(_coord=extra) if extra else da.expand_dims(_coord=1, axis=-1)
    n_all = flat.sizes["_coord"]
    label = f"{name} (worst of {n_all})"
    if max_coords is not None and n_all > max_coords:
        keep = np.sort(np.random.default_rng(0).choice(n_all, max_coords, replace=False))
        flat = flat.isel(_coord=keep)
        label = f"{name} (worst of {max_coords} of {n_all}, at random)"
    values = flat.drop_vars([c for c in flat.coords if c not in SAMPLE_DIMS]).to_dataset(name=name)
    summary = _summary(values, ("mcse_mean", "ess_bulk", "ess_tail", "r_hat"))[name]
    worst = {"mean": math.nan, "sd": math.nan, "mcse_sd": math.nan}
    for stat, reduce in (("mcse_mean", np.nanmax), ("r_hat", np.nanmax)):
        worst[stat] = float(reduce(summary.sel(statistic=stat)))
    for stat in ("ess_bulk", "ess_tail"):
        worst[stat] = float(np.nanmin(summary.sel(statistic=stat)))
    return {"quantity": label, **worst, "n_coords": flat.sizes["_coord"]}


def family_rhat_max(rhat_max: float, n_coords: int, n_chains: int) -> float:
    """Return the R-hat limit for the worst of ``n_coords`` exchangeable quantities.

    For one quantity the limit is ``rhat_max``. The worst of many converged quantities
    (hundreds of centre effects) exceeds ``rhat_max`` by chance, so their maximum is
    compared with a limit that keeps the false-alarm rate of the whole family at the level
    ``rhat_max`` has for one quantity. Under convergence, with ``M = 2 * n_chains`` split
    chains, ``R**2 - 1`` is about ``c * chi2(M - 1) / (M - 1)`` (between- over
    within-chain variance, Gelman & Rubin 1992; ``c`` depends on the effective sample
    size). Reading ``rhat_max`` as the 95% point of one quantity, the family limit puts the
    ``1 - 0.05 / n_coords`` point (Bonferroni) in its place::

        limit**2 - 1 = (rhat_max**2 - 1) * q(1 - 0.05 / n_coords) / q(0.95)

    with ``q`` the chi-square quantile over its degrees of freedom. (1.01 is the 95% point
    for an effective sample size near 800 with 4 chains; tests check the family limit on
    simulated chains.)

    Parameters
    ----------
    rhat_max : float
        The limit for one quantity.
    n_coords : int
        Number of quantities whose maximum is checked.
    n_chains : int
        Number of chains.

    Returns
    -------
    float
        The limit for the maximum.

    Examples
    --------
    >>> family_rhat_max(1.01, 1, 4)
    1.01
    >>> round(family_rhat_max(1.01, 453, 4), 3)
    1.021
    """
    if n_coords <= 1:
        return float(rhat_max)
    df = 2 * n_chains - 1
    one = stats.chi2.ppf(0.95, df)
    family = stats.chi2.ppf(1.0 - 0.05 / n_coords, df)
    return float(np.sqrt(1.0 + (rhat_max**2 - 1.0) * family / one))


# -- sampler statistics ------------------------------------------------------------------
def _chain_table(stats: xr.Dataset, n_chains: int) -> pd.DataFrame:
    out = pd.DataFrame(index=pd.RangeIndex(n_chains, name="chain"))
    if "diverging" in stats:
        out["divergences"] = stats["diverging"].sum("draw").to_numpy().astype(int)
    if "reached_max_treedepth" in stats:
        out["max_treedepth_hits"] = (
            stats["reached_max_treedepth"].sum("draw").to_numpy().astype(int)
        )
    if "energy" in stats:
        out["e_bfmi"] = np.asarray(azs.bfmi(stats["energy"].to_numpy()), dtype=float)
    if "tree_depth" in stats:
        out["max_tree_depth"] = stats["tree_depth"].max("draw").to_numpy().astype(int)
    for name, column in (
        ("tree_depth", "mean_tree_depth"),
        ("step_size", "step_size"),
        ("acceptance_rate", "acceptance_rate"),
    ):
        if name in stats:
            out[column] = stats[name].astype(float).mean("draw").to_numpy()
    return out


def _pct(n: int, total: int) -> str:
    return f"{100 * n / max(total, 1):.1f}%"


def _sampler_messages(chains: pd.DataFrame, total: int, th: dict, attrs) -> tuple[list, list]:
    messages, problems = [], []
    target = attrs.get("target_accept") if hasattr(attrs, "get") else None
    if "divergences" in chains:
        n_div = int(chains["divergences"].sum())
        if n_div > th["max_divergences"]:
            problems.append("divergences")
            higher = 0.95 if not target or target < 0.95 else 0.99
            messages.append(
                f"{n_div} divergent transitions ({_pct(n_div, total)} of the draws): the "
                "sampler could not follow the posterior's curvature there, so estimates may "
                f"be biased. Refit with a higher target_accept (fit(..., target_accept={higher}))"
                "; if divergences persist, try parameterization='noncentered' for the centre "
                "effects or a more informative prior on center_sd."
            )
    if "max_treedepth_hits" in chains:
        n_hit = int(chains["max_treedepth_hits"].sum())
        if n_hit:
            problems.append("treedepth")
            depth = int(chains["max_tree_depth"].max()) if "max_tree_depth" in chains else 10
            messages.append(
                f"{n_hit} draws ({_pct(n_hit, total)}) stopped at the maximum tree depth "
                f"({depth}): sampling was inefficient (not biased) and the chains may not have "
                f"explored the whole posterior. Refit with fit(..., max_treedepth="
                f"{max(depth + 2, 10)}), and check for strongly correlated parameters "
                "(e.g. collinear terms)."
            )
    if "e_bfmi" in chains:
        low = chains.index[chains["e_bfmi"] < th["bfmi_min"]]
        if len(low):
            problems.append("e_bfmi")
            shown = ", ".join(f"chain {c}: {chains.loc[c, 'e_bfmi']:.2f}" for c in low)
            messages.append(
                f"Low E-BFMI ({shown}; should be >= {th['bfmi_min']:g}): the sampler explores "
                "the energy distribution poorly, typically a funnel between center_sd and "
                "the centre effects. Try parameterization='noncentered' or a more informative "
                "prior on center_sd, and run longer."
            )
    return messages, problems


def _all_clear(table: pd.DataFrame, chains: pd.DataFrame, th: dict) -> str:
    single = table[table["rhat_limit"] == th["rhat_max"]]
    family = table[table["rhat_limit"] != th["rhat_max"]]
    n_div = int(chains["divergences"].sum()) if "divergences" in chains else 0
    ess = table[["ess_bulk", "ess_tail"]].min(axis=1)
    text = (
        f"No problems: {n_div} divergences; R-hat < {th['rhat_max']:g} for every key quantity "
        f"(worst {single['r_hat'].max():.3f})"
    )
    for _, row in family.iterrows():
        text += f", {row['quantity']}: R-hat {row['r_hat']:.3f} < {row['rhat_limit']:.3f}"
    text += f"; ESS >= {th['ess_min']:g} (smallest {ess.min():.0f})"
    if "e_bfmi" in chains:
        text += (
            f"; E-BFMI >= {th['bfmi_min']:g} in every chain (lowest {chains['e_bfmi'].min():.2f})"
        )
    return text + "."


def _convergence_messages(table: pd.DataFrame, th: dict, n_chains: int, n_draws: int):
    messages, problems = [], []
    bad_rhat = table[~(table["r_hat"] < table["rhat_limit"])]
    if len(bad_rhat):
        problems.append("r_hat")
        worst = bad_rhat.loc[bad_rhat["r_hat"].idxmax()]
        names = ", ".join(bad_rhat["quantity"].head(6))
        more = f" and {len(bad_rhat) - 6} more" if len(bad_rhat) > 6 else ""
        advice = (
            "Run 4 chains: with one chain R-hat only compares its two halves."
            if n_chains < 2
            else f"Run longer (e.g. fit(..., tune={max(1000, 2 * n_draws)}, "
            f"draws={max(1000, 2 * n_draws)})) and "
            "check the trace/rank plots (bayes_sarcoma.report.plots.plot_trace_rank)."
        )
        messages.append(
            f"R-hat too high for {names}{more} (worst: {worst['quantity']} = "
            f"{worst['r_hat']:.3f}, limit {worst['rhat_limit']:.3f}): the chains disagree, so "
            f"the posterior is not yet reliable. {advice}"
        )
    ess = table[["ess_bulk", "ess_tail"]].min(axis=1)
    bad_ess = table[~(ess >= th["ess_min"])]
    if len(bad_ess):
        problems.append("ess")
        lowest = float(ess[bad_ess.index].min())
        worst = table.loc[ess[bad_ess.index].idxmin(), "quantity"]
        names = ", ".join(bad_ess["quantity"].head(6))
        more = f" and {len(bad_ess) - 6} more" if len(bad_ess) > 6 else ""
        # ESS grows about linearly with the number of draws ...
        factor = th["ess_min"] / max(lowest, 1.0)
        need = int(math.ceil(1.2 * factor * n_draws / 100.0) * 100)
        advice = (
            f"Draw more: about fit(..., draws={need}) per chain with {n_chains} chains should "
            "reach it."
            # ... unless the chains barely move, which more draws do not cure.
            if factor <= 20
            else "The chains barely move: fix the sampling first (see the other messages), "
            "then check the effective sample size again."
        )
        messages.append(
            f"Effective sample size below {th['ess_min']:g} for {names}{more} (lowest: "
            f"{worst}, {lowest:.0f} of {n_chains * n_draws} draws): tail probabilities and "
            f"interval ends are imprecise. {advice}"
        )
    return messages, problems
