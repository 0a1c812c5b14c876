"""Benchmark: the integrated engine against the sampled one, on the same registry.

For each engine and run, one default ``fit()`` call (OS, 4 chains x 1000 draws) of
``simulate_registry(--patients, random_seed=--random-seed)``, printing: the fit call's wall
time, compile and sampling seconds, post-processing (wall - compile - sampling) and the
overhead ratio wall / (compile + sampling), leapfrog steps per draw, divergences, max
R-hat, min bulk ESS and bulk ESS per second of sampling over the global parameters, and
the peak resident memory of the process. Then the ratios integrated / sampled, and each
global parameter's posterior mean in both engines with z = difference / combined MCSE.

Run: ``.venv/bin/python tests/benchmarks/integrated_engine.py [--patients 9594] [--runs 2]
[--engines integrated sampled] [--draws 1000] [--tune 1000]``. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import warnings

import arviz_stats as azs
import numpy as np

import bayes_sarcoma as bs

GLOBALS = ["intercept", "shape", "beta", "center_sd"]


def fit_once(data, engine: str, random_seed: int, draws: int, tune: int) -> tuple[dict, object]:
    """One default fit; return its measurements and the DataTree."""
    model = bs.HierarchicalWeibull("OS", engine=engine)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplerWarning)
        dt = model.fit(data, random_seed=random_seed, draws=draws, tune=tune, progressbar=False)
    wall = time.perf_counter() - start
    post = dt.posterior.dataset[GLOBALS]
    ess = azs.ess(post, method="bulk")
    rhat = azs.rhat(post)
    stats = dt.sample_stats
    compile_s, sampling_s = dt.attrs["compile_seconds"], dt.attrs["sampling_seconds"]
    row = {
        "wall": wall,
        "compile": compile_s,
        "sampling": sampling_s,
        "post": wall - compile_s - sampling_s,
        "overhead": wall / (compile_s + sampling_s),
        "steps": float(stats["n_steps"].mean()),
        "divergences": int(stats["diverging"].sum()),
        "max_rhat": float(max(rhat[v].max() for v in GLOBALS)),
        "min_ess": float(min(ess[v].min() for v in GLOBALS)),
        "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }
    row["ess_per_s"] = row["min_ess"] / sampling_s
    return row, dt


def agreement(a, b) -> list[tuple[str, float, float, float]]:
    """Each global's posterior mean in both fits and z = difference / combined MCSE."""
    out = []
    for name in GLOBALS:
        ma = a.posterior[name].mean(("chain", "draw"))
        mb = b.posterior[name].mean(("chain", "draw"))
        se = np.hypot(
            azs.mcse(a.posterior.dataset[[name]])[name], azs.mcse(b.posterior.dataset[[name]])[name]
        )
        labels = [name] if ma.ndim == 0 else [f"{name}[{t}]" for t in ma["term"].to_numpy()]
        for label, x, y, s in zip(
            labels, np.ravel(ma), np.ravel(mb), np.ravel(se.to_numpy()), strict=True
        ):
            out.append((label, float(x), float(y), float((x - y) / s)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=9594)
    parser.add_argument("--random-seed", type=int, default=2018)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--engines", nargs="+", default=["integrated", "sampled"])
    args = parser.parse_args()
    start = time.perf_counter()
    data = bs.simulate_registry(args.patients, random_seed=args.random_seed)
    print(
        f"{args.patients} patients, {data['center_id'].nunique()} centres, OS, "
        f"{args.draws} draws after {args.tune} tuning steps x 4 chains; "
        f"simulated in {time.perf_counter() - start:.0f} s"
    )
    rows, last = {}, {}
    for engine in args.engines:
        for run in range(args.runs):
            row, last[engine] = fit_once(data, engine, 100 + run, args.draws, args.tune)
            rows.setdefault(engine, []).append(row)
            print(engine, run, "  ".join(f"{k} {v:.4g}" for k, v in row.items()), flush=True)
    med = {e: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for e, rs in rows.items()}
    if {"integrated", "sampled"} <= set(med):
        i, s = med["integrated"], med["sampled"]
        print("\nmedians, ratio integrated / sampled:")
        for key in ("wall", "compile", "sampling", "post", "steps", "ess_per_s", "min_ess"):
            print(f"  {key:10s} {i[key]:10.3g} {s[key]:10.3g}   ratio {i[key] / s[key]:.3g}")
        print("\nposterior means (last runs), z = difference / combined MCSE:")
        for label, x, y, z in agreement(last["integrated"], last["sampled"]):
            print(f"  {label:22s} {x:9.4f} {y:9.4f}  z {z:+.2f}")


if __name__ == "__main__":
    main()
