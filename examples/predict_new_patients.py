"""Predict survival for new patients, at a centre of the fit and at a new centre.

    python examples/predict_new_patients.py                   # fits OS (9594 patients)
    python examples/predict_new_patients.py --fit out/demo/os.zarr   # reuses a saved fit
    python examples/predict_new_patients.py --quick           # small registry, tiny draws

Two patient profiles, each operated (a) at a known expert centre of the registry, (b) at
a known non-expert hospital, and (c) at a centre the model has never seen, expert or not.
At a known centre the prediction uses that centre's own posterior effect; at a new centre
it integrates over the distribution of centres (``center="new"``). The
script prints survival at 1, 2 and 5 years and the median event-free time, with 94%
intervals, and saves the survival curves with their bands as PNG.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

import bayes_sarcoma as bs
from bayes_sarcoma.model.io import load
from bayes_sarcoma.predict.survival import summarize

TIMES = np.linspace(0, 120, 61)  # months
PROFILES = pd.DataFrame(
    {
        "profile": ["high risk", "low risk"],
        "age": [68.0, 45.0],
        "sex": ["male", "female"],
        "tumor_size_cm": [12.0, 4.0],
        "grade": [3, 1],
        "depth": ["deep", "superficial"],
        "margin": ["R1", "R0"],
    }
)


def options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fit", type=Path, help="a saved OS fit (.zarr/.nc) instead of fitting")
    p.add_argument("--patients", type=int, default=9594)
    p.add_argument("--draws", type=int, default=1000, help="draws per chain")
    p.add_argument("--quick", action="store_true", help="1500 patients, 2 x 100 draws")
    p.add_argument("--out", type=Path, default=Path("out/examples"))
    args = p.parse_args(argv)
    args.random_seed, args.tune, args.chains = 2026, 1000, 4
    if args.quick:
        args.patients, args.random_seed, args.tune, args.chains = 1500, 7, 150, 2
        args.draws = min(args.draws, 100)
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def new_patients(dt) -> pd.DataFrame:
    """Every profile at a known expert centre, a known hospital, and new centres."""
    const = dt["constant_data"]
    expert_column = list(const["term"].values).index("expert_center")
    by_centre = pd.DataFrame(
        {"center": const["center"].values, "expert": const["x"].values[:, expert_column]}
    ).groupby("center")
    size, expert = by_centre.size(), by_centre["expert"].first().astype(bool)
    known_expert = size[expert].idxmax()  # the largest expert centre
    known_other = size[~expert].idxmax()  # the largest non-expert hospital
    settings = [
        ("known expert centre", known_expert, True, "known"),
        ("known hospital", known_other, False, "known"),
        ("new expert centre", "NEW-E", True, "new"),
        ("new hospital", "NEW-H", False, "new"),
    ]
    rows = [
        PROFILES.assign(setting=s, center_id=c, expert_center=e, center=how)
        for s, c, e, how in settings
    ]
    out = pd.concat(rows, ignore_index=True)
    out["patient_id"] = out["profile"] + " @ " + out["setting"]
    return out


def predict(model, dt, patients: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Survival curves and medians, each patient with its own centre choice."""
    tables, curves = [], {}
    for how, group in patients.groupby("center", sort=False):
        surv = bs.predict_survival(dt, group, TIMES, center=how)
        curves.update({pid: surv.sel(patient=pid) for pid in group["patient_id"]})
        at = summarize(surv.sel(time=[12.0, 24.0, 60.0]))
        at = at.pivot(index="patient", columns="time", values=["median", "lower", "upper"])
        med = summarize(bs.predict_median(dt, group, center=how)).set_index("patient")
        table = pd.DataFrame(
            {
                f"S({t:g})": [
                    f"{at[('median', t)][p]:.2f} ({at[('lower', t)][p]:.2f}-"
                    f"{at[('upper', t)][p]:.2f})"
                    for p in at.index
                ]
                for t in (12.0, 24.0, 60.0)
            },
            index=at.index,
        )
        table["median months"] = [
            f"{med['median'][p]:.0f} ({med['lower'][p]:.0f}-{med['upper'][p]:.0f})"
            for p in table.index
        ]
        tables.append(table)
    return pd.concat(tables).loc[patients["patient_id"]], curves


def plot(curves: dict, path: Path):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, profile in zip(axes, PROFILES["profile"], strict=True):
        for i, (pid, s) in enumerate((k, v) for k, v in curves.items() if k.startswith(profile)):
            lo, med, hi = s.quantile([0.03, 0.5, 0.97], dim=("chain", "draw")).values
            ax.fill_between(TIMES, lo, hi, color=f"C{i}", alpha=0.15, linewidth=0)
            ax.plot(TIMES, med, color=f"C{i}", label=pid.split(" @ ")[1])
        ax.set(
            title=f"{profile} patient",
            xlabel="months since surgery",
            ylim=(0, 1.01),
        )
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("overall survival probability S(t)")
    axes[1].legend(title="operated at (median, 94% band)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return fig


def main(argv: Sequence[str] | None = None):
    args = options(argv)
    matplotlib.use("Agg")
    if args.fit:
        dt = load(args.fit)
        model = bs.HierarchicalWeibull.from_datatree(dt)
    else:
        df = bs.simulate_registry(args.patients, random_seed=args.random_seed)
        model = bs.HierarchicalWeibull("OS")
        dt = model.fit(
            df,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            random_seed=1,
            progressbar=not args.quick,
        )
    patients = new_patients(dt)
    table, curves = predict(model, dt, patients)
    print(table.to_string())
    plot(curves, args.out / "new_patients_survival.png")
    print(f"saved {args.out / 'new_patients_survival.png'}")
    return table, curves


if __name__ == "__main__":
    main()
