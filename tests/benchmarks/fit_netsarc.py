"""Benchmark: fit LRFS/RFS/OS on a 9594-patient simulated NETSARC registry.

Prints, per endpoint and run: compile seconds, sampling seconds, min bulk ESS of the key
parameters, ESS per second of sampling, and the cost of one log-density-and-gradient
evaluation (us, and ns per patient) of our model beside the same model written with
``pm.Censored(pm.Weibull)``, with their ratio. ``--scale`` adds the 100,000-patient check
(R-hat and ESS under the "auto" and "noncentered" centre parameterisations).

Run: ``.venv/bin/python tests/benchmarks/fit_netsarc.py [--runs 3] [--scale]``.
Not collected by pytest; timings belong here, not in the test suite.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import arviz_stats as azs
import numpy as np
import nutpie
import pymc as pm
import pytensor.tensor as pt

import bayes_sarcoma as bs
from bayes_sarcoma.inference import sampling

KEY = ["intercept", "shape", "beta", "center_sd"]


def gradient_us(pm_model: pm.Model, repeats: int = 2000) -> float:
    """Microseconds per log-density + gradient evaluation of the numba-compiled model."""
    compiled = nutpie.compile_pymc_model(pm_model, var_names=[v.name for v in pm_model.free_RVs])
    fn = compiled.logp_func
    x = np.asarray(compiled.initial_point_func(1), dtype=float)
    args = [x] + [fn.input_storage[k].data for k in range(1, len(fn.maker.fgraph.inputs))]
    jit = fn.vm.jit_fn  # call the compiled function directly: no Python-side checks
    jit(*args)
    best = np.inf
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            jit(*args)
        best = min(best, (time.perf_counter() - start) / repeats)
    return best * 1e6


def censored_baseline(model: bs.HierarchicalWeibull, data) -> pm.Model:
    """The same model with ``pm.Censored(pm.Weibull)`` and a non-centred centre effect."""
    prep = model.prepare(data, learn=True)
    x = (prep.raw_x - model.design.mean) / model.design.scale
    t = prep.time / prep.t_ref
    upper = np.where(prep.event > 0, np.inf, t)
    with pm.Model() as baseline:
        intercept = pm.Normal("intercept_c", 0, 1.25)
        shape = pm.LogNormal("shape", 0, 0.35)
        beta = pm.Normal("beta", 0, 1, shape=x.shape[1])
        sd = pm.HalfNormal("center_sd", 0.5)
        z = pm.Normal("z", 0, 1, shape=len(prep.center_ids))
        eta = intercept + pt.as_tensor(x) @ beta + (sd * z)[prep.center_index]
        pm.Censored(
            "t",
            pm.Weibull.dist(alpha=shape, beta=pt.exp(-eta / shape)),
            lower=None,
            upper=upper,
            observed=t,
        )
    return baseline


def fit_once(endpoint: str, data, random_seed: int, **kw) -> dict:
    sampling.clear_cache()
    model = bs.HierarchicalWeibull(endpoint, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dt = model.fit(data, random_seed=random_seed, progressbar=False, log_likelihood=False)
    summary = azs.summary(dt, var_names=KEY)
    sampling_s = dt.attrs["sampling_seconds"]
    return {
        "compile": dt.attrs["compile_seconds"],
        "sampling": sampling_s,
        "total": dt.attrs["compile_seconds"] + sampling_s,
        "min_ess": float(summary["ess_bulk"].min()),
        "max_rhat": float(summary["r_hat"].max()),
        "ess_per_s": float(summary["ess_bulk"].min()) / sampling_s,
        "divergences": int(dt.sample_stats["diverging"].sum()),
    }


def med(values):
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--patients", type=int, default=9594)
    parser.add_argument("--endpoints", nargs="+", default=["LRFS", "RFS", "OS"])
    parser.add_argument("--scale", action="store_true", help="also the 100,000-patient check")
    args = parser.parse_args()

    df = bs.simulate_registry(args.patients, random_seed=2026)
    n = len(df)
    print(f"# {n} patients, {df.center_id.nunique()} centres, 4 chains x 1000 draws, 1000 tune\n")
    print(
        "| endpoint | compile s | sampling s | total s | min bulk ESS | ESS/s | max R-hat "
        "| grad us | ns/patient | pm.Censored grad us | speed-up |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for endpoint in args.endpoints:
        runs = [fit_once(endpoint, df, random_seed) for random_seed in range(1, args.runs + 1)]
        model = bs.HierarchicalWeibull(endpoint)
        ours = gradient_us(model.build_model(df))
        base = gradient_us(censored_baseline(model, df), repeats=200)
        m = {k: med([r[k] for r in runs]) for k in runs[0]}
        print(
            f"| {endpoint} | {m['compile']:.1f} "
            f"| {m['sampling']:.1f} | {m['total']:.1f} | {m['min_ess']:.0f} | {m['ess_per_s']:.0f} "
            f"| {max(r['max_rhat'] for r in runs):.3f} | {ours:.0f} | {ours * 1e3 / n:.1f} "
            f"| {base:.0f} | {base / ours:.1f}x |",
            flush=True,
        )
    print(
        f"\n(medians over {args.runs} runs; compile excludes the first-process numba warm-up "
        "only when the process already compiled a model)"
    )

    if args.scale:
        big = bs.simulate_registry(100_000, random_seed=2026)
        print(f"\n# scale: {len(big)} patients, {big.center_id.nunique()} centres, OS\n")
        print("| parameterization | total s | min bulk ESS | max R-hat | divergences |")
        print("|---|---|---|---|---|")
        for param in ("auto", "noncentered"):
            r = fit_once("OS", big, 1, parameterization=param)
            print(
                f"| {param} | {r['total']:.0f} | {r['min_ess']:.0f} | {r['max_rhat']:.3f} "
                f"| {r['divergences']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
