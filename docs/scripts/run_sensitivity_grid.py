"""The NETSARC-size prior sensitivity study of docs/sensitivity.md, with its table and figures.

Run: ``.venv/bin/python docs/scripts/run_sensitivity_grid.py [--out docs/_static]``.
Prints the wall time, the number of compilations, per-cell sampling checks, the markdown
table of docs/sensitivity.md and ``res.statement()``; writes the comparison and prior
predictive figures. Takes minutes (18 fits of 4 x 1000 draws).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import bayes_sarcoma as bs
from bayes_sarcoma.study.sensitivity import prior_sensitivity

PRIOR_SETS = [
    "weakly_informative",
    "vague",
    "sceptical",
    "enthusiastic",
    "center_sd_tight",
    "center_sd_loose",
]
COLUMNS = {
    "hr_expert": ("HR expert", "{:.2f}", 1),
    "surv_diff_60m": ("60-month survival difference (points)", "{:.1f}", 100),
    "median_diff_months": ("median difference (months)", "{:.1f}", 1),
    "center_sd": ("centre SD", "{:.2f}", 1),
}


def markdown_table(res) -> str:
    """Posterior mean [interval] per endpoint, prior set and quantity, plus power-scaling."""
    table = res.table.set_index(["endpoint", "prior_set", "quantity"])
    flagged = res.power_scaling.query("prior_sensitive")
    lines = [
        "| endpoint | prior set | "
        + " | ".join(c[0] for c in COLUMNS.values())
        + " | prior-sensitive (power-scaling) |",
        "|---" * (len(COLUMNS) + 3) + "|",
    ]
    for (endpoint, prior_set), _ in table.groupby(level=[0, 1], sort=False):
        cells = []
        for quantity, (_, fmt, factor) in COLUMNS.items():
            r = table.loc[(endpoint, prior_set, quantity)]
            cells.append(
                f"{fmt.format(factor * r['mean'])} "
                f"[{fmt.format(factor * r['lower'])}, {fmt.format(factor * r['upper'])}]"
            )
        sensitive = flagged.query("endpoint == @endpoint and prior_set == @prior_set")
        names = ", ".join(dict.fromkeys(sensitive["quantity"])) or "-"
        lines.append(f"| {endpoint} | {prior_set} | " + " | ".join(cells) + f" | {names} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/_static"))
    parser.add_argument("--patients", type=int, default=9594)
    args = parser.parse_args()
    df = bs.simulate_registry(args.patients, random_seed=2026)
    res = prior_sensitivity(
        df, endpoints=["LRFS", "RFS", "OS"], prior_sets=PRIOR_SETS, random_seed=2026, progress=True
    )
    print(f"wall time {res.wall_seconds:.0f} s, {res.compilations} compilations")
    print(res.cells.to_string())
    print(markdown_table(res))
    print(res.statement())
    args.out.mkdir(parents=True, exist_ok=True)
    res.plot(path=args.out / "sensitivity_grid.png")
    res.plot_prior_predictive(path=args.out / "sensitivity_prior_predictive.png")


if __name__ == "__main__":
    main()
