"""A small generic runner: map a function over tasks on Dask, one result per task.

Sensitivity grids (and simulation-based calibration) fit many models. :func:`run_tasks`
maps ``func(item, **shared)`` over :class:`Task` items on a ``dask.distributed`` client:

- ``scheduler=None`` starts a :class:`~distributed.LocalCluster` on this machine for the
  run (threads in one process by default, see below) and closes it afterwards;
  ``"processes"`` starts one with a worker process per core; a scheduler address
  (``"tcp://host:8786"``) spreads the tasks over that cluster; a
  :class:`~distributed.Client` is used as it is; ``"serial"`` runs in this process
  without Dask (debugging, and the reference for "same seeds, same numbers").
- Every task returns a :class:`TaskResult`: its value, or its error (type, message and
  traceback) -- a failed task never stops the others -- plus the warnings it raised and
  its wall time. A worker that dies is reported the same way.
- Progress: one line per finished task on stderr (or your callback).
- Tasks may name a ``group``: the first task of each group runs before the others are
  released, so a per-process cache that the first fills (compiled models) serves the
  rest. In one process (threads, or ``"serial"``), a group then compiles exactly once;
  with ``p`` worker processes at most ``p`` times.

Why threads by default: a fit spends its time in nutpie's compiled sampler, which releases
the GIL, so threads run fits in parallel while sharing one compiled-model cache; worker
processes must each compile every model structure they meet, and start slower. See
docs/sensitivity.md for the measurement.

Warnings in tasks are recorded per task (never raised, never lost). While tasks run, the
process's warning filters are set to "always" and ``warnings.showwarning`` routes each
warning to the task running in that thread (warnings of other threads are shown as
usual). Python's ``warnings.catch_warnings`` is not thread-safe, so this is done once per
process, reference-counted, rather than per task.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Values of ``scheduler`` that start a LocalCluster.
LOCAL = (None, "threads", "processes")
SERIAL = "serial"


@dataclass(frozen=True)
class Task:
    """One unit of work.

    Parameters
    ----------
    key : str
        A unique name (reported with the result).
    item : object
        The task's own argument, ``func(item, **shared)``; must pickle for processes.
    group : hashable, optional
        Tasks of one group share a per-process cache: the first runs before the others.
    """

    key: str
    item: Any
    group: Hashable | None = None


@dataclass
class TaskResult:
    """What a task gave back: its value, or its error.

    Attributes
    ----------
    key : str
        The task's key.
    value : object
        ``func``'s return value (None when it failed).
    error : str or None
        ``"<ExceptionType>: <message>"`` when the task failed.
    traceback : str or None
        The formatted traceback of the failure.
    warnings : list of str
        ``"<Category>: <message>"`` for each distinct warning the task raised.
    seconds : float
        Wall time of the task.
    worker : str
        Where it ran (a Dask worker address, or ``"serial"``).
    """

    key: str
    value: Any = None
    error: str | None = None
    traceback: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    worker: str = ""

    @property
    def ok(self) -> bool:
        """True when the task returned a value."""
        return self.error is None


# -- warnings, per task and thread-safe ------------------------------------------------------
_lock = threading.Lock()
_depth = 0
_saved: warnings.catch_warnings | None = None
_original_showwarning = warnings.showwarning
_local = threading.local()


def _route(message, category, filename, lineno, file=None, line=None):
    records = getattr(_local, "records", None)
    if records is None:
        _original_showwarning(message, category, filename, lineno, file, line)
    else:
        records.append(f"{category.__name__}: {message}")


@contextlib.contextmanager
def capture_warnings() -> Iterator[list[str]]:
    """Record the warnings raised in this thread (thread-safe; see the module docstring).

    Yields
    ------
    list of str
        Filled with ``"<Category>: <message>"`` as warnings are raised.

    Examples
    --------
    >>> import warnings
    >>> from bayes_sarcoma.study.runner import capture_warnings
    >>> with capture_warnings() as seen:
    ...     warnings.warn("careful")
    >>> seen
    ['UserWarning: careful']
    """
    global _depth, _saved, _original_showwarning
    records: list[str] = []
    with _lock:
        if _depth == 0:
            _saved = warnings.catch_warnings()
            _saved.__enter__()
            _original_showwarning = warnings.showwarning
            warnings.simplefilter("always")
            warnings.showwarning = _route
        _depth += 1
    previous = getattr(_local, "records", None)
    _local.records = records
    try:
        yield records
    finally:
        _local.records = previous
        with _lock:
            _depth -= 1
            if _depth == 0:
                _saved.__exit__(None, None, None)
                _saved = None


def execute(func: Callable, key: str, item: Any, **shared: Any) -> TaskResult:
    """Run ``func(item, **shared)``, returning its value or its error as a :class:`TaskResult`.

    Examples
    --------
    >>> from bayes_sarcoma.study.runner import execute
    >>> execute(int, "bad", "x").error
    "ValueError: invalid literal for int() with base 10: 'x'"
    """
    start = time.perf_counter()
    value = error = tb = None
    with capture_warnings() as seen:
        try:
            value = func(item, **shared)
        except Exception as err:
            error = f"{type(err).__name__}: {err}"
            tb = traceback.format_exc()
    return TaskResult(
        key=key,
        value=value,
        error=error,
        traceback=tb,
        warnings=list(dict.fromkeys(seen)),
        seconds=time.perf_counter() - start,
        worker=_worker_name(),
    )


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return SERIAL


# -- progress ---------------------------------------------------------------------------------
def print_progress(result: TaskResult, done: int, total: int) -> None:
    """Print one line per finished task to stderr (the default progress report)."""
    width = len(str(total))
    status = "ok" if result.ok else f"FAILED: {result.error}"
    extra = f" ({len(result.warnings)} warning(s))" if result.ok and result.warnings else ""
    sys.stderr.write(
        f"[{done:>{width}}/{total}] {result.key}  {status}  {result.seconds:.1f} s{extra}\n"
    )
    sys.stderr.flush()


def _progress_callback(progress) -> Callable[[TaskResult, int, int], None]:
    if progress is True:
        return print_progress
    if not progress:
        return lambda result, done, total: None
    return progress


# -- running ----------------------------------------------------------------------------------
def run_tasks(
    func: Callable[..., Any],
    tasks: Sequence[Task],
    *,
    shared: Mapping[str, Any] | None = None,
    scheduler: Any = None,
    progress: bool | Callable[[TaskResult, int, int], None] = True,
    cluster_kwargs: Mapping[str, Any] | None = None,
) -> list[TaskResult]:
    """Run ``func(task.item, **shared)`` for every task; return the results in task order.

    Parameters
    ----------
    func : callable
        A module-level function (it must pickle for worker processes).
    tasks : sequence of Task
        The work; keys must be unique.
    shared : mapping, optional
        Keyword arguments every task receives (e.g. the data); sent to each worker once.
    scheduler : None, "threads", "processes", "serial", str or distributed.Client
        None or ``"threads"``: a threaded LocalCluster on this machine (one process, one
        thread per core); ``"processes"``: a LocalCluster with a worker process per core;
        a scheduler address: that cluster; a Client: used as is; ``"serial"``: no Dask.
    progress : bool or callable
        True prints a line per finished task; a callable gets ``(result, done, total)``.
    cluster_kwargs : mapping, optional
        Passed to :class:`distributed.LocalCluster` (e.g. ``n_workers``,
        ``threads_per_worker``) when one is started.

    Returns
    -------
    list of TaskResult

    Examples
    --------
    >>> import math
    >>> from bayes_sarcoma.study.runner import Task, run_tasks
    >>> out = run_tasks(math.sqrt, [Task("a", 4.0), Task("b", -1.0)], scheduler="serial",
    ...                 progress=False)
    >>> [r.value for r in out]
    [2.0, None]
    >>> out[1].error
    'ValueError: math domain error'
    >>> run_tasks(round, [Task("pi", math.pi)], shared={"ndigits": 2}, scheduler="serial",
    ...           progress=False)[0].value
    3.14
    """
    tasks = list(tasks)
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError("task keys must be unique")
    shared = dict(shared or {})
    report = _progress_callback(progress)
    if scheduler == SERIAL:
        results = []
        for task in tasks:
            results.append(execute(func, task.key, task.item, **shared))
            report(results[-1], len(results), len(tasks))
        return results
    with _client(scheduler, cluster_kwargs) as client:
        return _run_on(client, func, tasks, shared, report)


@contextlib.contextmanager
def _client(scheduler, cluster_kwargs) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    if isinstance(scheduler, Client):
        yield scheduler
        return
    if scheduler in LOCAL:
        kwargs = {"dashboard_address": ":0"}
        if scheduler == "processes":
            kwargs.update(processes=True, threads_per_worker=1)
        else:
            kwargs.update(processes=False, n_workers=1)
        kwargs.update(cluster_kwargs or {})
        with LocalCluster(**kwargs) as cluster, Client(cluster) as client:
            yield client
        return
    if isinstance(scheduler, str):
        with Client(scheduler) as client:
            yield client
        return
    raise ValueError(
        f"scheduler={scheduler!r}: use None, 'threads', 'processes', 'serial', "
        "a scheduler address or a distributed.Client"
    )


def resolve_lazy_modules() -> None:
    """Finish importing lazily loaded modules (``importlib.util.LazyLoader``) now.

    On Python < 3.12.3 (gh-114763) two threads touching a lazy module for the first time
    can see it half-loaded (``module 'jax' has no attribute 'Array'``): arviz-base loads
    jax lazily, and scipy touches it on every ``logsumexp``. Called before tasks run in
    threads, so that the first touch happens here, in one thread.
    """
    import importlib.util

    lazy = getattr(importlib.util, "_LazyModule", None)
    if lazy is None:
        return
    for module in list(sys.modules.values()):
        if isinstance(module, lazy):
            with contextlib.suppress(Exception):  # one that cannot import stays lazy
                _ = module.__dict__  # any attribute access finishes the import


def _run_on(client, func, tasks, shared, report) -> list[TaskResult]:
    from distributed import as_completed

    resolve_lazy_modules()
    scattered = client.scatter(shared, broadcast=True) if shared else {}
    token = uuid.uuid4().hex[:8]
    index = {t.key: i for i, t in enumerate(tasks)}
    waiting: dict[Hashable, list[Task]] = {}
    first: list[Task] = []
    for task in tasks:
        if task.group is None or task.group not in waiting:
            first.append(task)
            if task.group is not None:
                waiting[task.group] = []
        else:
            waiting[task.group].append(task)

    def submit(task: Task):
        future = client.submit(
            execute,
            func,
            task.key,
            task.item,
            key=f"bayes-sarcoma-{token}-{index[task.key]}",
            pure=False,
            **scattered,
        )
        future_task[future.key] = task
        return future

    future_task: dict[str, Task] = {}
    results: list[TaskResult | None] = [None] * len(tasks)
    done = 0
    pending = as_completed([submit(t) for t in first])
    try:
        for future in pending:
            task = future_task[future.key]
            try:
                result = future.result()
            except Exception as err:  # the worker died, or the result did not pickle
                result = TaskResult(task.key, error=f"{type(err).__name__}: {err}")
            results[index[task.key]] = result
            done += 1
            report(result, done, len(tasks))
            if task.group is not None:
                pending.update(submit(t) for t in waiting.pop(task.group, []))
            future.release()
    except BaseException:
        client.cancel(list(pending.futures))
        raise
    return results  # type: ignore[return-value]
