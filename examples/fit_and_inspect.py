"""Fit the LRFS model from a script and inspect the posterior with ArviZ.

    python examples/fit_and_inspect.py                 # the 9594-patient registry, 4 x 1000 draws
    python examples/fit_and_inspect.py --quick         # a 1500-patient registry, tiny draws

Simulates a NETSARC-like registry, validates it, fits the hierarchical Weibull model to
local-relapse-free survival, then works with the result as any ArviZ user would: the
DataTree's groups, ``arviz_stats.summary``, PSIS-LOO, a forest plot of the hazard ratios
(saved as PNG), the package's diagnostics, and the fit saved to disk and loaded back.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import arviz_plots as azp
import arviz_stats as azs
import matplotlib

import bayes_sarcoma as bs
from bayes_sarcoma.inference.diagnose import diagnose
from bayes_sarcoma.model.io import load, save


def options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--patients", type=int, default=9594)
    p.add_argument("--draws", type=int, default=1000, help="draws per chain")
    p.add_argument("--quick", action="store_true", help="1500 patients, 2 x 100 draws")
    p.add_argument("--out", type=Path, default=Path("out/examples"))
    args = p.parse_args(argv)
    args.random_seed, args.tune, args.chains = 2026, 1000, 4
    if args.quick:  # the test suite's registry (random_seed 7) and tiny draws
        args.patients, args.random_seed, args.tune, args.chains = 1500, 7, 150, 2
        args.draws = min(args.draws, 100)
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def main(argv: Sequence[str] | None = None):
    args = options(argv)
    matplotlib.use("Agg")  # write PNG files; no window

    # 1. A registry with known truth, checked against the data contract.
    df = bs.simulate_registry(args.patients, random_seed=args.random_seed)
    bs.validate_registry(df)

    # 2. Fit: Weibull PH, random intercept per centre, the default terms and priors.
    model = bs.HierarchicalWeibull("LRFS")
    dt = model.fit(
        df,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        random_seed=1,
        progressbar=not args.quick,
    )
    print(dt)  # posterior, sample_stats, observed_data, constant_data, log_likelihood

    # 3. ArviZ reads it as it is: summaries, LOO, plots.
    summary = azs.summary(dt, var_names=["intercept", "shape", "hazard_ratio", "center_sd"])
    print(summary)
    print(azs.loo(dt))  # conditional on the centre effects; see bayes_sarcoma.checks.compare.loo
    pc = azp.plot_forest(dt, var_names=["hazard_ratio"], combined=True)
    pc.savefig(args.out / "lrfs_hazard_ratios.png")

    # 4. The package's own views: hazard ratios with P(HR < 1), sampler diagnostics.
    print(bs.hazard_ratios(dt).round(3))
    print(diagnose(dt))

    # 5. Save without pickle, load back, and check it is the same registry.
    path = save(dt, args.out / "lrfs.zarr", overwrite=True)
    loaded = load(path, data=df)
    truth = df.attrs["truth"]["LRFS"]["beta"]["expert_center"]
    hr = loaded.posterior["hazard_ratio"].sel(term="expert_center")
    print(f"expert-centre HR {float(hr.median()):.2f}, true {math.exp(truth):.2f}; saved {path}")
    return model, dt


if __name__ == "__main__":
    main()
