"""Benchmark: the multi-state fit beside three separate fits (LRFS, RFS, OS), same registry.

A registry drawn by ``bs.simulate_histories`` (correlated centre effects per transition) is
fitted once by ``bs.MultiStateModel`` and three times by ``bs.HierarchicalWeibull`` (one
per endpoint derived from the same dates). Prints, per fit and run: wall seconds (compile
and sampling included), the smallest bulk ESS over the key parameters, and, for the joint
fit, each transition's expert log hazard ratio and the centre correlations beside the truth.

Run: ``.venv/bin/python tests/benchmarks/multistate_fit.py [--patients 9594]
[--centers 500] [--runs 2]``. Not collected by pytest; timings belong here.
"""

from __future__ import annotations

import argparse
import time
import warnings

import arviz_stats as azs
import numpy as np

import bayes_sarcoma as bs
from bayes_sarcoma.math.multistate import TRANSITIONS

TERMS = ["expert_center", "age"]


def min_ess(dt, names) -> float:
    """Smallest bulk ESS over the variables ``names`` of ``dt``'s posterior."""
    post = dt.posterior.to_dataset()[list(names)]
    ess = azs.ess(post, method="bulk")
    return float(min(ess[v].min() for v in names))


def joint(df, seed: int):
    start = time.perf_counter()
    dt = bs.MultiStateModel(terms=TERMS).fit(df, random_seed=seed, progressbar=False)
    seconds = time.perf_counter() - start
    return dt, seconds, min_ess(dt, ["intercept", "shape", "beta", "center_sd", "center_corr"])


def separate(df, seed: int) -> list[tuple[str, float, float]]:
    ends = bs.derive_endpoints(df)
    out = []
    for endpoint in ("LRFS", "RFS", "OS"):
        time_col, event_col = f"{endpoint.lower()}_months", f"{endpoint.lower()}_event"
        model = bs.HierarchicalWeibull(
            time=time_col, event=event_col, cluster="center_id", terms=TERMS
        )
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dt = model.fit(ends, random_seed=seed, progressbar=False)
        seconds = time.perf_counter() - start
        out.append((endpoint, seconds, min_ess(dt, ["intercept", "shape", "beta", "center_sd"])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=9594)
    parser.add_argument("--centers", type=int, default=500)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    df = bs.simulate_histories(args.patients, args.centers, random_seed=20260101)
    truth = df.attrs["truth"]
    for run in range(args.runs):
        dt, seconds, ess = joint(df, seed=run + 1)
        print(f"run {run + 1}: joint multi-state fit {seconds:7.1f} s, min bulk ESS {ess:6.0f}")
        rows = separate(df, seed=run + 1)
        for endpoint, sec, e in rows:
            print(
                f"run {run + 1}: separate {endpoint:4s} fit    {sec:7.1f} s, min bulk ESS {e:6.0f}"
            )
        total = sum(r[1] for r in rows)
        print(
            f"run {run + 1}: three separate fits {total:7.1f} s; joint / separate = "
            f"{seconds / total:.2f}"
        )
    beta = dt.posterior["beta"].sel(term="expert_center")
    print("\nexpert log HR per transition (joint fit, last run): mean [94% interval] vs truth")
    for k in TRANSITIONS:
        draws = beta.sel(transition=k).to_numpy().ravel()
        lo, hi = np.quantile(draws, [0.03, 0.97])
        print(
            f"  {k:20s} {draws.mean():6.3f} [{lo:6.3f}, {hi:6.3f}]  truth "
            f"{truth['beta']['expert_center'][k]:6.3f}"
        )
    corr = dt.posterior["center_corr"]
    true_corr = np.asarray(truth["center_corr"])
    print("centre correlations (joint fit, last run): mean [94% interval] vs truth")
    for i, j in zip(*np.triu_indices(len(TRANSITIONS), 1), strict=True):
        draws = corr.isel(transition=i, transition_b=j).to_numpy().ravel()
        lo, hi = np.quantile(draws, [0.03, 0.97])
        print(
            f"  {TRANSITIONS[i]:20s} {TRANSITIONS[j]:20s} {draws.mean():5.2f} "
            f"[{lo:5.2f}, {hi:5.2f}]  truth {true_corr[i, j]:.2f}"
        )


if __name__ == "__main__":
    main()
