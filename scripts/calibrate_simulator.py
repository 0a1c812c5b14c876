"""Find the simulator's default intercepts and expert effects (bayes_sarcoma/simulate.py).

Unknowns: the intercepts of the three causes (local relapse, distant relapse, death) and
the expert-centre log hazard ratios of local and distant relapse (the OS one is fixed at
log 0.65 = -0.43). Targets: the published crude medians LRFS 60 vs 41 and RFS 25 vs 21
months (expert vs other) and a 5-year OS of 0.68.

The crude Kaplan-Meier curve of a group converges (censoring is independent of the event
times) to the group's marginal survival: the mean over its patients' covariates of
``E_u[exp(-exp(u) * sum_k H_k(t | x))]``, with ``u ~ Normal(0, center_sd)``, computed
exactly by Gauss-Hermite quadrature on a large sample of covariates. So the targets are
smooth functions of the unknowns and ``scipy.optimize.root`` solves them without Monte
Carlo noise. The script then checks the rounded values with real simulated registries
(crude KM medians over many seeds at n = 9594).

Usage: .venv/bin/python scripts/calibrate_simulator.py [--seeds 40]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import optimize

from bayes_sarcoma.data.schema import PUBLISHED
from bayes_sarcoma.simulate import registry as simulate
from bayes_sarcoma.simulate import truth
from bayes_sarcoma.simulate.calibration import km_median

N_PER_GROUP = 60_000
TARGET_OS_60 = 0.68


def group_survival(cfg, x, margin, endpoint, t):
    """Mean survival of an endpoint at scalar time t over the patients of x (a KM limit)."""
    eta = truth.linear_predictors(x, margin, cfg)
    idx = [truth.CAUSES.index(c) for c in truth.ENDPOINT_CAUSES[endpoint]]
    h = np.exp(np.log(t) * truth.shapes(cfg)[idx] + eta[:, idx]).sum(axis=1)
    return truth.marginal_survival(h, cfg["center_sd"], n_nodes=20).mean()


def medians(cfg, x, margin, expert, endpoints=("LRFS", "RFS")):
    """Large-sample crude medians by group, and the 5-year OS by group."""
    med, os60 = {}, {}
    for g, mask in (("expert", expert), ("other", ~expert)):
        sub = (x[mask], margin[mask])
        for e in endpoints:
            med[e, g] = optimize.brentq(
                lambda t, e=e, sub=sub: group_survival(cfg, *sub, e, t) - 0.5,
                0.01,
                5000.0,
                xtol=1e-4,
            )
        os60[g] = group_survival(cfg, *sub, "OS", 60.0)
    return med, os60


def with_params(base, p):
    cfg = simulate.make_config(
        causes={
            "local": {"intercept": p[0], "beta": {"expert_center": p[3]}},
            "distant": {"intercept": p[1], "beta": {"expert_center": p[4]}},
            "death": {"intercept": p[2]},
        }
    )
    return cfg


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=40)
    args = parser.parse_args()
    base = simulate.make_config()
    rng = np.random.default_rng(12345)
    expert = np.repeat([True, False], N_PER_GROUP)
    cov = simulate._draw_covariates(expert, base, rng)
    x = simulate.design_matrix(expert, cov)
    margin = cov["margin"]
    pub = PUBLISHED["median_months"]

    def residuals(p):
        med, os60 = medians(with_params(base, p), x, margin, expert)
        r = [np.log(med[e, g] / pub[e][g]) for e in ("LRFS", "RFS") for g in ("expert", "other")]
        # overall 5-year OS, weighting the groups by the expert share
        share = base["centers"]["expert_share"]
        os_all = share * os60["expert"] + (1 - share) * os60["other"]
        return [*r, np.log(os_all / TARGET_OS_60)]

    c = base["causes"]
    p0 = [
        c["local"]["intercept"],
        c["distant"]["intercept"],
        c["death"]["intercept"],
        c["local"]["beta"]["expert_center"],
        c["distant"]["beta"]["expert_center"],
    ]
    sol = optimize.root(residuals, p0, method="hybr")
    print("converged:", sol.success, sol.message)
    p = np.round(sol.x, 3)
    names = [
        "local intercept",
        "distant intercept",
        "death intercept",
        "local expert_center",
        "distant expert_center",
    ]
    for name, v in zip(names, p, strict=True):
        print(f"  {name:22s} {v: .3f}")
    cfg = with_params(base, p)
    med, os60 = medians(cfg, x, margin, expert, ("LRFS", "RFS", "OS"))
    print("large-sample crude medians:", {f"{e} {g}": round(v, 1) for (e, g), v in med.items()})
    print("5-year OS:", {g: round(float(v), 3) for g, v in os60.items()})

    # Check with real registries (the current defaults, or the solution if they differ).
    overrides = {
        "local": {"intercept": p[0], "beta": {"expert_center": p[3]}},
        "distant": {"intercept": p[1], "beta": {"expert_center": p[4]}},
        "death": {"intercept": p[2]},
    }
    rows = []
    for random_seed in range(args.seeds):
        df = simulate.simulate_registry(
            random_seed=random_seed, causes=overrides, pseudo_truth=False
        )
        row = []
        for e in ("LRFS", "RFS"):
            tcol, ecol = {
                "LRFS": ("lrfs_months", "lrfs_event"),
                "RFS": ("rfs_months", "rfs_event"),
            }[e]
            for g, flag in (("expert", True), ("other", False)):
                sub = df[df["expert_center"] == flag]
                row.append(km_median(sub[tcol], sub[ecol]) / pub[e][g] - 1)
        rows.append(row)
    rel = np.array(rows)
    print(f"\nrelative error of the crude KM medians over {args.seeds} seeds (n = 9594):")
    for j, label in enumerate(["LRFS expert", "LRFS other", "RFS expert", "RFS other"]):
        print(
            f"  {label:12s} mean {rel[:, j].mean():+.3f}  sd {rel[:, j].std():.3f}  "
            f"within 10%: {np.mean(np.abs(rel[:, j]) <= 0.10):.0%}"
        )
    print(f"  all four within 10%: {np.mean(np.all(np.abs(rel) <= 0.10, axis=1)):.0%}")


if __name__ == "__main__":
    main()
