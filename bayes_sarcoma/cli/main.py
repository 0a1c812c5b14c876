"""The ``bayes-sarcoma`` command line: simulate, validate, fit, summarise, predict, compare.

Every sub-command is a thin layer over the Python API (``bayes-sarcoma fit`` is
:meth:`HierarchicalWeibull.fit <bayes_sarcoma.HierarchicalWeibull.fit>` then
:func:`bayes_sarcoma.model.io.save`), so what a user does here they can do from a script. Tables
are read with :func:`bayes_sarcoma.data.files.read_table` (CSV/TSV, Excel, Parquet, SAS,
Stata; ``--date-format`` and ``--encoding`` when the guess is not enough); fits are written
and read with :mod:`bayes_sarcoma.model.io`. ``bayes-sarcoma demo`` runs the NETSARC replication
end to end
(simulate, fit LRFS/RFS/OS and the expert-by-margin interaction, save the fits, write the
report) and prints the headline table.

This module parses the arguments and holds the small commands; the demo is in
:mod:`bayes_sarcoma.cli.demo`, the files the commands write in :mod:`bayes_sarcoma.cli.files`,
the prediction table in :mod:`bayes_sarcoma.cli.predictions`, the console and exit codes in
:mod:`bayes_sarcoma.cli.console` (their names are importable from here too).

Exit codes: 0 success; 1 a problem with the input (a registry that breaks the data
contract, a bad prior or spec file, a file that is not a fit, a data mismatch), shown as
one line ``bayes-sarcoma <command>: error: ...`` (``--traceback`` shows the traceback);
2 a usage error (unknown option, missing argument); 3 an internal error (a bug: please
report it with the ``--traceback`` output); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_sarcoma._version import __version__
from bayes_sarcoma.cli.console import (
    CI_PROB,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USER,
    PROG,
    CommandError,
    Console,
)
from bayes_sarcoma.cli.console import EXIT_USAGE as EXIT_USAGE
from bayes_sarcoma.cli.demo import DEMO_DRAWS, DEMO_TUNE, cmd_demo
from bayes_sarcoma.cli.demo import DEMO_FITS as DEMO_FITS
from bayes_sarcoma.cli.demo import DEMO_TIMES as DEMO_TIMES
from bayes_sarcoma.cli.demo import MODIFIER_TARGET_ACCEPT as MODIFIER_TARGET_ACCEPT
from bayes_sarcoma.cli.demo import QUICK as QUICK
from bayes_sarcoma.cli.demo import headline_table as headline_table
from bayes_sarcoma.cli.demo import write_report as write_report
from bayes_sarcoma.cli.files import TABLE_SUFFIXES as TABLE_SUFFIXES
from bayes_sarcoma.cli.files import fit_and_save, write_registry, write_table
from bayes_sarcoma.data import schema
from bayes_sarcoma.data.errors import DataWarning
from bayes_sarcoma.data.files import read_table
from bayes_sarcoma.data.plausibility import plausibility_problems
from bayes_sarcoma.model.baselines import BASELINES, DEGREES

EXAMPLES = """\
examples:
  bayes-sarcoma demo                                  # the NETSARC replication, end to end
  bayes-sarcoma simulate --patients 9594 --random-seed 2026 -o registry.csv
  bayes-sarcoma validate registry.csv --calibration
  bayes-sarcoma validate export.csv --date-format %d/%m/%Y
  bayes-sarcoma validate mytable.xlsx --time fu_months --event died --cluster hospital
  bayes-sarcoma fit registry.csv --endpoint LRFS -o lrfs.zarr
  bayes-sarcoma fit registry.csv --endpoint OS --priors sceptical --draws 2000 -o os.zarr
  bayes-sarcoma fit mytable.csv --time fu_months --event died --cluster hospital \\
      --terms arm,age,stage -o mine.zarr
  bayes-sarcoma summary lrfs.zarr
  bayes-sarcoma predict lrfs.zarr new_patients.csv --times 12,24,60 --center new
  bayes-sarcoma sensitivity registry.csv --endpoints LRFS,OS \\
      --prior-sets weakly_informative,sceptical,vague -o sensitivity.csv
  bayes-sarcoma report registry.csv --fits lrfs.zarr,os.zarr -o report.html

exit codes: 0 ok, 1 bad input (the message says what and where), 2 usage,
3 internal error (rerun with --traceback and report it), 130 interrupted.
"""


# -- console ---------------------------------------------------------------------------------
def _show_warning(console: Console) -> Callable:
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{PROG}: warning: {message}", file=console.err, flush=True)

    return show


# -- options ---------------------------------------------------------------------------------
def _csv_list(text: str | None, convert: Callable = str) -> list | None:
    if text is None:
        return None
    try:
        return [convert(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError:
        raise CommandError(f"cannot read {text!r} as a comma-separated list") from None


# -- tables ----------------------------------------------------------------------------------
def _read(args: argparse.Namespace, path: str | Path) -> pd.DataFrame:
    """Read a table with the command's --date-format and --encoding."""
    return read_table(path, date_format=args.date_format, encoding=args.encoding)


def _warn_implausible(df: pd.DataFrame, path: str | Path, id_column: str | None) -> int:
    """Warn (without failing) about implausible values; return how many problems."""
    found = plausibility_problems(df, id_column=id_column)
    for problem in found:
        warnings.warn(f"{path}: {problem}", DataWarning, stacklevel=2)
    return len(found)


# -- simulate and validate -------------------------------------------------------------------
def cmd_simulate(args: argparse.Namespace, console: Console) -> int:
    """Simulate a NETSARC-like registry; write it and its truth."""
    import bayes_sarcoma as bs

    with console.step(f"simulating {args.patients} patients"):
        df = bs.simulate_registry(args.patients, random_seed=args.random_seed)
    out, truth_path = write_registry(df, args.out)
    console.print(
        f"wrote {out}: {len(df)} patients, {df[schema.CENTER_ID].nunique()} centres "
        f"({df.loc[df[schema.EXPERT], schema.CENTER_ID].nunique()} expert); "
        f"the true parameters are in {truth_path}"
    )
    return EXIT_OK


def _describe_registry(df: pd.DataFrame) -> str:
    expert = df[schema.EXPERT].astype(bool)
    dates = df[schema.SURGERY_DATE]
    return (
        f"{len(df)} patients, {df[schema.CENTER_ID].nunique()} centres "
        f"({df.loc[expert, schema.CENTER_ID].nunique()} expert, {expert.mean():.0%} of "
        f"patients), surgery {dates.min():%Y-%m-%d} to {dates.max():%Y-%m-%d}"
    )


def cmd_validate(args: argparse.Namespace, console: Console) -> int:
    """Check a registry against the data contract, or any table with the checks of ``fit``."""
    import bayes_sarcoma as bs

    df = _read(args, args.data)
    own = [args.time, args.event, args.cluster, args.terms, args.entry, args.categorical]
    if any(v is not None for v in own):
        return _validate_table(args, console, df)
    if args.id_column:
        raise CommandError("--id-column goes with --time and --event (your own table)")
    lacking = [c for c in schema.REQUIRED_COLUMNS if c not in df.columns]
    if len(lacking) > len(schema.REQUIRED_COLUMNS) / 2:
        shown = ", ".join(map(str, df.columns[:8])) + (", ..." if df.shape[1] > 8 else "")
        raise CommandError(
            f"{args.data} is not a registry: it lacks {len(lacking)} of the "
            f"{len(schema.REQUIRED_COLUMNS)} registry columns ({', '.join(lacking[:4])}, ...). "
            f"For a table of your own (columns {shown}), say which columns fit would read: "
            "--time <column> --event <column> [--cluster <column>] [--terms a,b]"
        )
    bs.validate_registry(df)
    n_warned = _warn_implausible(df, args.data, schema.PATIENT_ID)
    console.print(f"ok: {args.data}: {_describe_registry(df)}" + _warned(n_warned))
    if args.calibration:
        console.print("", bs.format_calibration(df))
    return EXIT_OK


def _warned(n: int) -> str:
    return f" ({n} warning{'s' if n > 1 else ''}: values to check)" if n else ""


def _validate_table(args: argparse.Namespace, console: Console, df: pd.DataFrame) -> int:
    """Check a table of one's own as ``fit --time --event ...`` would, without sampling."""
    from bayes_sarcoma.model.hierarchical import HierarchicalWeibull

    if not (args.time and args.event):
        raise CommandError(
            "give both --time and --event to check your own table (and --cluster, --terms as "
            "for fit); without them the table is checked as a registry"
        )
    if args.calibration:
        raise CommandError("--calibration compares a registry with NETSARC: not for --time")
    options: dict[str, Any] = {
        "time": args.time,
        "event": args.event,
        "cluster": None if args.cluster in (None, "none") else args.cluster,
        "terms": _csv_list(args.terms) or [],
        "categorical": _csv_list(args.categorical),
        "entry": args.entry,
        "center_level": _csv_list(args.center_level),
        "time_unit": args.time_unit,
    }
    if args.id_column:
        options["id_column"] = args.id_column
    model = HierarchicalWeibull.from_dict({k: v for k, v in options.items() if v is not None})
    prepared = model.prepare(df, learn=True)  # the checks of fit (raises listing the problems)
    id_col = model.columns(df).id_column
    n_warned = _warn_implausible(df, args.data, id_col)
    t = prepared.time
    parts = [
        f"{len(df)} rows, {int(prepared.event.sum())} events ({args.event}), "
        f"{args.time} from {t.min():.4g} to {t.max():.4g}",
    ]
    if model.cluster:
        parts.append(f"{len(prepared.center_ids)} clusters ({model.cluster})")
    if model.terms:
        parts.append(f"terms {', '.join(model.design.labels)}")
    console.print(f"ok: {args.data}: {'; '.join(parts)}" + _warned(n_warned))
    return EXIT_OK


# -- fit -------------------------------------------------------------------------------------
def build_model(args: argparse.Namespace):
    """Return the :class:`~bayes_sarcoma.HierarchicalWeibull` the ``fit`` options describe.

    A model spec (``--spec``) gives the starting options; each option given on the command
    line overrides it; a prior set (``--priors``) replaces the spec's priors.
    """
    from bayes_sarcoma.model.hierarchical import HierarchicalWeibull
    from bayes_sarcoma.model.specs import load_model_spec, load_prior_set

    options: dict[str, Any] = {}
    if args.spec:
        options = load_model_spec(args.spec).build(args.endpoint).to_dict()
    elif args.endpoint:
        options["endpoint"] = args.endpoint
    given = {
        "time": args.time,
        "event": args.event,
        "cluster": args.cluster,
        "id_column": args.id_column,
        "terms": _csv_list(args.terms),
        "categorical": _csv_list(args.categorical),
        "effect_modifier": args.effect_modifier,
        "treatment": args.treatment,
        "center_level": _csv_list(args.center_level),
        "time_unit": args.time_unit,
        "baseline": args.baseline,
        "n_basis": args.n_basis,
        "entry": args.entry,
    }
    options.update({k: v for k, v in given.items() if v is not None})
    if options.get("baseline") not in DEGREES:  # a spec's spline options do not carry over
        options.pop("n_basis", None), options.pop("knots", None)
    if args.cluster == "none":
        options["cluster"] = None
    if args.priors:
        options["priors"] = dict(load_prior_set(args.priors).priors)
    if not options.get("endpoint") and not (options.get("time") and options.get("event")):
        raise CommandError("give --endpoint (LRFS, RFS, OS), or --time and --event, or --spec")
    return HierarchicalWeibull.from_dict(options)


def _is_registry(df: pd.DataFrame) -> bool:
    return set(schema.REQUIRED_COLUMNS) <= set(df.columns)


def cmd_fit(args: argparse.Namespace, console: Console) -> int:
    """Fit a model to a table and save the fit."""
    import bayes_sarcoma as bs

    model = build_model(args)
    df = _read(args, args.data)
    if model.endpoint and _is_registry(df) and not args.no_validate:
        bs.validate_registry(df)
    dt = fit_and_save(model, df, args, console, Path(args.out))
    console.print(f"wrote {args.out}", "", *_fit_summary(dt, ci_prob=args.ci_prob))
    return EXIT_OK


# -- summary ---------------------------------------------------------------------------------
def _fmt_table(df: pd.DataFrame, floatfmt: str = "{:.3f}") -> str:
    return df.to_string(float_format=lambda v: floatfmt.format(v))


def _fit_summary(dt, *, ci_prob: float) -> list[str]:
    from bayes_sarcoma.inference.diagnose import fit_diagnosis
    from bayes_sarcoma.predict.effects import effect_by_modifier, hazard_ratios

    spec = json.loads(dt.attrs["model"])
    post = dt["posterior"]
    obs = dt["observed_data"]
    n_chains, n_draws = post.sizes["chain"], post.sizes["draw"]
    what = spec.get("endpoint") or f"{spec['time']} / {spec['event']}"
    lines = [
        f"{what}: {obs.sizes['patient']} patients, {int(obs['event'].sum())} events, "
        f"{post.sizes.get('center', 0)} centres; {dt.attrs.get('sampler')} "
        f"{n_chains} chains x {n_draws} draws",
        "",
        f"Hazard ratios (posterior median and {ci_prob:.0%} interval; P(HR<1) = probability of "
        "a lower hazard):",
    ]
    hr = hazard_ratios(dt, ci_prob=ci_prob)[["median", "lower", "upper", "prob_lt_1"]]
    lines.append(_fmt_table(hr.rename(columns={"median": "HR", "prob_lt_1": "P(HR<1)"})))
    if "center_sd" in post:
        sd = post["center_sd"]
        lo, hi = np.quantile(sd, [(1 - ci_prob) / 2, (1 + ci_prob) / 2])
        lines.append(f"centre sd: {float(sd.median()):.3f} ({lo:.3f}-{hi:.3f})")
    if spec.get("effect_modifier") and "treatment_hazard_ratio" in post:
        by = effect_by_modifier(dt, ci_prob=ci_prob)
        cols = [c for c in ("n_patients", "median", "lower", "upper", "prob_lt_1") if c in by]
        lines += ["", f"{spec['treatment']} hazard ratio by {spec['effect_modifier']}:"]
        lines.append(_fmt_table(by[cols].rename(columns={"median": "HR", "prob_lt_1": "P(HR<1)"})))
    lines += ["", str(fit_diagnosis(dt))]
    return lines


def cmd_summary(args: argparse.Namespace, console: Console) -> int:
    """Print a saved fit's hazard ratios and diagnostics."""
    from bayes_sarcoma.model import io

    meta = io.read_metadata(args.fit)
    dt = io.load(args.fit, data=_read(args, args.data) if args.data else None)
    console.print(
        f"{args.fit}: saved {meta['saved_at']} by bayes_sarcoma {meta['package_version']}"
        + ("; the data match the fit" if args.data else ""),
        *_fit_summary(dt, ci_prob=args.ci_prob),
    )
    return EXIT_OK


# -- predict ---------------------------------------------------------------------------------
def cmd_predict(args: argparse.Namespace, console: Console) -> int:
    """Predict survival and median event-free time for new patients from a saved fit."""
    from bayes_sarcoma.cli.predictions import format_table, header, id_column, prediction_table
    from bayes_sarcoma.model import io

    dt = io.load(args.fit)
    patients = _read(args, args.patients)
    times = _csv_list(args.times, float)
    column = id_column(dt, patients, args.id_column)
    _warn_implausible(patients, args.patients, column)
    table = prediction_table(
        dt, patients, times, center=args.center, ci_prob=args.ci_prob, id_col=column
    )
    beyond = table[table["beyond_follow_up"]]
    medians = int((beyond["quantity"] == "median_time").sum())
    if medians:
        warnings.warn(
            f"{medians} of {len(patients)} predicted medians lie beyond the fit's longest "
            f"follow-up ({table.attrs['last_follow_up']:.1f}): they extrapolate the model's "
            "curve, not the data (beyond_follow_up = True)",
            DataWarning,
            stacklevel=2,
        )
    post = dt["posterior"]
    lines = header(table, n_draws=post.sizes["chain"] * post.sizes["draw"])
    if args.out:
        write_table(table, args.out)
        console.print(
            f"wrote {args.out}: {len(patients)} patients, {len(table)} rows "
            f"({len(beyond)} beyond follow-up)",
            *lines,
        )
    else:
        console.print(*lines, "", format_table(table))
    return EXIT_OK


# -- sensitivity -----------------------------------------------------------------------------
def cmd_sensitivity(args: argparse.Namespace, console: Console) -> int:
    """Refit a grid of endpoints x prior sets and compare the expert effect."""
    from bayes_sarcoma.study.sensitivity import prior_sensitivity

    df = _read(args, args.data)
    result = prior_sensitivity(
        df,
        endpoints=_csv_list(args.endpoints),
        prior_sets=_csv_list(args.prior_sets),
        model_specs=_csv_list(args.specs),
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        random_seed=args.random_seed,
        power_scaling=not args.no_power_scaling,
        prior_predictive=args.plot is not None,
        scheduler=args.scheduler,
        progress=not console.quiet,
    )
    table = result.table
    if args.out:
        write_table(table, args.out)
        console.print(f"wrote {args.out}")
    shown = table[table["quantity"].isin(["hr_expert", "median_diff_months"])]
    console.print(_fmt_table(shown.reset_index(drop=True)))
    if args.plot:
        result.plot().savefig(args.plot, dpi=120)
        console.print(f"wrote {args.plot}")
    return EXIT_OK


# -- report ----------------------------------------------------------------------------------
def cmd_report(args: argparse.Namespace, console: Console) -> int:
    """Write the HTML report of a registry (fitting what is not given as saved fits)."""
    import bayes_sarcoma as bs
    from bayes_sarcoma.model import io
    from bayes_sarcoma.report.analysis import analysis_report

    df = _read(args, args.registry)
    fits = {}
    for path in _csv_list(args.fits) or []:
        dt = io.load(path, data=df)
        model = bs.HierarchicalWeibull.from_datatree(dt)
        if not model.endpoint:
            raise CommandError(f"{path}: not a registry endpoint fit (no endpoint)")
        fits[model.endpoint] = (model, dt)
    endpoints = _csv_list(args.endpoints) or list(fits) or list(schema.ENDPOINTS)
    with console.step(f"analysing {len(df)} patients for the report ({', '.join(endpoints)})"):
        chosen = {"candidates": _csv_list(args.candidates)} if args.candidates else {}
        report = analysis_report(
            df,
            args.out,
            endpoints=[e.upper() for e in endpoints],
            fits=fits,
            **chosen,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            random_seed=args.random_seed,
            figures_dir=args.figures,
            progressbar=console.progressbar,
        )
    console.print(f"wrote {report.path}")
    return EXIT_OK


# -- the parser ------------------------------------------------------------------------------
def _add_sampler_options(
    p: argparse.ArgumentParser, *, draws: int = 1000, tune: int = 1000
) -> None:
    g = p.add_argument_group("sampler")
    g.add_argument("--draws", type=int, default=draws, help="draws per chain (default %(default)s)")
    g.add_argument("--tune", type=int, default=tune, help="tuning steps per chain (%(default)s)")
    g.add_argument("--chains", type=int, default=4, help="chains (default %(default)s)")
    g.add_argument(
        "--random-seed", type=int, default=2026, help="random seed (default %(default)s)"
    )
    g.add_argument(
        "--sampler", choices=("nutpie", "pymc", "numpyro"), default="nutpie", help="NUTS engine"
    )
    g.add_argument(
        "--target-accept", type=float, default=0.8, help="raise (e.g. 0.95) after divergences"
    )


def _add_input_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "reading tables",
        "tables: .csv/.tsv/.txt (separator, encoding and day/month order detected, with a\n"
        "note), .xlsx/.xls/.ods (first sheet), .parquet, .sas7bdat/.xpt, .dta",
    )
    g.add_argument(
        "--date-format",
        metavar="FORMAT",
        help="format of the registry's dates, e.g. %%d/%%m/%%Y (default: ISO 2012-03-31, or "
        "the day/month order the dates show; asked for when they do not show it)",
    )
    g.add_argument(
        "--encoding", help="text encoding of a text table (default: UTF-8, else Windows-1252)"
    )


def _add_ci_prob_option(p: argparse.ArgumentParser) -> None:
    """Add ``--ci-prob``, the interval probability."""
    p.add_argument(
        "--ci-prob", type=float, default=CI_PROB, help="interval probability (%(default)s)"
    )


def _common_options() -> argparse.ArgumentParser:
    """Return the parent parser of the options every command takes."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--traceback", action="store_true", help="show tracebacks of errors")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    return common


def _add_command(
    sub: argparse._SubParsersAction,
    common: argparse.ArgumentParser,
    name: str,
    func: Callable,
    help: str,
    epilog: str = "",
) -> argparse.ArgumentParser:
    """Add the sub-command ``name`` running ``func``; return its parser."""
    p = sub.add_parser(
        name,
        help=help,
        description=help,
        parents=[common],
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=func)
    return p


def _add_demo(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``demo`` and its options."""
    p = _add_command(
        sub,
        common,
        "demo",
        cmd_demo,
        "simulate the NETSARC registry, fit LRFS/RFS/OS, write the report and fits, print "
        "the headline table",
        "example:\n  bayes-sarcoma demo --out out/demo\n  bayes-sarcoma demo --quick",
    )
    p.add_argument("--patients", type=int, default=schema.PUBLISHED["n_patients"])
    p.add_argument("--out", "-o", default="out/demo", help="output folder (%(default)s)")
    p.add_argument("--quick", action="store_true", help="2000 patients, 2 x 300 draws (a check)")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    _add_sampler_options(p, draws=DEMO_DRAWS, tune=DEMO_TUNE)


def _add_simulate(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``simulate`` and its options."""
    p = _add_command(
        sub,
        common,
        "simulate",
        cmd_simulate,
        "simulate a NETSARC-like registry (dates, covariates, derived endpoints)",
        "example:\n  bayes-sarcoma simulate --patients 9594 --random-seed 2026 -o registry.csv",
    )
    p.add_argument("--patients", type=int, default=schema.PUBLISHED["n_patients"])
    p.add_argument("--random-seed", type=int, default=2026)
    p.add_argument("--out", "-o", required=True, help="registry file (.csv or .parquet)")


def _add_validate(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``validate`` and its options (a registry, or a table of one's own)."""
    p = _add_command(
        sub,
        common,
        "validate",
        cmd_validate,
        "check a registry against the data contract, or any table with the checks of fit "
        "(--time, --event); name every broken rule and its rows; warn about implausible values",
        "examples:\n  bayes-sarcoma validate registry.csv --calibration\n"
        "  bayes-sarcoma validate export.csv --date-format %d/%m/%Y\n"
        "  bayes-sarcoma validate trial.csv --time years --event died --cluster site "
        "--terms arm,age",
    )
    p.add_argument("data", help="the table (a registry unless --time and --event are given)")
    p.add_argument(
        "--calibration", action="store_true", help="also print crude medians vs NETSARC's"
    )
    g = p.add_argument_group("your own table (the columns fit would read)")
    g.add_argument("--time", help="time column")
    g.add_argument("--event", help="event column, 0/1")
    g.add_argument("--cluster", help="centre column, or 'none' (default none)")
    g.add_argument("--terms", help="comma-separated covariate columns")
    g.add_argument("--categorical", help="comma-separated numeric columns to treat as categories")
    g.add_argument("--entry", help="delayed-entry time column")
    g.add_argument("--id-column", help="patient id column (default patient_id if present)")
    _add_unit_options(g)
    _add_input_options(p)


def _add_unit_options(g: argparse._ArgumentGroup) -> None:
    """Add ``--center-level`` and ``--time-unit`` (fit and validate)."""
    g.add_argument(
        "--center-level",
        help="comma-separated terms that describe centres, checked constant within each one "
        "(default expert_center when a term; '' for none)",
    )
    g.add_argument(
        "--time-unit",
        choices=("days", "weeks", "months", "years"),
        help="unit of the time column (default: read from its name, e.g. fu_days); a time "
        "of 0 becomes half a day in it",
    )


def _add_model_options(p: argparse.ArgumentParser) -> None:
    """Add the ``model`` group of ``fit``: endpoint, spec, priors, terms and columns."""
    g = p.add_argument_group("model")
    g.add_argument("--endpoint", type=str.upper, choices=tuple(schema.ENDPOINTS))
    g.add_argument("--spec", help="model specification: a name in models/ or a .toml file")
    g.add_argument("--priors", help="prior set: a name in models/priors/ or a .toml file")
    g.add_argument("--terms", help="comma-separated covariate columns")
    g.add_argument("--categorical", help="comma-separated numeric columns to treat as categories")
    g.add_argument("--effect-modifier", help="e.g. margin: the expert effect per level")
    g.add_argument("--baseline", choices=BASELINES, help="baseline hazard (default weibull)")
    g.add_argument(
        "--n-basis",
        type=int,
        help="basis functions (intervals) of an mspline (piecewise) baseline (default 10)",
    )
    g.add_argument(
        "--treatment",
        help="the treatment term (default expert_center when a term); it may vary within "
        "centres (randomised within centres)",
    )
    _add_unit_options(g)
    g.add_argument("--time", help="time column (your own table)")
    g.add_argument("--event", help="event column, 0/1 (your own table)")
    g.add_argument("--cluster", help="centre column, or 'none'")
    g.add_argument("--entry", help="delayed-entry time column")
    g.add_argument("--id-column", help="patient id column")
    g.add_argument("--no-validate", action="store_true", help="skip the registry checks")


def _add_fit(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``fit`` and its options."""
    p = _add_command(
        sub,
        common,
        "fit",
        cmd_fit,
        "fit a hierarchical Weibull model and save it (.zarr folder or .nc file)",
        "examples:\n  bayes-sarcoma fit registry.csv --endpoint LRFS -o lrfs.zarr\n"
        "  bayes-sarcoma fit registry.csv --spec netsarc_margin_interaction --endpoint LRFS "
        "-o lrfs_margin.zarr\n"
        "  bayes-sarcoma fit trial.csv --time years --event died --cluster site "
        "--terms arm,age -o trial.zarr",
    )
    p.add_argument("data", help="table (.csv or .parquet)")
    p.add_argument("--out", "-o", required=True, help="fit file (.zarr or .nc)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing fit file")
    _add_model_options(p)
    _add_ci_prob_option(p)
    _add_input_options(p)
    _add_sampler_options(p)


def _add_summary(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``summary`` and its options."""
    p = _add_command(
        sub,
        common,
        "summary",
        cmd_summary,
        "print a saved fit's hazard ratios, effect by modifier and diagnostics",
        "example:\n  bayes-sarcoma summary lrfs.zarr --data registry.csv",
    )
    p.add_argument("fit", help="fit file (.zarr or .nc)")
    p.add_argument("--data", help="the fitting table: checked against the fit's fingerprint")
    _add_ci_prob_option(p)
    _add_input_options(p)


def _add_predict(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``predict`` and its options."""
    p = _add_command(
        sub,
        common,
        "predict",
        cmd_predict,
        "predict survival and median event-free time for patients from a saved fit (a tidy "
        "table; extrapolations beyond the fit's follow-up flagged)",
        "example:\n  bayes-sarcoma predict lrfs.zarr patients.csv --times 12,24,60 "
        "--center known -o predictions.csv",
    )
    p.add_argument("fit", help="fit file (.zarr or .nc)")
    p.add_argument("patients", help="table of patients with the model's columns")
    p.add_argument("--times", default="12,24,60", help="comma-separated times (%(default)s)")
    p.add_argument(
        "--center",
        choices=("new", "known", "typical"),
        default="new",
        help="new: a centre not in the fit (default); known: the patient's own centre; "
        "typical: centre effect 0",
    )
    _add_ci_prob_option(p)
    p.add_argument(
        "--id-column", help="column naming the patients (default: the fit's, or patient_id)"
    )
    p.add_argument("--out", "-o", help="write the table here (.csv or .parquet)")
    _add_input_options(p)


def _add_sensitivity(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``sensitivity`` and its options."""
    p = _add_command(
        sub,
        common,
        "sensitivity",
        cmd_sensitivity,
        "refit a grid of endpoints x prior sets and compare the expert-centre effect",
        "example:\n  bayes-sarcoma sensitivity registry.csv --endpoints LRFS,OS "
        "--prior-sets weakly_informative,sceptical,vague -o sensitivity.csv",
    )
    p.add_argument("data", help="registry (.csv or .parquet)")
    p.add_argument("--endpoints", default="LRFS,RFS,OS", help="comma-separated (%(default)s)")
    p.add_argument(
        "--prior-sets", required=True, help="comma-separated prior-set names or .toml files"
    )
    p.add_argument("--specs", help="comma-separated model specs (default netsarc_weibull)")
    p.add_argument("--scheduler", help="serial, processes, or a Dask scheduler address")
    p.add_argument("--no-power-scaling", action="store_true", help="skip power-scaling")
    p.add_argument("--out", "-o", help="write the tidy table here (.csv or .parquet)")
    p.add_argument("--plot", help="write the comparison figure here (.png)")
    _add_input_options(p)
    _add_sampler_options(p)


def _add_report(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``report`` and its options."""
    p = _add_command(
        sub,
        common,
        "report",
        cmd_report,
        "write the HTML report of a registry: headline, Table 1, hazard ratios, standardized "
        "survival, effect by margin, diagnostics, PPC, model comparison, centres",
        "examples:\n  bayes-sarcoma report registry.csv -o report.html\n"
        "  bayes-sarcoma report registry.csv --fits lrfs.zarr,rfs.zarr,os.zarr "
        "--candidates weibull -o report.html",
    )
    p.add_argument("registry", help="registry (.csv or .parquet)")
    p.add_argument("--out", "-o", required=True, help="the HTML file")
    p.add_argument("--fits", help="comma-separated saved main fits to reuse (not refitted)")
    p.add_argument("--endpoints", help="comma-separated (default: those of --fits, or all)")
    p.add_argument(
        "--candidates",
        help="comma-separated models compared per endpoint (default: weibull, exponential, "
        "no centre effects, expert x margin)",
    )
    p.add_argument("--figures", help="also write every figure to this folder (PNG)")
    _add_input_options(p)
    _add_sampler_options(p)


#: The sub-commands, in the order ``--help`` lists them.
_COMMANDS = (
    _add_demo,
    _add_simulate,
    _add_validate,
    _add_fit,
    _add_summary,
    _add_predict,
    _add_sensitivity,
    _add_report,
)


def make_parser() -> argparse.ArgumentParser:
    """Return the ``bayes-sarcoma`` argument parser."""
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Bayesian hierarchical Weibull survival models for multi-centre cancer\n"
        "registries: does surgery at an expert sarcoma centre lengthen LRFS, RFS and OS?\n"
        "Run `bayes-sarcoma <command> --help` for a command's options and examples.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for add_command in _COMMANDS:
        add_command(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (see the module docstring).

    Examples
    --------
    >>> main(["validate", "registry.csv"])                               # doctest: +SKIP
    0
    """
    parser = make_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version (0) and usage errors (2)
        return int(exit_.code or 0)
    console = Console(quiet=args.quiet)
    where = f"{PROG} {args.command}"
    try:
        with warnings.catch_warnings():
            # An application shows its warnings (one line each), whatever the caller's
            # filters say; library deprecations are for developers, not users.
            warnings.resetwarnings()
            warnings.simplefilter("default")
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.showwarning = _show_warning(console)
            return args.func(args, console)
    except KeyboardInterrupt:
        print(f"{where}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, OSError) as err:  # RegistryError, PriorError, SpecError, FitFileError
        if args.traceback:
            traceback.print_exc()
        print(f"{where}: error: {err}", file=sys.stderr)
        return EXIT_USER
    except Exception as err:
        if args.traceback:
            traceback.print_exc()
        print(
            f"{where}: internal error: {type(err).__name__}: {err} "
            "(rerun with --traceback and report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
