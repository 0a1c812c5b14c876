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
    over a new centre's effect (:func:`bayes_sarcoma.predict.standardize.standardized_survival`).
``median_diff_months``
    The difference of the two standardized medians, in months.
``center_sd``
    The centre SD ``sigma_u`` (models with centre effects).

plus the power-scaling sensitivity of each (:mod:`bayes_sarcoma.checks.power_scaling`) and a
prior predictive check per prior set (standardized survival curves under prior draws,
against the Kaplan-Meier curves of the data; :mod:`bayes_sarcoma.checks.prior_predictive`). The
grid comes back as a :class:`~bayes_sarcoma.study.sensitivity_result.SensitivityResult` (tables,
plots, save/load; :mod:`bayes_sarcoma.study.sensitivity_result`).

Compile once. Cells whose models share a structure (same terms and centres, same prior
*families*) share one compiled model: prior hyperparameters are data. The grid runs on
:func:`bayes_sarcoma.study.runner.run_tasks` with the model structure as the task group, so the
first cell of a structure compiles it and the others reuse it -- exactly once per
structure in one process (the default threaded LocalCluster, or ``"serial"``), at most
once per worker process otherwise. Each cell's random_seed is derived from the base seed and the
cell's key, so a cell gives the same numbers however the grid is run.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from bayes_sarcoma._defaults import CI_PROB
from bayes_sarcoma._version import __version__
from bayes_sarcoma.checks.power_scaling import THRESHOLD, power_scaling
from bayes_sarcoma.checks.prior_predictive import ARMS, BANDS, observed_survival, prior_predictive
from bayes_sarcoma.checks.prior_predictive import sample_prior as sample_prior
from bayes_sarcoma.model.posterior import SAMPLE_DIMS
from bayes_sarcoma.model.specs import ModelSpec, PriorSet, load_model_spec, load_prior_set
from bayes_sarcoma.predict.standardize import standardized_survival
from bayes_sarcoma.study.runner import Task, TaskResult, run_tasks
from bayes_sarcoma.study.sensitivity_result import GRID_DIMS, SensitivityResult, quantity_names

if TYPE_CHECKING:
    from bayes_sarcoma.model.hierarchical import HierarchicalWeibull

DEFAULT_MODEL = "netsarc_weibull"


def cell_seed(base_seed: int, key: str) -> int:
    """Return a cell's random_seed: a hash of the base random_seed and the cell's key (order-free).

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
    random_seed: int

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


def fit_cell(cell: Cell, *, data: pd.DataFrame, settings: CellSettings) -> CellOutput:
    """Fit one cell and keep its quantities, power-scaling and prior predictive bands.

    The runner's task function (module level, so that worker processes can import it).
    """
    import arviz_stats as azs

    model = cell.model()
    # Compilation is serialised across threads by bayes_sarcoma.inference.sampling's lock.
    dt = model.fit(data, random_seed=cell.random_seed, progressbar=False, **settings.fit)
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
            random_seed=cell.random_seed,
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


def prior_sensitivity(
    data: pd.DataFrame,
    *,
    endpoints: Sequence[str],
    prior_sets: Sequence[str | PriorSet] | Mapping[str, Any],
    model_specs: Sequence[str | ModelSpec] | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int = 0,
    horizon: float = 60.0,
    ci_prob: float = CI_PROB,
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
        a mapping ``{name: PriorSet or {slot: prior}}`` (see :mod:`bayes_sarcoma.model.specs`).
    model_specs : sequence, optional
        Names, paths or :class:`ModelSpec` (default ``["netsarc_weibull"]``). In a grid each
        cell's priors are its prior set's (over the defaults), not the spec's own.
    draws, tune, chains : int
        Sampler settings of every fit.
    random_seed : int
        Base random_seed; each cell's random_seed is :func:`cell_seed` of it and the cell's key.
    horizon, ci_prob : float
        Months of the standardized survival difference; probability of the table's intervals.
    power_scaling, prior_predictive : bool
        Compute each cell's power-scaling sensitivity; its prior predictive standardized
        survival bands at ``prior_times`` from ``prior_draws`` draws over ``prior_patients``.
    scheduler, cluster_kwargs : optional
        Where to run (:func:`bayes_sarcoma.study.runner.run_tasks`): None (a threaded LocalCluster
        with ``cluster_kwargs``), ``"processes"``, ``"serial"``, a scheduler address, a Client.
    progress : bool
        Print a line per finished cell.
    models_dir : str or pathlib.Path, optional
        Directory searched first for named prior sets and model specs.
    **fit_kwargs
        Passed to :meth:`HierarchicalWeibull.fit` (e.g. ``target_accept``).

    Returns
    -------
    SensitivityResult
        ``.table`` (tidy: ``endpoint``, ``model``, ``prior_set``, ``quantity``, ``mean``, ``sd``,
        ``lower``, ``upper``), ``.tree`` (DataTree with a ``prior_set`` dim), ``.power_scaling``,
        ``.cells``, ``.plot()``, ``.plot_prior_predictive()``, ``.save()``.

    Examples
    --------
    >>> res = prior_sensitivity(df, endpoints=["OS"],                      # doctest: +SKIP
    ...                         prior_sets=["weakly_informative", "sceptical"])
    >>> res.table.query("quantity == 'hr_expert'")                         # doctest: +SKIP
    >>> res.plot().savefig("sensitivity.png")                              # doctest: +SKIP
    """
    _check_thread_safe(fit_kwargs, scheduler)
    start = time.perf_counter()
    grid = _grid(data, endpoints, prior_sets, model_specs, models_dir, random_seed)
    fit = dict(draws=draws, tune=tune, chains=chains, **fit_kwargs)
    times = tuple(float(t) for t in prior_times) if prior_predictive else ()
    settings = CellSettings(fit, float(horizon), power_scaling, times, prior_draws, prior_patients)
    options = dict(scheduler=scheduler, progress=progress, cluster_kwargs=cluster_kwargs)
    tree = _run_grid(data, grid, settings, options, observed=prior_predictive)
    tree.attrs.update(_grid_attrs(grid, settings, horizon, random_seed, ci_prob, start))
    return SensitivityResult(tree)


def _check_thread_safe(fit_kwargs: Mapping[str, Any], scheduler: Any) -> None:
    """Raise if a sampler other than nutpie would run in threads."""
    if fit_kwargs.get("sampler", "nutpie") != "nutpie" and scheduler in (None, "threads"):
        raise ValueError(
            "only the nutpie sampler is thread-safe (the others set data on a shared model): "
            "use scheduler='processes' or 'serial' with sampler=" + repr(fit_kwargs["sampler"])
        )


@dataclass(frozen=True)
class _Grid:
    """The grid's axes, its cells and their tasks (grouped by model structure)."""

    endpoints: list[str]
    specs: list[ModelSpec]
    sets: list[PriorSet]
    cells: list[Cell]
    tasks: list[Task]


def _grid(
    data: pd.DataFrame,
    endpoints: Sequence[str],
    prior_sets: Sequence[str | PriorSet] | Mapping[str, Any],
    model_specs: Sequence[str | ModelSpec] | None,
    models_dir: str | Path | None,
    random_seed: int,
) -> _Grid:
    """Load the model specs and prior sets, check the names are unique, and lay out the cells."""
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
                cell = Cell(endpoint, spec, prior_set, cell_seed(random_seed, cell.key))
                model = cell.model()
                if model.treatment is None:
                    raise ValueError(f"model spec {spec.name!r} has no treatment term")
                # Learn the coding and build (not compile) the model here: its structure
                # groups the cells, and in-process workers find the built model cached.
                model.compiled(data)
                cells.append(cell)
                tasks.append(Task(cell.key, cell, group=model.structure_))
    return _Grid(endpoints, specs, sets, cells, tasks)


def _run_grid(
    data: pd.DataFrame,
    grid: _Grid,
    settings: CellSettings,
    options: Mapping[str, Any],
    *,
    observed: bool,
) -> xr.DataTree:
    """Fit every cell (:func:`run_tasks` ``options``) and stack the outputs into a DataTree.

    ``observed``: add the data's Kaplan-Meier curves to the prior predictive bands.
    """
    shared = {"data": data, "settings": settings}
    results = run_tasks(fit_cell, grid.tasks, shared=shared, **options)
    _check_failures(results)
    km = None
    if observed:
        treatment = grid.cells[0].model().treatment
        km = observed_survival(data, grid.endpoints, settings.prior_times, treatment=treatment)
    return _assemble(grid.cells, results, settings, km)


class GridError(RuntimeError):
    """Every cell of a sensitivity grid failed: there is no table to return."""


class CellFailureWarning(UserWarning):
    """Some cells of a sensitivity grid failed; the table holds the others."""


def _check_failures(results: Sequence[TaskResult]) -> None:
    """Raise when every cell failed; warn, naming them, when some did.

    A grid never returns an empty or partial table silently: the caller sees the failures
    (``.failures`` keeps their tracebacks).
    """
    failed = [r for r in results if not r.ok]
    if not failed:
        return
    listing = "; ".join(f"{r.key}: {r.error}" for r in failed[:3])
    if len(failed) > 3:
        listing += f"; and {len(failed) - 3} more"
    if len(failed) == len(results):
        raise GridError(f"every cell of the grid failed ({len(failed)}): {listing}")
    warnings.warn(
        f"{len(failed)} of {len(results)} cells failed and are missing from the table "
        f"({listing}); .failures has their tracebacks",
        CellFailureWarning,
        stacklevel=4,
    )


def _grid_attrs(
    grid: _Grid,
    settings: CellSettings,
    horizon: float,
    random_seed: int,
    ci_prob: float,
    start: float,
) -> dict[str, Any]:
    """Return the grid's description kept in the tree's attrs (JSON where structured)."""
    return {
        "endpoints": json.dumps(grid.endpoints),
        "model_specs": json.dumps({s.name: s.to_dict() for s in grid.specs}),
        "prior_sets": json.dumps({p.name: p.to_dict() for p in grid.sets}),
        "settings": json.dumps({**settings.fit, "horizon": horizon, "random_seed": random_seed}),
        "ci_prob": ci_prob,
        "n_groups": len({t.group for t in grid.tasks}),
        "wall_seconds": time.perf_counter() - start,
        "bayes_sarcoma_version": __version__,
    }


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
        "random_seed": cell.random_seed,
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
