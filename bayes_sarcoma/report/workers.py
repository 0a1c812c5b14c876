"""Independent pieces of work shared between this process and spawned worker processes.

The report's sections (figures with matplotlib, tables with pandas, Pareto smoothing) hold
the GIL most of the time, so threads would not keep two cores busy; worker processes do.
:func:`share` runs ``compute(job, task)`` for every task: this process takes tasks from the
end of the list, each worker from the front (give the costliest first), until none is
left, so the load balances itself whatever the tasks cost. The job (the data every task
reads) is sent to each worker once per call. Results come back in task order, with the
seconds each task took, and are the same wherever a task ran (tasks are deterministic).

Workers are started with the ``spawn`` method (a fresh interpreter: safe whatever threads
this process runs) and kept for the next call; starting one costs the imports (a few
seconds), so :func:`prestart` lets a caller start them while it does other work.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

__all__ = ["Timing", "available_cores", "prestart", "run_here", "share", "shutdown"]

#: The started workers, one single-process pool each (so each holds its own copy of a job).
_POOLS: list[ProcessPoolExecutor] = []
_POOLS_LOCK = threading.Lock()
#: In a worker: the current job, set by :func:`_set_job`.
_JOB: dict[str, Any] = {}


def available_cores() -> int:
    """Return the number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _workers(n: int, warm: Callable[[], Any] | None = None) -> list[ProcessPoolExecutor]:
    """Return ``n`` started workers (starting those missing; ``warm`` runs in new ones)."""
    with _POOLS_LOCK:
        context = multiprocessing.get_context("spawn")
        while len(_POOLS) < n:
            pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
            with _main_hidden():
                pool.submit(warm or _noop)  # starts the process now
            _POOLS.append(pool)
        return _POOLS[:n]


@contextlib.contextmanager
def _main_hidden() -> Iterator[None]:
    """Start processes without the caller's ``__main__`` (its script is not run again there).

    A spawned process imports the parent's main script or module first; a user's script
    without an ``if __name__ == "__main__":`` guard would then run again in the worker
    (simulating, fitting ...). Workers only run this package's functions on its objects,
    so they need nothing from ``__main__``.
    """
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in vars(main)}
    try:
        main.__dict__.pop("__file__", None)
        main.__spec__ = None
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


def prestart(cores: int | None = None, warm: Callable[[], Any] | None = None) -> None:
    """Start the workers that :func:`share` with ``cores`` will use, without waiting.

    ``warm`` (a module-level function) runs first in each new worker: unpickling it
    imports its module, which is most of a worker's start-up.
    """
    _workers(_n_workers(cores, 2), warm)


def shutdown() -> None:
    """Stop the workers (a later :func:`share` starts new ones)."""
    with _POOLS_LOCK:
        for pool in _POOLS:
            pool.shutdown(wait=True, cancel_futures=True)
        _POOLS.clear()


atexit.register(shutdown)


def _noop() -> None:
    return None


def _n_workers(cores: int | None, n_tasks: int) -> int:
    cores = available_cores() if cores is None else int(cores)
    if cores < 1:
        raise ValueError(f"cores must be >= 1, got {cores}")
    return max(0, min(cores, n_tasks) - 1)


def _set_job(job: Any) -> None:
    _JOB["job"] = job


@dataclass(frozen=True)
class Timing:
    """Where a task ran, its wall seconds and its process's CPU seconds (all threads)."""

    where: str
    wall: float
    cpu: float


def run_here(compute: Callable[..., Any], *args: Any, where: str = "here") -> tuple[Any, Timing]:
    """Return ``compute(*args)`` and its :class:`Timing` (``where`` it ran)."""
    start, cpu = time.perf_counter(), time.process_time()
    value = compute(*args)
    return value, Timing(where, time.perf_counter() - start, time.process_time() - cpu)


def _run(compute: Callable[[Any, Any], Any], task: Any) -> tuple[Any, Timing]:
    """Run one task in a worker, on the job it was sent."""
    return run_here(compute, _JOB["job"], task, where="worker")


def share(
    tasks: Sequence[Any],
    compute: Callable[[Any, Any], Any],
    job: Any,
    *,
    cores: int | None = None,
) -> list[tuple[Any, Timing]]:
    """Return ``[(compute(job, task), timing), ...]`` in task order, using ``cores`` cores.

    Parameters
    ----------
    tasks : sequence
        Picklable task descriptions, costliest first.
    compute : callable
        A module-level function ``compute(job, task)`` (workers receive it by name).
    job : object
        What every task reads; pickled once per worker.
    cores : int, optional
        This process and ``cores - 1`` workers (default: every available core). 1 runs
        everything here.

    Returns
    -------
    list of (object, Timing)
        Each task's result, where it ran, and its wall and CPU seconds there.

    Examples
    --------
    >>> share([1, 2, 3], pow, 2, cores=1)[2][0]
    8
    """
    tasks = list(tasks)
    results: list[Any] = [None] * len(tasks)
    n = _n_workers(cores, len(tasks))
    if n == 0:
        return [run_here(compute, job, task) for task in tasks]
    queue, lock, futures = deque(range(len(tasks))), threading.Lock(), []
    for pool in _workers(n):
        pool.submit(_set_job, job)
        _feed(pool, queue, lock, futures, tasks, compute)
    while True:
        with lock:
            if not queue:
                break
            i = queue.pop()
        results[i] = run_here(compute, job, tasks[i])
    with lock:  # every task has been taken: futures is complete
        taken = list(futures)
    _collect(taken, results, tasks, compute, job)
    for pool in _POOLS[:n]:  # the workers stay, without the job's data
        with contextlib.suppress(BrokenProcessPool, RuntimeError):
            pool.submit(_set_job, None)
    return results


def _feed(pool, queue: deque, lock, futures: list, tasks, compute) -> None:
    """Give ``pool`` the next task from the front of ``queue``, and again when it is done.

    Taking a task and recording its future happen under ``lock``, so once the queue is
    empty ``futures`` names every task a worker took.
    """
    with lock:
        if not queue:
            return
        i = queue.popleft()
        try:
            future = pool.submit(_run, compute, tasks[i])
        except BrokenProcessPool as error:  # a dead worker: this process will redo it
            future = Future()
            future.set_exception(error)
        futures.append((i, future))

    def done(f: Future) -> None:
        if f.exception() is None:
            _feed(pool, queue, lock, futures, tasks, compute)

    future.add_done_callback(done)


def _collect(futures: list, results: list, tasks, compute, job) -> None:
    """Wait for the workers' tasks; raise their errors; redo here what a dead worker lost."""
    wait([f for _, f in futures])
    broken = False
    for i, future in futures:
        error = future.exception()
        if isinstance(error, BrokenProcessPool):
            results[i], broken = run_here(compute, job, tasks[i]), True
        elif error is not None:
            raise error
        else:
            results[i] = future.result()
    if broken:
        shutdown()
