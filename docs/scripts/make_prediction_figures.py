"""Make the figures of docs/predictions.md (and print the example tables).

Simulates one NETSARC-like registry, fits the OS model and the OS model with an
expert-by-margin interaction, and writes to docs/_static/:

- predictions_center_choices.png: one patient's survival with center="known" (several
  centres), "typical" and "new", and the marginal against the conditional hazard;
- predictions_standardized.png: standardized survival, expert vs other centres;
- predictions_hazard_ratios.png, predictions_expert_by_margin.png;
- predictions_centre_caterpillar.png, predictions_centre_funnel.png.

Run from the repository root: ``.venv/bin/python docs/scripts/make_prediction_figures.py``
(``--n-patients 3000 --draws 500`` for a quick run).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import bayes_sarcoma as bs
from bayes_sarcoma.predict import centers, effects, standardize
from bayes_sarcoma.predict import survival as predict

OUT = Path(__file__).resolve().parents[1] / "_static"


def center_choices_figure(dt, df):
    """One patient: known centres (grey), typical (dashed), new (solid, with band)."""
    post = dt.posterior
    patient = df[(df.grade == 3) & (df.depth == "deep") & (df.margin == "R1")].iloc[[0]]
    profile = centers.center_profile(dt)
    big = profile[profile.n_patients >= 20].sort_values("mean")
    shown = list(big.index[:3]) + list(big.index[-3:])
    t = np.linspace(0, 120, 121)
    at = patient.loc[patient.index.repeat(len(shown))].assign(
        center_id=shown, patient_id=[f"at {c}" for c in shown]
    )
    known = predict.predict_survival(dt, at, t, center="known").mean(("chain", "draw"))
    typical = predict.predict_survival(dt, patient, t, center="typical")
    new = predict.predict_survival(dt, patient, t, center="new")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for k in range(len(shown)):
        left.plot(
            t,
            known.isel(patient=k),
            color="0.6",
            linewidth=1,
            label='center="known" (6 large centres)' if k == 0 else None,
        )
    s = predict.summarize(new.isel(patient=0))
    left.plot(t, s["mean"], color="C0", linewidth=2, label='center="new" (94% interval)')
    left.fill_between(t, s["lower"], s["upper"], color="C0", alpha=0.2, linewidth=0)
    left.plot(
        t,
        typical.isel(patient=0).mean(("chain", "draw")),
        "--",
        color="C1",
        linewidth=2,
        label='center="typical" (u = 0)',
    )
    left.set_xlabel("months since surgery")
    left.set_ylabel("overall survival probability")
    left.set_ylim(0, 1.01)
    left.legend(fontsize=8, loc="lower left")
    left.set_title("One patient (grade 3, deep, R1), posterior mean curves", fontsize=10)
    # The marginal hazard falls below the conditional one as frail centres' patients die.
    sd = float(post["center_sd"].mean())
    times = np.linspace(1, 240, 120)
    h_new = predict.predict_hazard(dt, patient, times, center="new").mean(("chain", "draw"))
    h_typ = predict.predict_hazard(dt, patient, times, center="typical").mean(("chain", "draw"))
    right.plot(times, 12 * h_typ.isel(patient=0), "--", color="C1", label="typical centre")
    right.plot(times, 12 * h_new.isel(patient=0), color="C0", label="new centre (marginal)")
    right.set_xlabel("months since surgery")
    right.set_ylabel("hazard (deaths per person-year)")
    right.set_title(f"Hazard (posterior mean; centre sd {sd:.2f})", fontsize=10)
    right.legend(fontsize=8)
    return fig


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-patients", type=int, default=9594)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--random-seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    logging.getLogger("pymc").setLevel(logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    kw = dict(draws=args.draws, tune=args.draws, progressbar=False, random_seed=1)
    df = bs.simulate_registry(args.n_patients, random_seed=args.random_seed)
    model = bs.HierarchicalWeibull("OS")
    dt = model.fit(df, **kw)
    pd.set_option("display.width", 140)

    def save(fig, name):
        fig.savefig(args.out / name, dpi=110)
        plt.close(fig)
        print("wrote", args.out / name)

    save(center_choices_figure(dt, df), "predictions_center_choices.png")
    print("\nOS hazard ratios (94% intervals):")
    print(bs.hazard_ratios(dt).round(3).to_string())
    save(effects.plot_hazard_ratios(dt, title="OS hazard ratios"), "predictions_hazard_ratios.png")

    start = time.perf_counter()
    table_std = standardize.standardized_survival(dt, df, [12, 24, 60], horizon=60.0)
    seconds = time.perf_counter() - start
    n_draws = table_std.sizes["chain"] * table_std.sizes["draw"]
    print(f"\nStandardized OS, {len(df)} patients x {n_draws} draws x 3 times: {seconds:.1f} s")
    print(standardize.standardized_summary(table_std).round(3).to_string())
    print("truth:", df.attrs["truth"]["OS"]["standardized"])
    curves = standardize.standardized_survival(dt, df, np.linspace(0, 120, 61))
    save(
        standardize.plot_standardized(
            curves, title=f"Standardized overall survival of the {len(df)} patients"
        ),
        "predictions_standardized.png",
    )

    profile = centers.center_profile(dt)
    print("\nCentres most probably 20% above the network's hazard (95% intervals):")
    print(profile.sort_values("p_above", ascending=False).iloc[:5, :10].round(3).to_string())
    save(centers.plot_caterpillar(profile), "predictions_centre_caterpillar.png")
    save(centers.plot_funnel(profile), "predictions_centre_funnel.png")

    by_margin = bs.simulate_registry(
        args.n_patients,
        random_seed=args.random_seed,
        expert_effect_by_margin={"R1": 0.6, "Rx": -0.4},
    )
    margin_model = bs.HierarchicalWeibull("OS", effect_modifier="margin")
    dt_margin = margin_model.fit(by_margin, target_accept=0.95, **kw)
    print(
        "\nExpert OS hazard ratio by margin (truth:",
        {
            k: round(float(np.exp(v)), 3)
            for k, v in by_margin.attrs["truth"]["OS"]["beta_expert_by_margin"].items()
        },
        ")",
    )
    table = bs.effect_by_modifier(dt_margin)
    print(table.round(3).to_string(), table.attrs["interaction_sd"])
    save(effects.plot_effect_by_modifier(dt_margin), "predictions_expert_by_margin.png")


if __name__ == "__main__":
    main()
