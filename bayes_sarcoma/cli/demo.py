"""``bayes-sarcoma demo``: the NETSARC replication end to end, and its headline table.

Simulate a NETSARC-size registry, fit LRFS, RFS and OS and the expert-by-margin
interaction on LRFS, save the fits and the registry, write the HTML report, and print
the headline table (:func:`headline_table`): crude medians against the published ones,
adjusted hazard ratios, standardized contrasts, the effect by margin and the sampling
diagnostics. ``make demo`` runs it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayes_sarcoma.cli.console import CI_PROB, EXIT_OK, Console
from bayes_sarcoma.cli.files import fit_and_save, write_registry
from bayes_sarcoma.data import schema

if TYPE_CHECKING:
    import xarray as xr

#: What the demo fits: the three endpoints, and LRFS with the expert-by-margin interaction.
DEMO_FITS = (("LRFS", None), ("RFS", None), ("OS", None), ("LRFS", "margin"))
DEMO_TIMES = (12.0, 24.0, 60.0)
QUICK = {"patients": 2000, "draws": 300, "tune": 300, "chains": 2}
#: Draws and tuning steps per chain of the demo's fits: 4 x 500 draws give a bulk ESS above
#: 2,000 for the key quantities of the three endpoint fits (seed 2026), and keep the demo
#: within its time budget on two cores (docs/performance.md).
DEMO_DRAWS, DEMO_TUNE = 500, 300
#: The interaction model's settings: 4 divergences at target_accept 0.8 on the NETSARC
#: registry, and its interaction SD mixes slowly (ESS about 0.25 per draw), so it runs 40%
#: more draws and a third more tuning than the others (700 and 400 by default: ESS 676,
#: R-hat 1.004 for seed 2026, where 500 and 500 gave R-hat 1.011).
MODIFIER_TARGET_ACCEPT, MODIFIER_DRAWS_FACTOR, MODIFIER_TUNE_FACTOR = 0.95, 1.4, 4 / 3


def cmd_demo(args: argparse.Namespace, console: Console) -> int:
    """Run the NETSARC replication end to end and print the headline table."""
    import bayes_sarcoma as bs

    start, cpu_start = time.perf_counter(), time.process_time()
    settings = argparse.Namespace(**vars(args))
    if args.quick:
        for key, value in QUICK.items():
            setattr(settings, key, min(getattr(args, key), value))
    settings.overwrite = True  # the demo owns its output folder
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.no_report:  # the report's worker imports while the fits run
        from bayes_sarcoma.report import workers

        workers.prestart()
    with console.step(
        f"[1/4] simulating {settings.patients} patients (seed {settings.random_seed})"
    ):
        df = bs.simulate_registry(settings.patients, random_seed=settings.random_seed)
        bs.validate_registry(df)
        write_registry(df, out / "registry.csv")
    fits = {}
    for i, (endpoint, modifier) in enumerate(DEMO_FITS, start=1):
        model = bs.HierarchicalWeibull(endpoint, effect_modifier=modifier)
        name = endpoint.lower() + (f"_{modifier}" if modifier else "")
        path = out / f"{name}.zarr"
        label = f"[2/4] fit {i} of {len(DEMO_FITS)}, "
        fit_settings = argparse.Namespace(**vars(settings))
        if modifier:  # see MODIFIER_TARGET_ACCEPT
            fit_settings.target_accept = max(settings.target_accept, MODIFIER_TARGET_ACCEPT)
            fit_settings.draws = round(settings.draws * MODIFIER_DRAWS_FACTOR)
            fit_settings.tune = round(settings.tune * MODIFIER_TUNE_FACTOR)
        fits[name] = (model, fit_and_save(model, df, fit_settings, console, path, label=label))
    with console.step("[3/4] standardized survival and diagnostics"):
        headline = headline_table(df, fits, settings)
    report = None
    if not args.no_report:
        with console.step("[4/4] HTML report"):
            report = write_report(df, fits, out, settings)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    files = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    text = "\n".join(
        [
            *headline,
            "",
            f"Files in {out}/: {', '.join(files)}" + ("" if report else " (no report)"),
            f"Demo finished in {seconds:.0f} s (CPU time {cpu:.0f} s).",
        ]
    )
    (out / "headline.txt").write_text(text + "\n")
    console.print(text)
    return EXIT_OK


def write_report(
    df: pd.DataFrame,
    fits: dict,
    out: Path,
    settings: argparse.Namespace,
    *,
    cores: int | None = None,
):
    """Write the HTML report of the demo's fits (not refitted); return the ``Report``.

    The report module fits what it is not given; here it gets all four fits (the LRFS
    margin fit as the ``"expert x margin"`` candidate, so LRFS also gets the effect by
    margin and a two-model comparison) and fits nothing more (candidates
    ``("weibull",)``), which keeps the demo within its time budget.
    """
    from bayes_sarcoma.report.analysis import MAIN, MARGIN_MODEL, analysis_report

    given: dict[str, dict] = {}
    for name, fit in fits.items():
        endpoint, _, modifier = name.partition("_")
        given.setdefault(endpoint.upper(), {})[MARGIN_MODEL if modifier else MAIN] = fit
    report = analysis_report(
        df,
        out / "report.html",
        endpoints=list(given),
        fits=given,
        candidates=(MAIN,),
        draws=settings.draws,
        tune=settings.tune,
        chains=settings.chains,
        random_seed=settings.random_seed,
        ci_prob=CI_PROB,
        cores=cores,
    )
    return report


def _p_value(p: float) -> str:
    return "-" if not np.isfinite(p) else (f"{p:.3f}" if p >= 1e-3 else f"{p:.1e}")


def headline_table(df: pd.DataFrame, fits: dict, settings: argparse.Namespace) -> list[str]:
    """Return the demo's headline: calibration, HRs, standardized contrasts, margin, diagnostics."""
    truth = df.attrs["truth"]
    main = {name: dt for name, (_, dt) in fits.items() if "_" not in name}
    hr_rows = [_hazard_ratio_row(name, dt, truth) for name, dt in main.items()]
    std_rows = [_standardized_row(name, dt, df, truth) for name, dt in main.items()]
    lines = [
        *_overview(df, settings),
        "",
        "1. Crude median survival, months (Kaplan-Meier): published NETSARC vs simulated",
        _calibration(df),
        "",
        "2. Adjusted expert-centre hazard ratio (Weibull PH, random centre intercept; "
        "posterior median and interval)",
        pd.DataFrame(hr_rows).set_index("endpoint").to_string(),
        "",
        "3. Standardized contrasts, expert minus other centres: every registry patient at an "
        "expert centre vs none, a new centre's effect integrated out (all posterior draws)",
        pd.DataFrame(std_rows).set_index("endpoint").T.to_string(),
    ]
    margin = [dt for name, (_, dt) in fits.items() if name.endswith("_margin")]
    if margin:
        lines += ["", *_margin_section(margin[0], settings)]
    diag_rows = [_diagnostics_row(name, dt) for name, (_, dt) in fits.items()]
    lines += [
        "",
        "5. Sampling diagnostics (R-hat < 1.01 and ESS >= 400 for the key quantities)",
        pd.DataFrame(diag_rows)
        .set_index("fit")
        .to_string(float_format=lambda v: f"{v:.3f}" if v < 10 else f"{v:.0f}"),
    ]
    return lines


def _overview(df: pd.DataFrame, settings: argparse.Namespace) -> list[str]:
    """Return the headline's first line: the registry, the sampler and the intervals."""
    expert = df[schema.EXPERT].astype(bool)
    return [
        f"NETSARC-style replication: {len(df)} simulated patients, "
        f"{df[schema.CENTER_ID].nunique()} centres "
        f"({df.loc[expert, schema.CENTER_ID].nunique()} expert, {expert.mean():.0%} of patients);"
        f" {settings.chains} chains x {settings.draws} draws per endpoint fit (the margin"
        f" model: section 4); intervals are {CI_PROB:.0%}.",
    ]


def _calibration(df: pd.DataFrame) -> str:
    """Return the table of crude medians and log-rank p, published vs simulated."""
    import bayes_sarcoma as bs

    cal = bs.calibration_table(df, published=True).set_index("quantity")
    rows = []
    for endpoint in ("LRFS", "RFS", "OS"):
        r = cal.loc[f"{endpoint} median (KM)"]
        rows.append(
            {
                "endpoint": endpoint,
                "published expert": r["published_expert"],
                "simulated expert": r["expert"],
                "published other": r["published_other"],
                "simulated other": r["other"],
                "log-rank p": _p_value(cal.loc[f"{endpoint} log-rank p", "overall"]),
            }
        )
    return (
        pd.DataFrame(rows)
        .set_index("endpoint")
        .to_string(float_format=lambda v: f"{v:.1f}", na_rep="-")
    )


def _hazard_ratio_row(name: str, dt: xr.DataTree, truth: dict) -> dict:
    """Return a main fit's row of the hazard-ratio table, beside the true HR.

    The cells are the HTML report's (:func:`bayes_sarcoma.report.headline.hazard_ratio_cells`):
    the same computation, the same digits.
    """
    from bayes_sarcoma.report.headline import hazard_ratio_cells

    endpoint = name.split("_")[0].upper()
    t = truth[endpoint]
    return {
        "endpoint": endpoint,
        **hazard_ratio_cells(dt, ci_prob=CI_PROB),
        "true HR": f"{np.exp(t['beta'][schema.EXPERT]):.2f}"
        + ("" if t["exact"] else " (pseudo-true)"),
    }


def _standardized_row(name: str, dt: xr.DataTree, df: pd.DataFrame, truth: dict) -> dict:
    """Return a main fit's standardized contrasts (S(60), median, RMST), beside the truth.

    All posterior draws, and the HTML report's cells
    (:func:`bayes_sarcoma.report.headline.contrast_cells`), so both agree to the last digit.
    """
    from bayes_sarcoma.predict.standardize import standardized_summary, standardized_survival
    from bayes_sarcoma.report.headline import contrast_cells

    endpoint = name.split("_")[0].upper()
    landmark = max(DEMO_TIMES)
    std = standardized_survival(dt, df, DEMO_TIMES, horizon=landmark)
    cells = contrast_cells(
        standardized_summary(std, ci_prob=CI_PROB),
        landmark=landmark,
        horizon=landmark,
        ci_prob=CI_PROB,
    )
    s = truth[endpoint]["standardized"]
    true_diff = s["expert"][landmark] - s["other"][landmark]
    shown = {k: v for k, v in cells.items() if k.startswith("difference")}
    return {
        "endpoint": endpoint,
        **shown,
        f"true difference at {landmark:g} months": f"{100 * true_diff:.1f} pp",
    }


def _margin_section(dt: xr.DataTree, settings: argparse.Namespace) -> list[str]:
    """Return section 4: the expert-centre effect by resection margin."""
    from bayes_sarcoma.predict.effects import effect_by_modifier

    by = effect_by_modifier(dt, ci_prob=CI_PROB)
    table = pd.DataFrame(
        {
            "patients": by["n_patients"].astype("Int64"),
            "HR expert": by["median"].map("{:.2f}".format),
            f"{CI_PROB:.0%} interval": [
                f"{lo:.2f} to {hi:.2f}" for lo, hi in zip(by.lower, by.upper, strict=True)
            ],
            "P(HR<1)": by["prob_lt_1"].map("{:.3f}".format),
        },
        index=by.index,
    )
    post = dt["posterior"]
    return [
        "4. LRFS: expert-centre effect by resection margin (partially pooled interaction;"
        " 'common' is the centre of the levels; sampled with target_accept "
        f"{dt.attrs.get('target_accept', '?')}, {post.sizes['chain']} chains x "
        f"{post.sizes['draw']} draws)",
        table.to_string(),
    ]


def _diagnostics_row(name: str, dt: xr.DataTree) -> dict:
    """Return a fit's row of the sampling-diagnostics table."""
    from bayes_sarcoma.inference.diagnose import fit_diagnosis

    diag = fit_diagnosis(dt)
    return {
        "fit": name,
        "ok": "yes" if diag.ok else "NO",
        "divergences": int(diag.chains["divergences"].sum()) if "divergences" in diag.chains else 0,
        "max R-hat": diag.table["r_hat"].max(),
        "min ESS bulk": diag.table["ess_bulk"].min(),
        "min ESS tail": diag.table["ess_tail"].min(),
    }
