"""Samplers: compile a model once, swap data and hyperparameters, run NUTS.

nutpie is the default (compiled with numba; fast). PyMC's own NUTS and numpyro (JAX)
are selectable through :func:`pymc.sample`; all three return the same internal draws
and the same ArviZ-named sample statistics, which :mod:`bayes_sarcoma.model.posterior` turns
into the results contract.

Compiled models are cached by a hashable key, the model's structure
(:class:`bayes_sarcoma.model.graph.Structure`):
refitting with new data of the same structure, or with other prior hyperparameters,
reuses the compiled model. :data:`COMPILATIONS` counts real compilations (tests use it).
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pymc as pm
import pytensor
import xarray as xr

SAMPLERS = ("nutpie", "pymc", "numpyro")
#: How many models were compiled, by sampler (for tests and benchmarks).
COMPILATIONS: collections.Counter = collections.Counter()
_CACHE_SIZE = 16
#: PyTensor/numba compilation and the cache are not thread-safe: two structures compiled
#: at once in two threads can give a broken log-density. Building and compiling hold this
#: lock; sampling with nutpie does not (its compiled model is immutable).
_COMPILE_LOCK = threading.RLock()

#: sample_stats renamed to ArviZ's conventions, by sampler.
_NUTPIE_STATS = {
    "diverging": "diverging",
    "depth": "tree_depth",
    "maxdepth_reached": "reached_max_treedepth",
    "energy": "energy",
    "step_size": "step_size",
    "mean_tree_accept": "acceptance_rate",
    "n_steps": "n_steps",
    "logp": "lp",
}
_SETTINGS_HANDLED = ("draws", "tune", "chains", "random_seed", "max_treedepth", "target_accept")
_PYMC_STATS = (
    "diverging",
    "tree_depth",
    "reached_max_treedepth",
    "energy",
    "step_size",
    "acceptance_rate",
    "n_steps",
    "lp",
)


@contextlib.contextmanager
def ieee_numba() -> Iterator[None]:
    """Return a context in which PyTensor compiles numba code with IEEE arithmetic.

    PyTensor's default (``config.numba__fastmath``) lets LLVM reassociate sums and contract
    ``a * b + c`` into fused multiply-adds as it sees fit, and what it sees depends on how
    the code was compiled: a function loaded from PyTensor's on-disk cache was optimised in
    another context than one compiled afresh. So one seed gave different draws depending on
    the state of the cache (rats data, seed 1: 86 divergences with a fresh compile
    directory, 14 with a warm one; a fresh process's intercept draws differed from 1e-7 at
    the first draw, growing to 1.9). With IEEE semantics the compiled log-density is the same
    function however it is built; the cost is within the noise of a fit. PyTensor keys its
    cache by this flag, so fast-math entries are never reused.

    The flag also goes into ``PYTENSOR_FLAGS`` while the context lasts: PyMC's worker
    processes (``pm.sample(cores=2, mp_ctx="spawn")``) compile the model again in a fresh
    interpreter, which reads its flags from the environment, not from this process's
    config; without it their draws differed from one core's from the first draw (1e-8).
    """
    before = os.environ.get("PYTENSOR_FLAGS")
    os.environ["PYTENSOR_FLAGS"] = ",".join(filter(None, [before, "numba__fastmath=False"]))
    try:
        with pytensor.config.change_flags(numba__fastmath=False):
            yield
    finally:
        if before is None:
            del os.environ["PYTENSOR_FLAGS"]
        else:
            os.environ["PYTENSOR_FLAGS"] = before


@dataclass
class CompiledModel:
    """A built PyMC model and, once needed, its nutpie compilation."""

    structure: Hashable
    model: pm.Model
    nutpie: Any = None
    compile_seconds: float = 0.0
    free_names: list[str] = field(default_factory=list)
    #: pm.set_data + pm.sample mutate the shared PyMC model: one such fit at a time.
    lock: threading.Lock = field(default_factory=threading.Lock)


_cache: collections.OrderedDict[Hashable, CompiledModel] = collections.OrderedDict()


def get_compiled(structure: Hashable, build: Callable[[], pm.Model]) -> CompiledModel:
    """Return the cached model for ``structure``, building it with ``build()`` if new."""
    with _COMPILE_LOCK:
        if structure in _cache:
            _cache.move_to_end(structure)
            return _cache[structure]
        model = build()
        entry = CompiledModel(structure, model, free_names=[rv.name for rv in model.free_RVs])
        _cache[structure] = entry
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
        return entry


def clear_cache() -> None:
    """Forget every compiled model."""
    _cache.clear()


@dataclass
class SamplerOutput:
    """Internal draws, ArviZ-named sample statistics, and timings."""

    draws: dict[str, np.ndarray]  # name -> (chain, draw, ...)
    sample_stats: xr.Dataset
    compile_seconds: float
    sampling_seconds: float
    sampler: str
    settings: dict


def run_sampler(
    entry: CompiledModel,
    values: Mapping[str, np.ndarray],
    *,
    sampler: str = "nutpie",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    cores: int | None = None,
    random_seed: int,
    progressbar: bool = True,
    target_accept: float = 0.8,
    max_treedepth: int = 10,
    **kwargs: Any,
) -> SamplerOutput:
    """Sample ``entry``'s model with data and hyperparameters ``values``.

    Parameters
    ----------
    entry : CompiledModel
        From :func:`get_compiled`.
    values : mapping
        Every ``pm.Data`` of the model, by name.
    sampler : {"nutpie", "pymc", "numpyro"}
        The NUTS implementation.
    draws, tune, chains, cores, random_seed, progressbar, target_accept, max_treedepth
        As in :func:`pymc.sample`.
    **kwargs
        Passed to the sampler (``nutpie.sample`` or ``pymc.sample``).
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler={sampler!r}: choose one of {', '.join(SAMPLERS)}")
    settings = dict(
        draws=draws,
        tune=tune,
        chains=chains,
        target_accept=target_accept,
        max_treedepth=max_treedepth,
        random_seed=random_seed,
        **kwargs,
    )
    if sampler == "nutpie":
        return _run_nutpie(entry, values, settings, cores, progressbar)
    return _run_pymc(entry, values, settings, sampler, cores, progressbar)


def _run_nutpie(entry, values, settings, cores, progressbar) -> SamplerOutput:
    import nutpie

    compile_seconds = 0.0
    with _COMPILE_LOCK:
        if entry.nutpie is None:
            start = time.perf_counter()
            with ieee_numba():
                entry.nutpie = nutpie.compile_pymc_model(entry.model, var_names=entry.free_names)
            compile_seconds = time.perf_counter() - start
            entry.compile_seconds = compile_seconds
            COMPILATIONS["nutpie"] += 1
    # The compiled graph only takes the data it uses (e.g. no entry times, no modifier).
    known = {var.name for var in entry.nutpie.shared_var_keys}
    compiled = entry.nutpie.with_data(**{k: v for k, v in values.items() if k in known})
    extra = {k: v for k, v in settings.items() if k not in _SETTINGS_HANDLED}
    extra["target_accept"] = settings["target_accept"]
    start = time.perf_counter()
    trace = nutpie.sample(
        compiled,
        draws=settings["draws"],
        tune=settings["tune"],
        chains=settings["chains"],
        cores=cores,
        seed=settings["random_seed"],  # nutpie names it seed
        progress_bar=progressbar,
        save_warmup=False,
        maxdepth=settings["max_treedepth"],
        **extra,
    )
    seconds = time.perf_counter() - start
    post = trace["posterior"].dataset
    draws = {name: post[name].to_numpy() for name in entry.free_names}
    stats = trace["sample_stats"].dataset
    renamed = {new: stats[old].variable for old, new in _NUTPIE_STATS.items() if old in stats}
    sample_stats = xr.Dataset({k: (("chain", "draw"), v.to_numpy()) for k, v in renamed.items()})
    return SamplerOutput(
        draws, _with_sample_coords(sample_stats), compile_seconds, seconds, "nutpie", settings
    )


def _run_pymc(entry, values, settings, sampler, cores, progressbar) -> SamplerOutput:
    nuts = {"target_accept": settings["target_accept"]}
    if sampler == "pymc":
        nuts["max_treedepth"] = settings["max_treedepth"]
    else:
        # One CPU device: run the chains vectorised rather than warn about pmap.
        nuts.update(max_tree_depth=settings["max_treedepth"], chain_method="vectorized")
    nuts.update(settings.get("nuts", {}))
    extra = {k: v for k, v in settings.items() if k not in (*_SETTINGS_HANDLED, "nuts")}
    start = time.perf_counter()
    with entry.lock, _COMPILE_LOCK, entry.model, ieee_numba():
        known = {var.name for var in entry.model.data_vars}
        pm.set_data({k: v for k, v in values.items() if k in known})
        trace = pm.sample(
            draws=settings["draws"],
            tune=settings["tune"],
            chains=settings["chains"],
            cores=cores,
            random_seed=settings["random_seed"],
            progressbar=progressbar,
            nuts_sampler=sampler,
            compute_convergence_checks=False,
            nuts=nuts,
            **extra,
        )
    seconds = time.perf_counter() - start
    COMPILATIONS[sampler] += 1  # pm.sample compiles (from pytensor's disk cache) every call
    post = trace["posterior"].dataset
    draws = {name: post[name].to_numpy() for name in entry.free_names}
    stats = trace["sample_stats"].dataset
    sample_stats = xr.Dataset(
        {k: (("chain", "draw"), stats[k].to_numpy()) for k in _PYMC_STATS if k in stats}
    )
    return SamplerOutput(draws, _with_sample_coords(sample_stats), 0.0, seconds, sampler, settings)


def _with_sample_coords(ds: xr.Dataset) -> xr.Dataset:
    return ds.assign_coords(chain=np.arange(ds.sizes["chain"]), draw=np.arange(ds.sizes["draw"]))
