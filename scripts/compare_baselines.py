"""Weibull against M-spline baselines on two simulated data sets: the numbers of docs/baselines.md.

Two clustered tables of 600 patients in 40 centres (``tests/flexible_hazards.py``, seed 1):
one with a rise-then-fall (log-logistic) baseline hazard, one with a Weibull one, both under
proportional hazards with a centre-level treatment. Each is fitted with
``baseline="weibull"`` and ``baseline="mspline"`` (2 chains x 500 draws after 500 tuning
steps); the script prints, per data set and model, the standardized survival of each arm at
12, 36, 60 and 96 months (posterior mean and 94% interval) against the exact truth, the KM
check's share of grid times inside the 94% band, and the PSIS-LOO comparison
(``compare_models``), and writes ``docs/_static/baselines_hazard.png``: the fitted baseline
hazards against the true one.

Usage: ``python scripts/compare_baselines.py`` (about 2 minutes on 2 cores).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from flexible_hazards import (  # noqa: E402
    INTERCEPT,
    SCALE,
    TIMES,
    K,
    loglogistic_table,
    true_standardized,
    weibull_h0,
    weibull_table,
)

import bayes_sarcoma as bs  # noqa: E402
from bayes_sarcoma.checks import compare, ppc  # noqa: E402
from bayes_sarcoma.predict.standardize import standardized_survival  # noqa: E402
from bayes_sarcoma.predict.survival import predict_hazard  # noqa: E402

FIT = dict(draws=500, tune=500, chains=2, random_seed=1, progressbar=False)


def fit(data, baseline):
    model = bs.HierarchicalWeibull(
        time="time",
        event="event",
        terms=["treated", "age"],
        cluster="center",
        treatment="treated",
        baseline=baseline,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(data, **FIT)


def report(name, data, truth, fits):
    print(f"\n## {name}: {len(data)} patients, {int(data.event.sum())} events\n")
    print("| model | arm | " + " | ".join(f"S({t:g})" for t in TIMES) + " | covered |")
    print("|---|---|" + "---|" * (len(TIMES) + 1))
    for base, dt in fits.items():
        s = standardized_survival(dt, data, list(TIMES))
        for arm in ("treated", "control"):
            q = s[arm].quantile([0.03, 0.5, 0.97], dim=("chain", "draw")).to_numpy()
            inside = (q[0] <= truth[arm]) & (truth[arm] <= q[2])
            cells = [f"{q[1, j]:.3f} ({q[0, j]:.3f}, {q[2, j]:.3f})" for j in range(len(TIMES))]
            print(f"| {base} | {arm} | " + " | ".join(cells) + f" | {inside.sum()} of 4 |")
    print("| truth | treated | " + " | ".join(f"{v:.3f}" for v in truth["treated"]) + " | |")
    print("| truth | control | " + " | ".join(f"{v:.3f}" for v in truth["control"]) + " | |")
    for base, dt in fits.items():
        check = ppc.km_check(dt, random_seed=1, ci_prob=0.94)
        inside = float(check.data["inside"].sel(stratum="all").mean())
        print(f"\nKM check, {base}: observed curve inside the 94% band at {inside:.0%} of times")
    table = compare.compare_models(fits).table
    print("\n" + table[["rank", "elpd", "elpd_diff", "dse"]].round(1).to_string())


def hazard_figure(data, fits, path):
    t = np.linspace(0.5, 130, 200)
    row = data.head(1).assign(treated=0.0, age=0.0)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    true_h = np.exp(INTERCEPT) * (K / SCALE) * (t / SCALE) ** (K - 1) / (1 + (t / SCALE) ** K)
    ax.plot(t, true_h, "k--", label="true (log-logistic)")
    for k, (base, dt) in enumerate(fits.items()):
        h = predict_hazard(dt, row, t, center="typical").isel(patient=0)
        q = h.quantile([0.03, 0.5, 0.97], dim=("chain", "draw")).to_numpy()
        ax.plot(t, q[1], color=f"C{k}", label=f"{base} (median, 94% band)")
        ax.fill_between(t, q[0], q[2], color=f"C{k}", alpha=0.2, lw=0)
    ax.set_xlabel("months")
    ax.set_ylabel("hazard, typical centre, control, age 0")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"\nwrote {path}")


def main():
    rise = loglogistic_table(600, n_centers=40, random_seed=1)
    fits = {base: fit(rise, base) for base in ("mspline", "weibull")}
    report("Rise-then-fall (log-logistic) hazard", rise, true_standardized(rise), fits)
    hazard_figure(rise, fits, ROOT / "docs" / "_static" / "baselines_hazard.png")
    mono = weibull_table(600, n_centers=40, random_seed=1)
    fits = {base: fit(mono, base) for base in ("mspline", "weibull")}
    report("Weibull hazard", mono, true_standardized(mono, h0=weibull_h0), fits)


if __name__ == "__main__":
    main()
