"""report/workers.py: tasks shared between this process and a spawned worker."""

import operator
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bayes_sarcoma.report import workers

ROOT = Path(__file__).resolve().parents[2]


def test_shared_tasks_give_the_serial_results_in_order():
    tasks = list(range(12))
    shared = workers.share(tasks, operator.pow, 3, cores=2)
    serial = workers.share(tasks, operator.pow, 3, cores=1)
    assert [v for v, _ in shared] == [v for v, _ in serial] == [3**k for k in tasks]
    assert {t.where for _, t in serial} == {"here"}
    assert "worker" in {t.where for _, t in shared}  # the worker took the first task
    assert shared[0][1].where == "worker"
    assert all(t.wall >= 0 and t.cpu >= 0 for _, t in shared)


def test_an_error_in_the_worker_reaches_the_caller():
    with pytest.raises(ZeroDivisionError):
        workers.share([0, 1, 2], operator.truediv, 1.0, cores=2)
    assert workers.share([1], operator.truediv, 1.0, cores=2)[0][0] == 1.0


def test_cores_must_be_positive():
    with pytest.raises(ValueError, match="cores must be >= 1"):
        workers.share([1, 2], operator.pow, 2, cores=0)


def test_a_script_without_a_main_guard_is_not_run_again_in_the_worker(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import operator
            print("top level")
            from bayes_sarcoma.report import workers
            print([v for v, _ in workers.share([1, 2, 3, 4], operator.pow, 2, cores=2)])
            """
        )
    )
    out = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert out.splitlines() == ["top level", "[2, 4, 8, 16]"]
