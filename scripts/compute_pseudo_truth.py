"""Precompute the pseudo-true LRFS and RFS parameters of the default simulation.

LRFS and RFS are not exactly Weibull PH in the simulator (their hazards are sums of
Weibull hazards), so their "true" intercept, shape and betas are the values the model
converges to on a very large registry: the maximum-likelihood Weibull PH fit on
1,000,000 simulated patients (same mechanism, censoring included), with each patient's
true centre effect as a known offset (exact, because the centre effect multiplies every
cause-specific hazard). See ``bayes_sarcoma.simulate.registry.compute_pseudo_truth``.

The result goes to ``bayes_sarcoma/data/pseudo_truth.json`` with the configuration it
belongs to and its hash; ``simulate_registry`` uses it when the configuration matches and
computes on demand otherwise. Rerun this script whenever the defaults change (a fast test
fails until you do).

Usage: .venv/bin/python scripts/compute_pseudo_truth.py [--n 1000000] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import time

from bayes_sarcoma.simulate import registry as simulate
from bayes_sarcoma.simulate import truth

N_PATIENTS = 1_000_000


def build(n_patients: int = N_PATIENTS, random_seed: int = simulate.PSEUDO_TRUTH_SEED) -> dict:
    cfg = simulate.make_config()
    part = simulate.pseudo_truth_config(cfg)
    endpoints = simulate.compute_pseudo_truth(cfg, n_patients, random_seed)
    return {
        "description": (
            "Pseudo-true Weibull PH parameters (months; per year of age, per cm) of LRFS "
            "and RFS under the default simulate_registry configuration: ML fit on a "
            "simulated registry of n_patients with the true centre effects as offsets. "
            "se = Monte Carlo standard error. Written by scripts/compute_pseudo_truth.py."
        ),
        "n_patients": n_patients,
        "random_seed": random_seed,
        "config_hash": truth.config_hash(part),
        "config": part,
        "endpoints": endpoints,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=N_PATIENTS)
    parser.add_argument("--out", default=str(truth.PSEUDO_TRUTH_PATH))
    args = parser.parse_args()
    start = time.perf_counter()
    result = build(args.n)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2, sort_keys=False)
        f.write("\n")
    print(f"wrote {args.out} in {time.perf_counter() - start:.1f} s")
    for endpoint, v in result["endpoints"].items():
        print(f"{endpoint}: intercept {v['intercept']:.4f}  shape {v['shape']:.4f}")
        for term, b in v["beta"].items():
            print(f"    {term:15s} {b: .4f}  (se {v['se'][term]:.4f})")


if __name__ == "__main__":
    main()
