"""Run the full simulation-based calibration of the hierarchical Weibull model.

Writes, under ``--out`` (default ``docs/_static``):

- ``sbc_ranks<suffix>.png``: rank histograms with the binomial 99% band and the
  uniformity p-values in each panel's title;
- ``sbc_ranks<suffix>.json``: the design, every rank, the p-values and the sampler
  diagnostics (divergences, ESS, R-hat) of the study.

Usage::

    .venv/bin/python scripts/run_sbc.py --replicates 200 --random-seed 2018
    .venv/bin/python scripts/run_sbc.py --replicates 200 --parameterization noncentered

Replicates run on the Dask runner (``--scheduler``: ``threads`` by default, one process
sharing one compiled model; ``processes``; ``serial``; or a scheduler address).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from bayes_sarcoma.study.sbc import SBCDesign, run_sbc


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--random-seed", type=int, default=2018)
    parser.add_argument("--bins", type=int, default=10)
    parser.add_argument("--parameterization", default="auto")
    parser.add_argument("--engine", default="integrated", choices=("integrated", "sampled"))
    parser.add_argument("--scheduler", default="threads")
    parser.add_argument("--workers", type=int, default=1, help="threads (or processes)")
    parser.add_argument("--out", type=Path, default=Path("docs/_static"))
    parser.add_argument("--suffix", default="", help="appended to the file names")
    args = parser.parse_args(argv)
    logging.getLogger("pymc").setLevel(logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    design = SBCDesign(parameterization=args.parameterization, engine=args.engine)
    scheduler = None if args.scheduler == "threads" else args.scheduler
    if args.scheduler in ("threads", "processes"):
        cluster = {"n_workers": args.workers} if args.scheduler == "processes" else {}
        cluster |= {"threads_per_worker": args.workers} if args.scheduler == "threads" else {}
    else:
        cluster = None
    start = time.perf_counter()
    result = run_sbc(
        args.replicates,
        design=design,
        random_seed=args.random_seed,
        scheduler=scheduler,
        cluster_kwargs=cluster,
    )
    wall = time.perf_counter() - start
    stem = f"sbc_ranks{args.suffix}"
    result.plot(bins=args.bins, path=args.out / f"{stem}.png")
    record = result.to_dict(bins=args.bins)
    record["wall_seconds"] = wall
    record["command"] = (
        f"scripts/run_sbc.py --replicates {args.replicates} --random-seed {args.random_seed} "
        f"--parameterization {args.parameterization} --engine {args.engine} "
        f"--scheduler {args.scheduler} "
        f"--workers {args.workers}"
    )
    (args.out / f"{stem}.json").write_text(json.dumps(record, indent=1) + "\n")
    print(result.uniformity(args.bins).round(3).to_string())
    print(record["summary"], f"failures: {len(result.failures)}", f"wall {wall:.0f} s")


if __name__ == "__main__":
    main()
