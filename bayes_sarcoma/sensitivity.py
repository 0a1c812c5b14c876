"""Prior sensitivity studies: refit a grid of endpoints x prior sets (x model specs).

Would a sceptical prior on the expert effect, or another prior on the centre spread,
change the answer? :func:`prior_sensitivity` fits every cell of the grid, keeps for each
the quantities a reader of a registry study looks at, and lays them side by side:

``log_hr_expert``, ``hr_expert``
    The expert-centre log hazard ratio ``beta[expert_center]`` and its exponential (with
    an effect modifier, the pooled effect across its levels).
``surv_diff_60m``
    Standardized difference in survival at the horizon (60 months by default; the name
    follows it): every patient of the registry at an expert centre minus none, integrated
    over a new centre's effect (:func:`bayes_sarcoma.standardize.standardized_survival`).
``median_diff_months``
    The difference of the two standardized medians, in months.
``center_sd``
    The centre SD ``sigma_u`` (models with centre effects).

plus the power-scaling sensitivity of each (:mod:`bayes_sarcoma.power_scaling`) and a
prior predictive check per prior set (standardized survival curves under prior draws,
against the Kaplan-Meier curves of the data).

Compile once. Cells whose models share a structure (same terms and centres, same prior
*families*) share one compiled model: prior hyperparameters are data. The grid runs on
:func:`bayes_sarcoma.runner.run_tasks` with the model structure as the task group, so the
first cell of a structure compiles it and the others reuse it -- exactly once per
structure in one process (the default threaded LocalCluster, or ``"serial"``), at most
once per worker process otherwise. Each cell's seed is derived from the base seed and the
cell's key, so a cell gives the same numbers however the grid is run.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from bayes_sarcoma import __version__
from bayes_sarcoma.power_scaling import THRESHOLD, TopLevelPriors, power_scaling
from bayes_sarcoma.runner import Task, run_tasks
from bayes_sarcoma.specs import ModelSpec, PriorSet, load_model_spec, load_prior_set

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bayes_sarcoma.model import HierarchicalWeibull

DEFAULT_MODEL = "netsarc_weibull"
SAMPLE_DIMS = ("chain", "draw")
GRID_DIMS = ("model", "endpoint", "prior_set")
ARMS = ("expert", "other")
#: Quantiles of the prior predictive bands.
BANDS = (0.05, 0.25, 0.5, 0.75, 0.95)


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


def cell_seed(base_seed: int, key: str) -> int:
    """Return a cell's seed: a hash of the base seed and the cell's key (order-free).

    Examples
    --------
    >>> cell_seed(0, "OS/netsarc_weibull/vague") == cell_seed(0, "OS/netsarc_weibull/vague")
    True
    >>> cell_seed(0, "OS/a/b") != cell_seed(1, "OS/a/b")
    True
    """
    digest = hashlib.sha256(f"{int(base_seed)}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "little") % (2**31 - 1)


@dataclass(frozen=True)
class Cell:
    """One fit of the grid: an endpoint, a model specification and a prior set."""

    endpoint: str
    spec: ModelSpec
    priors: PriorSet
    seed: int

    @property
    def key(self) -> str:
        """``"<endpoint>/<model>/<prior set>"``."""
        return f"{self.endpoint}/{self.spec.name}/{self.priors.name}"

    def model(self) -> HierarchicalWeibull:
        """Return the (unfitted) model of this cell."""
        return self.spec.build(self.endpoint, priors=self.priors)


@dataclass(frozen=True)
class CellSettings:
    """What every cell does besides fitting (sent once to the workers)."""

    fit: Mapping[str, Any]
    horizon: float = 60.0
    power_scaling: bool = True
    prior_times: tuple[float, ...] = ()
    prior_draws: int = 400
    prior_patients: int | None = 200


@dataclass
class CellOutput:
    """The small part of a fit that a grid keeps (the DataTree itself is dropped)."""

    quantities: xr.Dataset
    power_scaling: pd.DataFrame | None
    prior_predictive: xr.DataArray | None
    diagnostics: dict[str, Any]


# -- one cell ----------------------------------------------------------------------------
def cell_quantities(
    model: HierarchicalWeibull, dt: xr.DataTree, data: pd.DataFrame, *, horizon: float = 60.0
) -> xr.Dataset:
    """Return the grid's quantities (see the module docstring) per draw of a fit.

    Parameters
    ----------
    model : HierarchicalWeibull
        The fitted model (its ``treatment`` names the expert term).
    dt : xarray.DataTree
        Its fit.
    data : pandas.DataFrame
        The patients the standardized quantities average over (the fitting data).
    horizon : float
        Time of the standardized survival difference, in months.

    Returns
    -------
    xarray.Dataset
        One variable per quantity, dims ``(chain, draw)``.

    Examples
    --------
    >>> q = cell_quantities(model, dt, df, horizon=60)                    # doctest: +SKIP
    >>> float(q["surv_diff_60m"].mean())                                  # doctest: +SKIP
    """
    from bayes_sarcoma.standardize import standardized_survival

    if model.treatment is None:
        raise ValueError("a sensitivity grid needs a treatment term (e.g. expert_center)")
    post = dt.posterior
    names = list(quantity_names(horizon))
    log_hr = post["beta"].sel(term=model.treatment, drop=True)
    out = {names[0]: log_hr, names[1]: np.exp(log_hr)}
    std = standardized_survival(dt, data, [horizon], treatment=model.treatment)
    out[names[2]] = std["difference"].isel(time=0, drop=True)
    out[names[3]] = std["median_difference"]
    if "center_sd" in post:
        out[names[4]] = post["center_sd"]
    return xr.Dataset({k: v.reset_coords(drop=True) for k, v in out.items()})


def sample_prior(model: HierarchicalWeibull, draws: int, *, seed: int) -> xr.DataTree:
    """Draw a fitted model's parameters from their priors (scipy; thread-safe).

    Same layout as :meth:`HierarchicalWeibull.sample_prior` (a ``prior`` group with the
    posterior's names, on the user's scale), without touching the shared compiled PyMC
    model, so cells running in threads cannot interfere.

    Examples
    --------
    >>> prior = sample_prior(model, 500, seed=1)                          # doctest: +SKIP
    >>> prior["prior"]["beta"].sizes["draw"]                              # doctest: +SKIP
    500
    """
    from bayes_sarcoma.results import build_datatree, user_scale_posterior

    prepared, design = model.prepared_, model.design
    if prepared is None:
        raise RuntimeError("the model has not been fitted yet: call .fit(data) first")
    rng = np.random.default_rng(seed)
    top = TopLevelPriors.from_spec(model.to_dict(), design, prepared.t_ref)
    has_center = bool(model.cluster) and len(prepared.center_ids) > 0
    modifier = model.effect_modifier
    slots = [s for s, on in (("center_sd", has_center), ("interaction_sd", modifier)) if on]
    internal = top.draw(draws, rng, slots=slots)
    # Vague priors give extreme draws on purpose (that is what the check shows).
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        if has_center:
            z = rng.standard_normal((1, draws, len(prepared.center_ids)))
            internal["center_raw"] = internal["center_sd"][..., None] ** prepared.center_weight * z
        if modifier:
            internal["interaction_raw"] = rng.standard_normal(
                (1, draws, len(prepared.modifier_levels))
            )
        post = user_scale_posterior(internal, design, prepared, model.treatment)
    attrs = {"model": model.to_dict(), "design": design.to_dict(), "t_ref": prepared.t_ref}
    tree = build_datatree(
        post,
        prepared,
        design,
        xr.Dataset(coords={"chain": [0], "draw": np.arange(draws)}),
        modifier=modifier,
        exponential=model.baseline == "exponential",
        log_likelihood=False,
        attrs=attrs,
    )
    out = xr.DataTree.from_dict({"prior": tree["posterior"].dataset})
    out.attrs = dict(tree.attrs)
    return out


def prior_predictive(
    model: HierarchicalWeibull,
    data: pd.DataFrame,
    times: Sequence[float],
    *,
    draws: int = 400,
    patients: int | None = 200,
    seed: int = 0,
    n_nodes: int = 16,
) -> xr.DataArray:
    """Prior predictive standardized survival of both arms, as quantile bands.

    For each prior draw, every patient of a random subset is set to an expert centre
    (then to another centre) and their survival, integrated over a new centre's effect
    (:func:`bayes_sarcoma.predict.predict_survival`), is averaged.

    Why not :func:`bayes_sarcoma.standardize.standardized_survival`: its binned expansion
    of the mean over patients is exact and fast when the linear predictor spans a few
    units, as under a posterior; under vague priors it spans thousands (thousands of bins
    per draw), while this direct mean over a few hundred patients stays cheap. Overflows
    of extreme prior draws are intended (survival 0 or 1) and silenced.

    Parameters
    ----------
    model : HierarchicalWeibull
        A fitted model (its coding and ``t_ref`` define the priors' scales).
    data : pandas.DataFrame
        The patients standardized over.
    times : sequence of float
        Months since surgery.
    draws : int
        Prior draws.
    patients : int, optional
        Standardize over a random subset of this many patients (the prior's spread is far
        wider than the subsampling error); None: all.
    seed : int
        Seed of the prior draws and of the subset.
    n_nodes : int
        Gauss-Hermite nodes for the new centre's effect.

    Returns
    -------
    xarray.DataArray
        Dims ``(arm, time, quantile)``: quantiles :data:`BANDS` of the standardized
        survival at each time, for ``arm`` ``"expert"`` (every patient at an expert centre)
        and ``"other"``.

    Examples
    --------
    >>> band = prior_predictive(model, df, [0, 12, 60], draws=200)         # doctest: +SKIP
    >>> band.sel(arm="expert", quantile=0.5)                               # doctest: +SKIP
    """
    from bayes_sarcoma.predict import predict_survival

    prior = sample_prior(model, draws, seed=seed)
    if patients is not None and len(data) > patients:
        data = data.sample(n=patients, random_state=np.random.default_rng(seed))
    curves = []
    with np.errstate(all="ignore"):
        for value in (1, 0):  # the order of ARMS
            arm = data.assign(**{model.treatment: value})
            s = predict_survival(prior, arm, times, group="prior", n_nodes=n_nodes)
            curves.append(s.mean("patient").stack(sample=SAMPLE_DIMS).to_numpy())
    curves = np.stack(curves)  # arm, time, sample
    return xr.DataArray(
        np.nanquantile(curves, BANDS, axis=-1).transpose(1, 2, 0),
        dims=("arm", "time", "quantile"),
        coords={"arm": list(ARMS), "time": np.asarray(times, float), "quantile": list(BANDS)},
        attrs={"nonfinite_draws": int((~np.isfinite(curves)).any(axis=(0, 1)).sum())},
    )


def fit_cell(cell: Cell, *, data: pd.DataFrame, settings: CellSettings) -> CellOutput:
    """Fit one cell and keep its quantities, power-scaling and prior predictive bands.

    The runner's task function (module level, so that worker processes can import it).
    """
    import arviz_stats as azs

    model = cell.model()
    # Compilation is serialised across threads by bayes_sarcoma.sampling's lock.
    dt = model.fit(data, random_seed=cell.seed, progressbar=False, **settings.fit)
    quantities = cell_quantities(model, dt, data, horizon=settings.horizon)
    ps = power_scaling(dt, quantities=quantities).table if settings.power_scaling else None
    band = None
    if settings.prior_times:
        band = prior_predictive(
            model,
            data,
            settings.prior_times,
            draws=settings.prior_draws,
            patients=settings.prior_patients,
            seed=cell.seed,
        )
    stats = dt["sample_stats"].dataset
    diagnostics = {
        "compiled": bool(dt.attrs["compile_seconds"] > 0),
        "compile_seconds": float(dt.attrs["compile_seconds"]),
        "sampling_seconds": float(dt.attrs["sampling_seconds"]),
        "divergences": int(stats["diverging"].sum()) if "diverging" in stats else 0,
        "max_rhat": float(azs.rhat(quantities).to_array().max()),
        "min_ess_bulk": float(azs.ess(quantities, method="bulk").to_array().min()),
    }
    return CellOutput(quantities, ps, band, diagnostics)


# -- the grid ----------------------------------------------------------------------------
def _prior_sets(prior_sets, models_dir) -> list[PriorSet]:
    if isinstance(prior_sets, Mapping):
        out = []
        for name, value in prior_sets.items():
            if isinstance(value, PriorSet):
                out.append(PriorSet(str(name), dict(value.priors), value.description))
            else:
                out.append(PriorSet(str(name), dict(value)))
        return out
    if isinstance(prior_sets, str | PriorSet):
        prior_sets = [prior_sets]
    return [load_prior_set(p, models_dir=models_dir) for p in prior_sets]


def _unique(names: list[str], what: str) -> None:
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{what} names must be unique; repeated: {dupes}")


def observed_survival(
    data: pd.DataFrame, endpoints: Sequence[str], times: Sequence[float], *, treatment: str
) -> xr.DataArray:
    """Kaplan-Meier survival of each arm per endpoint, dims ``(endpoint, arm, time)``.

    Examples
    --------
    >>> km = observed_survival(df, ["OS"], [0, 60], treatment="expert_center")  # doctest: +SKIP
    """
    from scipy import stats

    from bayes_sarcoma import schema
    from bayes_sarcoma.endpoints import derive_endpoints

    t = np.asarray(times, float)
    out = np.full((len(endpoints), len(ARMS), len(t)), np.nan)
    for i, endpoint in enumerate(endpoints):
        time_col, event_col = schema.endpoint_columns(endpoint)
        table = data if time_col in data.columns else derive_endpoints(data)
        arm = table[treatment].astype(bool).to_numpy()
        for j, mask in enumerate((arm, ~arm)):
            event = table.loc[mask, event_col].astype(bool).to_numpy()
            time_ = table.loc[mask, time_col].to_numpy(float)
            cens = stats.CensoredData.right_censored(time_, ~event)
            out[i, j] = stats.ecdf(cens).sf.evaluate(t)
    return xr.DataArray(
        out,
        dims=("endpoint", "arm", "time"),
        coords={"endpoint": list(endpoints), "arm": list(ARMS), "time": t},
    )


def prior_sensitivity(
    data: pd.DataFrame,
    *,
    endpoints: Sequence[str],
    prior_sets: Sequence[str | PriorSet] | Mapping[str, Any],
    model_specs: Sequence[str | ModelSpec] | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 0,
    horizon: float = 60.0,
    ci_prob: float = 0.95,
    power_scaling: bool = True,
    prior_predictive: bool = True,
    prior_times: Sequence[float] = tuple(np.linspace(0, 120, 25)),
    prior_draws: int = 400,
    prior_patients: int | None = 200,
    scheduler: Any = None,
    cluster_kwargs: Mapping[str, Any] | None = None,
    progress: bool = True,
    models_dir: str | Path | None = None,
    **fit_kwargs: Any,
) -> SensitivityResult:
    """Fit a grid of endpoints x prior sets (x model specs) and compare the answers.

    Parameters
    ----------
    data : pandas.DataFrame
        The registry (or any table the model specs read).
    endpoints : sequence of str
        ``"LRFS"``, ``"RFS"``, ``"OS"``.
    prior_sets : sequence or mapping
        Names (``"sceptical"``) or paths of prior-set files, :class:`PriorSet` objects, or
        a mapping ``{name: PriorSet or {slot: prior}}`` (see :mod:`bayes_sarcoma.specs`).
    model_specs : sequence, optional
        Names, paths or :class:`ModelSpec` (default ``["netsarc_weibull"]``). In a grid each
        cell's priors are its prior set's (over the defaults), not the spec's own.
    draws, tune, chains : int
        Sampler settings of every fit.
    seed : int
        Base seed; each cell's seed is :func:`cell_seed` of it and the cell's key.
    horizon : float
        Months of the standardized survival difference.
    ci_prob : float
        Probability of the equal-tailed intervals of the table.
    power_scaling : bool
        Compute each cell's power-scaling sensitivity.
    prior_predictive : bool
        Compute each cell's prior predictive standardized survival bands at ``prior_times``
        from ``prior_draws`` draws over ``prior_patients`` patients.
    scheduler : optional
        Where to run (:func:`bayes_sarcoma.runner.run_tasks`): None (a threaded
        LocalCluster here), ``"processes"``, ``"serial"``, a scheduler address, a Client.
    cluster_kwargs : mapping, optional
        LocalCluster options.
    progress : bool
        Print a line per finished cell.
    models_dir : path, optional
        Directory searched first for named prior sets and model specs.
    **fit_kwargs
        Passed to :meth:`HierarchicalWeibull.fit` (e.g. ``target_accept``).

    Returns
    -------
    SensitivityResult
        ``.table`` (tidy: ``endpoint``, ``model``, ``prior_set``, ``quantity``, ``mean``,
        ``sd``, ``lower``, ``upper``), ``.tree`` (DataTree with a ``prior_set`` dim),
        ``.power_scaling``, ``.cells``, ``.plot()``, ``.plot_prior_predictive()``,
        ``.save()``.

    Examples
    --------
    >>> import bayes_sarcoma as bs
    >>> df = bs.simulate_registry(2000, seed=1)                            # doctest: +SKIP
    >>> res = bs.prior_sensitivity(df, endpoints=["OS"],                   # doctest: +SKIP
    ...                            prior_sets=["weakly_informative", "sceptical"])
    >>> res.table.query("quantity == 'hr_expert'")                         # doctest: +SKIP
    >>> res.plot().savefig("sensitivity.png")                              # doctest: +SKIP
    """
    if fit_kwargs.get("sampler", "nutpie") != "nutpie" and scheduler in (None, "threads"):
        raise ValueError(
            "only the nutpie sampler is thread-safe (the others set data on a shared model): "
            "use scheduler='processes' or 'serial' with sampler=" + repr(fit_kwargs["sampler"])
        )
    start = time.perf_counter()
    endpoints = [str(e).upper() for e in endpoints]
    specs = [load_model_spec(s, models_dir=models_dir) for s in model_specs or [DEFAULT_MODEL]]
    sets = _prior_sets(prior_sets, models_dir)
    _unique(endpoints, "endpoint")
    _unique([s.name for s in specs], "model spec")
    _unique([p.name for p in sets], "prior set")
    cells = []
    tasks = []
    for spec in specs:
        for endpoint in endpoints:
            for prior_set in sets:
                cell = Cell(endpoint, spec, prior_set, 0)
                cell = Cell(endpoint, spec, prior_set, cell_seed(seed, cell.key))
                model = cell.model()
                if model.treatment is None:
                    raise ValueError(f"model spec {spec.name!r} has no treatment term")
                # Learn the coding and build (not compile) the model here: its structure
                # groups the cells, and in-process workers find the built model cached.
                model.compiled(data)
                cells.append(cell)
                tasks.append(Task(cell.key, cell, group=model.structure_))
    settings = CellSettings(
        fit=dict(draws=draws, tune=tune, chains=chains, **fit_kwargs),
        horizon=float(horizon),
        power_scaling=power_scaling,
        prior_times=tuple(float(t) for t in prior_times) if prior_predictive else (),
        prior_draws=prior_draws,
        prior_patients=prior_patients,
    )
    results = run_tasks(
        fit_cell,
        tasks,
        shared={"data": data, "settings": settings},
        scheduler=scheduler,
        progress=progress,
        cluster_kwargs=cluster_kwargs,
    )
    observed = None
    if prior_predictive:
        treatment = cells[0].model().treatment
        observed = observed_survival(data, endpoints, settings.prior_times, treatment=treatment)
    tree = _assemble(cells, results, settings, observed)
    tree.attrs.update(
        {
            "endpoints": json.dumps(endpoints),
            "model_specs": json.dumps({s.name: s.to_dict() for s in specs}),
            "prior_sets": json.dumps({p.name: p.to_dict() for p in sets}),
            "settings": json.dumps({**settings.fit, "horizon": horizon, "seed": seed}),
            "ci_prob": ci_prob,
            "n_groups": len({t.group for t in tasks}),
            "wall_seconds": time.perf_counter() - start,
            "bayes_sarcoma_version": __version__,
        }
    )
    return SensitivityResult(tree)


def _assemble(cells, results, settings: CellSettings, observed) -> xr.DataTree:
    """Stack the cells' outputs along (model, endpoint, prior_set)."""
    coords = {
        "model": list(dict.fromkeys(c.spec.name for c in cells)),
        "endpoint": list(dict.fromkeys(c.endpoint for c in cells)),
        "prior_set": list(dict.fromkeys(c.priors.name for c in cells)),
    }
    grid_shape = tuple(len(v) for v in coords.values())
    ok = [(c, r.value) for c, r in zip(cells, results, strict=True) if r.ok]
    groups: dict[str, xr.Dataset] = {}
    if ok:
        names = list(dict.fromkeys(n for _, out in ok for n in out.quantities.data_vars))
        sample = next(out.quantities for _, out in ok)
        sizes = tuple(sample.sizes[d] for d in SAMPLE_DIMS)
        post = {n: np.full(grid_shape + sizes, np.nan) for n in names}
        ps_names = ("prior", "likelihood")
        ps = {n: np.full((*grid_shape, len(names)), np.nan) for n in ps_names}
        diagnosis = np.full((*grid_shape, len(names)), "", dtype=object)
        bands = None
        for cell, out in ok:
            at = _index(coords, cell)
            for name, value in out.quantities.data_vars.items():
                post[name][at] = value.to_numpy()
            if out.power_scaling is not None:
                for k, name in enumerate(names):
                    if name in out.power_scaling.index:
                        row = out.power_scaling.loc[name]
                        ps["prior"][at][k] = row["prior"]
                        ps["likelihood"][at][k] = row["likelihood"]
                        diagnosis[at][k] = str(row["diagnosis"])
            if out.prior_predictive is not None:
                band = out.prior_predictive
                if bands is None:
                    bands = np.full(grid_shape + band.shape, np.nan)
                bands[at] = band.to_numpy()
        dims = (*GRID_DIMS, *SAMPLE_DIMS)
        groups["posterior"] = xr.Dataset(
            {n: (dims, v) for n, v in post.items()},
            coords={**coords, "chain": np.arange(sizes[0]), "draw": np.arange(sizes[1])},
        )
        if settings.power_scaling:
            qdims = (*GRID_DIMS, "quantity")
            groups["power_scaling"] = xr.Dataset(
                {
                    "prior": (qdims, ps["prior"]),
                    "likelihood": (qdims, ps["likelihood"]),
                    "diagnosis": (qdims, diagnosis.astype(str)),
                },
                coords={**coords, "quantity": names},
                attrs={"threshold": THRESHOLD},
            )
        if bands is not None:
            groups["prior_predictive"] = xr.Dataset(
                {
                    "survival": (
                        (*GRID_DIMS, "arm", "time", "quantile"),
                        bands,
                        {"description": "quantiles of the standardized survival under the prior"},
                    ),
                    "observed": observed.rename("observed"),
                },
                coords={**coords, "arm": list(ARMS), "time": list(settings.prior_times)},
            ).assign_coords(quantile=list(BANDS))
    tree = xr.DataTree.from_dict(groups)
    tree.attrs["cells"] = json.dumps(
        [_cell_record(c, r) for c, r in zip(cells, results, strict=True)]
    )
    tree.attrs["horizon"] = settings.horizon
    return tree


def _index(coords, cell) -> tuple[int, int, int]:
    return (
        coords["model"].index(cell.spec.name),
        coords["endpoint"].index(cell.endpoint),
        coords["prior_set"].index(cell.priors.name),
    )


def _cell_record(cell: Cell, result) -> dict[str, Any]:
    record = {
        "key": cell.key,
        "endpoint": cell.endpoint,
        "model": cell.spec.name,
        "prior_set": cell.priors.name,
        "seed": cell.seed,
        "ok": result.ok,
        "error": result.error,
        "traceback": result.traceback,
        "warnings": result.warnings,
        "seconds": result.seconds,
        "worker": result.worker,
    }
    if result.ok:
        record.update(result.value.diagnostics)
    return record


# -- the result ---------------------------------------------------------------------------
@dataclass
class SensitivityResult:
    """A finished grid: its DataTree, and tables and plots made from it.

    ``tree`` has a ``posterior`` group of the quantities with dims ``(model, endpoint,
    prior_set, chain, draw)`` (NaN for failed cells), ``power_scaling`` (``prior``,
    ``likelihood``, ``diagnosis`` by ``quantity``), ``prior_predictive`` (``survival``
    bands by ``arm``, ``time``, ``quantile`` and the Kaplan-Meier ``observed``), and in
    ``attrs`` the cells (seed, status, error, warnings, timings, diagnostics), prior sets,
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
        """One row per cell: key, seed, ``ok``, error, warnings, timings, diagnostics."""
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
