"""Simulation-based calibration (SBC) of the hierarchical Weibull model (Talts et al. 2018).

If parameters are drawn from the prior, data are simulated from the model given them,
and the model is fitted to those data, then the rank of each true parameter among ``L``
(nearly independent) posterior draws is uniform on ``0, 1, ..., L``, whatever the prior
and the design -- *if* the likelihood, the priors and the sampler are all right. A
histogram of ranks that is U-shaped (posterior too narrow), hump-shaped (too wide) or
sloped (biased) points at a bug or at a sampler that does not explore the posterior.

What this module fixes, and why:

- **A fixed design.** Every replicate has the same patients, covariates and centres
  (:class:`SBCDesign`; only outcomes change), so every replicate has one model structure
  (one compilation), and the coefficient priors, which the model states per standard
  deviation of each covariate, are the same prior in every replicate.
- **A fixed reference time.** The model's intercept prior is on the log cumulative
  hazard at the reference time ``t_ref``, by default the median observed time: a prior
  that depends on the data, which SBC cannot calibrate. Replicates are fitted with
  ``t_ref`` fixed at :attr:`SBCDesign.t_ref` (``HierarchicalWeibull(t_ref=...)``).
- **Independent prior draws.** The true parameters are drawn with ``scipy.stats`` from
  the :class:`~bayes_sarcoma.model.priors.Prior` specifications
  (:func:`~bayes_sarcoma.checks.power_scaling.scipy_distribution`), not through the PyMC model,
  so that a prior coded wrongly in the model shows up as non-uniform ranks.
- **Thinning.** The ``chains x draws`` posterior draws are thinned to ``L = n_ranks``
  evenly spaced draws, which reduces autocorrelation (Talts et al. section 5.1); each
  replicate's bulk ESS is kept beside its ranks so that too little thinning can be seen.

Replicates run on :func:`bayes_sarcoma.study.runner.run_tasks` (Dask), one task per replicate,
all in one task group so that the first replicate compiles the model and the others reuse
it (once per worker process). A replicate is a plain function of its random_seed: the same seed
gives the same ranks however the replicates are run.

Uniformity is tested three ways per parameter: Pearson's chi-square on the binned ranks,
Kolmogorov-Smirnov and ArviZ's ``pot_c`` test on randomised PIT values; the rank
statistics and the tests are in :mod:`bayes_sarcoma.study.sbc_ranks`.

References
----------
Talts, Betancourt, Simpson, Vehtari & Gelman (2018). Validating Bayesian inference
algorithms with simulation-based calibration. arXiv:1804.06788.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayes_sarcoma._version import __version__
from bayes_sarcoma.checks.power_scaling import scipy_distribution
from bayes_sarcoma.math import weibull
from bayes_sarcoma.model.hierarchical import HierarchicalWeibull
from bayes_sarcoma.model.priors import Prior, merge_priors
from bayes_sarcoma.study.runner import Task, run_tasks
from bayes_sarcoma.study.sbc_ranks import (
    binned_counts,
    binomial_band,
    pit_values,
    rank_statistic,
    thin,
    uniformity_tests,
)

__all__ = [
    "PARAMETERS",
    "SBC_PRIORS",
    "SBCDesign",
    "SBCResult",
    "binned_counts",
    "binomial_band",
    "draw_truth",
    "pit_values",
    "rank_statistic",
    "replicate",
    "run_sbc",
    "simulate_outcomes",
    "thin",
    "uniformity_tests",
]

TREATMENT = "expert_center"
COVARIATE = "age"
#: Ranked parameters: name -> (posterior variable, term or None, label for plots).
PARAMETERS: dict[str, tuple[str, str | None, str]] = {
    "log_hr_expert": ("beta", TREATMENT, "expert-centre log hazard ratio"),
    "shape": ("shape", None, "Weibull shape"),
    "center_sd": ("center_sd", None, "centre SD (log-hazard scale)"),
    "intercept": ("intercept", None, "intercept (log hazard, months)"),
    "beta_age": ("beta", COVARIATE, "age log hazard ratio (per year)"),
}

#: Proper, moderately informative priors on the scales the model states them (the
#: intercept: log cumulative hazard at ``t_ref`` months of the average patient, so
#: ``-0.7`` is 50% survival at 24 months; coefficients per unit of the covariate). Plain
#: dicts (``Prior.from_dict`` form) because a design travels to Dask workers by pickle.
SBC_PRIORS: dict[str, dict[str, Any]] = {
    "intercept": {"dist": "Normal", "mu": -0.7, "sigma": 0.5},
    "shape": {"dist": "LogNormal", "mu": 0.0, "sigma": 0.25},
    "beta": {"dist": "Normal", "mu": 0.0, "sigma": 1.0},
    "beta:expert_center": {"dist": "Normal", "mu": 0.0, "sigma": 0.4},
    "beta:age": {"dist": "Normal", "mu": 0.0, "sigma": 0.02},
    "center_sd": {"dist": "HalfNormal", "sigma": 0.4},
}


@dataclass(frozen=True)
class SBCDesign:
    """The fixed design, priors and sampler settings of an SBC study.

    Parameters
    ----------
    n_patients, n_centers, n_expert_centers : int
        Patients, centres and how many centres are expert (the first ones). Every centre
        gets at least ``min_per_center`` patients; the rest are spread unevenly
        (Dirichlet(1) shares), as in a registry.
    min_per_center : int
        Fewest patients a centre has.
    censor_months : (float, float)
        Administrative censoring, uniform between these follow-up times (months).
    t_ref : float
        Reference time (months) of the intercept prior, fixed for calibration.
    priors : mapping of str to dict
        Priors of the fitted model (and of the simulation), merged over the defaults, in
        :meth:`Prior.from_dict <bayes_sarcoma.model.priors.Prior.from_dict>` form (a design must
        pickle, and a :class:`~bayes_sarcoma.model.priors.Prior` does not).
    draws, tune, chains : int
        Sampler settings of each replicate fit (nutpie).
    target_accept : float
        NUTS target acceptance; high, because divergences (the centre SD's funnel with
        few centres) would bias the ranks.
    n_ranks : int
        ``L``: posterior draws kept (thinned) per replicate; ranks lie in ``0..L``.
    center_sd_guess : float, optional
        The centre SD guess of the partial non-centring (default: the model's moment
        estimate from each data set; geometry only, not the posterior).
    parameterization : {"auto", "centered", "noncentered"}
        The sampled engine's parameterisation of the centre effects (geometry only).
    engine : {"integrated", "sampled"}
        How the fitted model handles the centre effects (the model's ``engine``).
    design_seed : int
        Seed of the fixed design (covariates and centre sizes).
    """

    n_patients: int = 200
    n_centers: int = 12
    n_expert_centers: int = 5
    min_per_center: int = 4
    censor_months: tuple[float, float] = (12.0, 72.0)
    t_ref: float = 24.0
    priors: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: {k: dict(v) for k, v in SBC_PRIORS.items()}
    )
    draws: int = 1000
    tune: int = 1000
    chains: int = 2
    target_accept: float = 0.95
    n_ranks: int = 99
    center_sd_guess: float | None = None
    parameterization: str = "auto"
    engine: str = "integrated"
    design_seed: int = 20180412

    def __post_init__(self):
        if self.n_ranks >= self.draws * self.chains:
            raise ValueError(
                f"n_ranks={self.n_ranks} must be below draws x chains = {self.draws * self.chains}"
            )
        if not 0 < self.n_expert_centers < self.n_centers:
            raise ValueError("n_expert_centers must be between 1 and n_centers - 1")
        if self.min_per_center * self.n_centers > self.n_patients:
            raise ValueError("n_patients must be at least min_per_center x n_centers")
        low, high = self.censor_months
        if not 0 < low <= high:
            raise ValueError("censor_months must be (low, high) with 0 < low <= high")
        merge_priors(self.priors)  # raises PriorError on an invalid prior

    def table(self) -> pd.DataFrame:
        """Return the fixed covariates: ``patient_id``, ``center_id``, ``expert_center``, ``age``.

        Examples
        --------
        >>> SBCDesign(n_patients=40, n_centers=4, n_expert_centers=2).table().shape
        (40, 4)
        """
        rng = np.random.default_rng(self.design_seed)
        extra = self.n_patients - self.min_per_center * self.n_centers
        sizes = self.min_per_center + rng.multinomial(extra, rng.dirichlet(np.ones(self.n_centers)))
        center = np.repeat(np.arange(self.n_centers), sizes)
        age = np.clip(rng.normal(60.0, 15.0, self.n_patients), 18.0, 95.0).round(1)
        return pd.DataFrame(
            {
                "patient_id": [f"S{i:04d}" for i in range(self.n_patients)],
                "center_id": [f"C{c + 1:02d}" for c in center],
                TREATMENT: center < self.n_expert_centers,
                COVARIATE: age,
            }
        )

    def model(self) -> HierarchicalWeibull:
        """Return the (unfitted) model every replicate is fitted with (``t_ref`` fixed)."""
        return HierarchicalWeibull(
            time="months",
            event="event",
            cluster="center_id",
            terms=[TREATMENT, COVARIATE],
            id_column="patient_id",
            priors=self.priors,
            center_sd_guess=self.center_sd_guess,
            parameterization=self.parameterization,
            engine=self.engine,
            t_ref=self.t_ref,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly description."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["priors"] = {k: v.to_dict() for k, v in merge_priors(self.priors).items()}
        out["censor_months"] = list(self.censor_months)
        return out


# -- the generative model ------------------------------------------------------------------
def _draw(prior: Prior, rng: np.random.Generator) -> float:
    """Draw one value from ``prior`` with scipy (an sd if the prior is on another scale).

    The scipy mapping is :func:`bayes_sarcoma.checks.power_scaling.scipy_distribution`.
    """
    value = float(np.ravel(scipy_distribution(prior).rvs(random_state=rng))[0])
    if prior.on == "precision":
        return value**-0.5
    if prior.on == "variance":
        return value**0.5
    return value


def draw_truth(rng: np.random.Generator, design: SBCDesign) -> dict[str, Any]:
    """Draw one set of true parameters from the design's priors.

    The model's intercept prior is on ``intercept_c``, the log cumulative hazard at
    ``t_ref`` of the average patient (every design column at its mean) at a typical
    centre; the contract's ``intercept`` (log hazard at time 1, covariates at 0) is
    ``intercept_c - shape * log(t_ref) - sum(beta * mean(x))``.

    Returns
    -------
    dict
        ``intercept_c``, ``intercept``, ``shape``, ``log_hr_expert``, ``beta_age``,
        ``center_sd`` and ``center_effect`` (one per centre, in centre order).

    Examples
    --------
    >>> truth = draw_truth(np.random.default_rng(0), SBCDesign())
    >>> sorted(truth)[:3]
    ['beta_age', 'center_effect', 'center_sd']
    """
    priors = merge_priors(design.priors)
    table = design.table()
    beta_prior = priors["beta"]
    intercept_c = _draw(priors["intercept"], rng)
    shape = _draw(priors["shape"], rng)
    log_hr = _draw(priors.get(f"beta:{TREATMENT}", beta_prior), rng)
    beta_age = _draw(priors.get(f"beta:{COVARIATE}", beta_prior), rng)
    center_sd = _draw(priors["center_sd"], rng)
    center_effect = center_sd * rng.standard_normal(design.n_centers)
    mean_x = table[TREATMENT].mean() * log_hr + table[COVARIATE].mean() * beta_age
    intercept = intercept_c - shape * math.log(design.t_ref) - mean_x
    return {
        "intercept_c": intercept_c,
        "intercept": intercept,
        "shape": shape,
        "log_hr_expert": log_hr,
        "beta_age": beta_age,
        "center_sd": center_sd,
        "center_effect": center_effect,
    }


def simulate_outcomes(
    rng: np.random.Generator, design: SBCDesign, truth: Mapping[str, Any] | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Simulate one data set from the model: Weibull PH event times, uniform censoring.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (the truth is drawn from it first when not given).
    design : SBCDesign
        The fixed design.
    truth : mapping, optional
        Parameters from :func:`draw_truth`.

    Returns
    -------
    data, truth
        The design's table with ``months`` (follow-up) and ``event`` (0/1), and the truth.

    Examples
    --------
    >>> data, truth = simulate_outcomes(np.random.default_rng(3), SBCDesign())
    >>> list(data.columns)
    ['patient_id', 'center_id', 'expert_center', 'age', 'months', 'event']
    """
    truth = dict(truth) if truth is not None else draw_truth(rng, design)
    data = design.table()
    center = data["center_id"].str[1:].astype(int).to_numpy() - 1
    eta = (
        truth["intercept"]
        + truth["log_hr_expert"] * data[TREATMENT].to_numpy(dtype=float)
        + truth["beta_age"] * data[COVARIATE].to_numpy()
        + np.asarray(truth["center_effect"])[center]
    )
    t = weibull.sample_times(rng, eta, truth["shape"])
    c = rng.uniform(*design.censor_months, size=len(data))
    data["months"] = np.minimum(t, c)
    data["event"] = (t <= c).astype(np.int64)
    return data, truth


# -- replicates -------------------------------------------------------------------------------
def replicate(index: int, *, design: SBCDesign, base_seed: int = 0) -> dict[str, Any]:
    """Run one SBC replicate: draw a truth, simulate, fit, rank. The runner's task function.

    Parameters
    ----------
    index : int
        Replicate number; with ``base_seed`` it seeds everything (same random_seed, same ranks).
    design : SBCDesign
        The fixed design, priors and sampler settings.
    base_seed : int
        The study's random_seed.

    Returns
    -------
    dict
        ``index``, ``ranks`` (parameter -> rank in ``0..n_ranks``), ``truth`` (the ranked
        parameters), ``n_events``, ``divergences``, ``min_ess_bulk`` and ``max_rhat`` over
        the ranked parameters.
    """
    import arviz_stats as azs

    rng = np.random.default_rng((base_seed, index))
    data, truth = simulate_outcomes(rng, design)
    sampler_seed = int(rng.integers(2**31 - 1))
    # Divergences raise a SamplerWarning: the runner records it with the task (filters are
    # not touched here, warnings.catch_warnings is not thread-safe); they are counted below.
    dt = design.model().fit(
        data,
        draws=design.draws,
        tune=design.tune,
        chains=design.chains,
        target_accept=design.target_accept,
        random_seed=sampler_seed,
        progressbar=False,
    )
    post = dt["posterior"].dataset
    ranked = {}
    for name, (var, term, _) in PARAMETERS.items():
        da = post[var].sel(term=term) if term else post[var]
        ranked[name] = da.drop_vars("term", errors="ignore")
    ranks = {
        name: rank_statistic(thin(da.to_numpy(), design.n_ranks), truth[name])
        for name, da in ranked.items()
    }
    ds = xr.Dataset(ranked)
    stats_ds = dt["sample_stats"].dataset
    return {
        "index": int(index),
        "ranks": ranks,
        "truth": {name: float(truth[name]) for name in PARAMETERS},
        "n_events": int(data["event"].sum()),
        "divergences": int(stats_ds["diverging"].sum()) if "diverging" in stats_ds else 0,
        "min_ess_bulk": float(azs.ess(ds, method="bulk").to_array().min()),
        "max_rhat": float(azs.rhat(ds).to_array().max()),
    }


# -- results ----------------------------------------------------------------------------------
@dataclass
class SBCResult:
    """Ranks of an SBC study, their uniformity tests and plots.

    Attributes
    ----------
    ranks : pandas.DataFrame
        One row per successful replicate (index: replicate number), one column per
        parameter of :data:`PARAMETERS`.
    diagnostics : pandas.DataFrame
        Per replicate: ``n_events``, ``divergences``, ``min_ess_bulk``, ``max_rhat``,
        ``seconds`` and the true values (``true_<parameter>``).
    n_ranks : int
        ``L``; ranks lie in ``0..L``.
    design : SBCDesign
        The study's design.
    failures : dict
        Replicate number -> error, for replicates that failed (excluded from the ranks).
    random_seed : int
        The study's base random_seed.
    """

    ranks: pd.DataFrame
    diagnostics: pd.DataFrame
    n_ranks: int
    design: SBCDesign
    failures: dict[int, str] = field(default_factory=dict)
    random_seed: int = 0

    def uniformity(self, bins: int = 10) -> pd.DataFrame:
        """Return the uniformity tests (:func:`uniformity_tests`), one row per parameter."""
        rows = {
            name: uniformity_tests(self.ranks[name].to_numpy(), self.n_ranks, bins=bins)
            for name in self.ranks.columns
        }
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("parameter")

    def plot(self, bins: int = 10, path: str | Path | None = None, ci_prob: float = 0.99):
        """Plot the rank histograms with the binomial ``ci_prob`` band; save to ``path`` (PNG).

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib.pyplot as plt

        names = list(self.ranks.columns)
        tests = self.uniformity(bins)
        n = len(self.ranks)
        low, high = binomial_band(n, bins, ci_prob)
        fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.4), sharey=True)
        axes = np.atleast_1d(axes)
        width = (self.n_ranks + 1) / bins
        edges = np.arange(bins) * width
        for ax, name in zip(axes, names, strict=True):
            counts = binned_counts(self.ranks[name].to_numpy(), self.n_ranks, bins)
            ax.axhspan(low, high, color="0.85", label=f"{ci_prob:.0%} binomial band")
            ax.axhline(n / bins, color="0.4", lw=1, ls="--", label="expected")
            ax.bar(edges, counts, width=width, align="edge", color="C0", edgecolor="white")
            row = tests.loc[name]
            ax.set_title(
                f"{PARAMETERS[name][2]}\nchi2 p={row.chi2_p:.2f}, KS p={row.ks_p:.2f}, "
                f"pot_c p={row.pot_c_p:.2f}",
                fontsize=8,
            )
            ax.set_xlabel(f"rank among L={self.n_ranks} thinned draws")
            ax.set_xlim(0, self.n_ranks + 1)
        axes[0].set_ylabel(f"replicates (of {n}) per bin")
        axes[0].legend(fontsize=7, loc="lower left")
        fig.suptitle(
            f"SBC rank histograms: {n} replicates, {self.design.n_patients} patients, "
            f"{self.design.n_centers} centres",
            fontsize=10,
        )
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig

    def to_dict(self, bins: int = 10) -> dict[str, Any]:
        """Return a JSON-friendly record: design, ranks, uniformity p-values, diagnostics."""
        diag = self.diagnostics
        return {
            "package_version": __version__,
            "random_seed": self.random_seed,
            "n_replicates": len(self.ranks),
            "n_ranks": self.n_ranks,
            "bins": bins,
            "design": self.design.to_dict(),
            "ranks": {c: self.ranks[c].astype(int).tolist() for c in self.ranks.columns},
            "replicates": self.ranks.index.astype(int).tolist(),
            "uniformity": self.uniformity(bins).to_dict(orient="index"),
            "summary": {
                "total_divergences": int(diag["divergences"].sum()),
                "replicates_with_divergences": int((diag["divergences"] > 0).sum()),
                "min_ess_bulk": float(diag["min_ess_bulk"].min()),
                "median_min_ess_bulk": float(diag["min_ess_bulk"].median()),
                "max_rhat": float(diag["max_rhat"].max()),
                "median_events": float(diag["n_events"].median()),
                "total_seconds": float(diag["seconds"].sum()),
            },
            "failures": {str(k): v for k, v in self.failures.items()},
        }

    def save_json(self, path: str | Path, bins: int = 10) -> None:
        """Write :meth:`to_dict` to ``path``."""
        Path(path).write_text(json.dumps(self.to_dict(bins), indent=1) + "\n")


def run_sbc(
    n_replicates: int = 100,
    *,
    design: SBCDesign | None = None,
    random_seed: int = 0,
    scheduler: Any = None,
    progress: bool = True,
    cluster_kwargs: Mapping[str, Any] | None = None,
    indices: Sequence[int] | None = None,
) -> SBCResult:
    """Run an SBC study of the hierarchical Weibull model on Dask.

    Parameters
    ----------
    n_replicates : int
        Replicates (ignored when ``indices`` is given).
    design : SBCDesign, optional
        Design, priors and sampler settings (default :class:`SBCDesign`).
    random_seed : int
        Base random_seed; replicate ``i`` is seeded by ``(random_seed, i)``.
    scheduler, progress, cluster_kwargs
        Passed to :func:`bayes_sarcoma.study.runner.run_tasks` (default: a threaded
        LocalCluster on this machine; ``"serial"`` runs without Dask).
    indices : sequence of int, optional
        Run these replicate numbers instead of ``range(n_replicates)``.

    Returns
    -------
    SBCResult

    Examples
    --------
    >>> from bayes_sarcoma.study.sbc import SBCDesign, run_sbc
    >>> res = run_sbc(100, random_seed=1)                                     # doctest: +SKIP
    >>> res.uniformity()                                               # doctest: +SKIP
    >>> res.plot(path="sbc_ranks.png")                                 # doctest: +SKIP
    """
    design = design or SBCDesign()
    indices = list(range(n_replicates)) if indices is None else [int(i) for i in indices]
    tasks = [Task(f"sbc-{i:04d}", i, group="sbc") for i in indices]
    results = run_tasks(
        replicate,
        tasks,
        shared={"design": design, "base_seed": random_seed},
        scheduler=scheduler,
        progress=progress,
        cluster_kwargs=cluster_kwargs,
    )
    rows, diag, failures = {}, {}, {}
    for index, result in zip(indices, results, strict=True):
        if not result.ok:
            failures[index] = result.error
            continue
        value = result.value
        rows[index] = value["ranks"]
        diag[index] = {
            "n_events": value["n_events"],
            "divergences": value["divergences"],
            "min_ess_bulk": value["min_ess_bulk"],
            "max_rhat": value["max_rhat"],
            "seconds": result.seconds,
            **{f"true_{k}": v for k, v in value["truth"].items()},
        }
    columns = list(PARAMETERS)
    ranks = pd.DataFrame.from_dict(rows, orient="index", columns=columns).rename_axis("replicate")
    diagnostics = pd.DataFrame.from_dict(diag, orient="index").rename_axis("replicate")
    return SBCResult(ranks, diagnostics, design.n_ranks, design, failures, random_seed)
