"""Benchmark: the demo's HTML report from its saved fits, timed per section.

Re-simulates the demo's registry (same size and seed, so the simulator's truth is there
as in the demo), loads the fits ``make demo`` saved (``out/demo/*.zarr``) into memory,
then writes the report exactly as the demo does
(:func:`bayes_sarcoma.cli.demo.write_report`) ``--runs`` times and prints the wall and
CPU seconds of each run, the CPU/wall ratio (about 2 when both cores are busy), and the
report's own per-section timings (``Report.timings``: seconds per section, measured in
the process that computed it) with their medians.

Run, after ``make demo``::

    .venv/bin/python tests/benchmarks/report_speed.py [--out out/demo] [--runs 3]
    .venv/bin/python tests/benchmarks/report_speed.py --runs 1 --profile 40

``--profile N`` also runs the report once under :mod:`cProfile` and prints the N
functions with the most cumulative time (of the main process only). Not collected by
pytest; timings belong here, not in the test suite.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import bayes_sarcoma as bs
from bayes_sarcoma.cli.demo import DEMO_FITS, write_report
from bayes_sarcoma.model import io as fit_io

try:
    from bayes_sarcoma.report import workers
except ImportError:  # a version without workers (to time an older commit the same way)
    workers = None


def load_demo(out: Path, patients: int, random_seed: int):
    """Return the demo's registry (re-simulated) and its fits, as the demo holds them."""
    df = bs.simulate_registry(patients, random_seed=random_seed)
    fits = {}
    for endpoint, modifier in DEMO_FITS:
        name = endpoint.lower() + (f"_{modifier}" if modifier else "")
        dt = fit_io.load(out / f"{name}.zarr", data=df)
        fits[name] = (bs.HierarchicalWeibull.from_datatree(dt), dt)
    return df, fits


def run_once(df, fits, settings, folder: Path, cores=None) -> tuple[float, float, dict]:
    """Write the report once; return wall seconds, CPU seconds (all processes) and timings."""
    wall, cpu = time.perf_counter(), _cpu()
    extra = {} if cores is None else {"cores": cores}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = write_report(df, fits, folder, settings, **extra)
        if workers is not None:
            workers.shutdown()  # each run starts its worker, as the demo does; CPU counted
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    path = getattr(report, "path", report)  # older versions returned the path
    assert Path(path).exists()
    return wall, cpu, dict(getattr(report, "timings", {}))


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (worker processes)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="the demo's folder")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--patients", type=int, default=9594)
    parser.add_argument("--random-seed", type=int, default=2026)
    parser.add_argument("--draws", type=int, default=500, help="the demo's draws (for its text)")
    parser.add_argument("--tune", type=int, default=300)
    parser.add_argument("--profile", type=int, default=0, help="print the N costliest calls")
    parser.add_argument("--cores", type=int, default=None, help="the report's cores (all)")
    args = parser.parse_args()
    start = time.perf_counter()
    df, fits = load_demo(args.out, args.patients, args.random_seed)
    print(f"loaded the registry and {len(fits)} fits in {time.perf_counter() - start:.1f} s")
    settings = argparse.Namespace(
        draws=args.draws, tune=args.tune, chains=4, random_seed=args.random_seed
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(1, args.runs + 1):
            wall, cpu, timings = run_once(df, fits, settings, Path(tmp), args.cores)
            rows.append((wall, cpu, timings))
            print(f"run {run}: wall {wall:.1f} s, CPU {cpu:.1f} s, CPU/wall {cpu / wall:.2f}")
        if args.runs:
            walls = [r[0] for r in rows]
            print(f"median wall {statistics.median(walls):.1f} s over {len(walls)} runs")
            names = list(dict.fromkeys(k for r in rows for k in r[2]))
            print("per section, median over runs: wall s, CPU s (its process), where it ran")
            for name in names:
                found = [r[2][name] for r in rows if name in r[2]]
                wall = statistics.median(t.wall for t in found)
                cpu = statistics.median(t.cpu for t in found)
                where = "/".join(sorted({t.where for t in found}))
                print(f"  {name:28s} {wall:7.2f} {cpu:7.2f}  {where}")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            run_once(df, fits, settings, Path(tmp), args.cores)
            profiler.disable()
            buffer = io.StringIO()
            stats = pstats.Stats(profiler, stream=buffer).sort_stats("cumulative")
            stats.print_stats(args.profile)
            print(buffer.getvalue())


if __name__ == "__main__":
    main()
