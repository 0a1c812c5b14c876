"""The ``bayes-sarcoma`` command line: simulate, validate, fit, summarise, predict, compare.

Every sub-command is a thin layer over the Python API (``bayes-sarcoma fit`` is
:meth:`HierarchicalWeibull.fit <bayes_sarcoma.HierarchicalWeibull.fit>` then
:func:`bayes_sarcoma.io.save`), so what a user does here they can do from a script. Tables
are read from CSV (dates in ISO format, ``2012-03-31``) or Parquet; fits are written and
read with :mod:`bayes_sarcoma.io`. ``bayes-sarcoma demo`` runs the NETSARC replication end to end
(simulate, fit LRFS/RFS/OS and the expert-by-margin interaction, save the fits, write the
report) and prints the headline table.

Exit codes: 0 success; 1 a problem with the input (a registry that breaks the data
contract, a bad prior or spec file, a file that is not a fit, a data mismatch), shown as
one line ``bayes-sarcoma <command>: error: ...`` (``--traceback`` shows the traceback);
2 a usage error (unknown option, missing argument); 3 an internal error (a bug: please
report it with the ``--traceback`` output); 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from bayes_sarcoma import __version__, schema

PROG = "bayes-sarcoma"
EXIT_OK, EXIT_USER, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")
#: Probability of every interval the command line prints (the clinical convention; the
#: HTML report uses the same).
PROB = 0.95

EXAMPLES = """\
examples:
  bayes-sarcoma demo                                  # the NETSARC replication, end to end
  bayes-sarcoma simulate --patients 9594 --seed 2026 -o registry.csv
  bayes-sarcoma validate registry.csv --calibration
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


class CommandError(ValueError):
    """A user error detected by the command line itself (bad file, bad option value)."""


# -- console ---------------------------------------------------------------------------------
class Console:
    """Where the command writes: results to stdout, progress and warnings to stderr."""

    def __init__(self, quiet: bool = False, out: TextIO | None = None, err: TextIO | None = None):
        self.quiet = quiet
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    @property
    def progressbar(self) -> bool:
        """Show the sampler's progress bar (not quiet, and a terminal to draw it on)."""
        return not self.quiet and self.err.isatty()

    def print(self, *lines: str) -> None:
        """Print results (stdout)."""
        for line in lines:
            print(line, file=self.out, flush=True)

    def note(self, message: str) -> None:
        """Print a progress note (stderr) unless quiet."""
        if not self.quiet:
            print(message, file=self.err, flush=True)

    @contextlib.contextmanager
    def step(self, label: str) -> Iterator[None]:
        """Report a long step: ``label ...`` and then its duration."""
        self.note(f"{label} ...")
        start, cpu = time.perf_counter(), time.process_time()
        yield
        # CPU time (all threads) beside wall time: on a busy machine it is the steadier number.
        self.note(
            f"  done in {time.perf_counter() - start:.1f} s (CPU {time.process_time() - cpu:.1f} s)"
        )


def _show_warning(console: Console) -> Callable:
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{PROG}: warning: {message}", file=console.err, flush=True)

    return show


# -- tables ----------------------------------------------------------------------------------
def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV/TSV or Parquet table; registry date columns become datetimes.

    Dates are parsed as ISO 8601 (``2012-03-31``); a column that does not parse is left
    as text, and :func:`bayes_sarcoma.validate_registry` then names its bad rows.

    Examples
    --------
    >>> df = read_table("registry.csv")                                  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise CommandError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        # round_trip: the numbers pandas wrote come back bit for bit (the default C parser
        # can be off by an ulp, which would change fits and data fingerprints).
        sep = "\t" if suffix == ".tsv" else ","
        df = pd.read_csv(path, sep=sep, float_precision="round_trip")
    elif suffix in (".parquet", ".pq"):
        df = pd.read_parquet(path)
    else:
        raise CommandError(f"{path}: read tables from {', '.join(TABLE_SUFFIXES)} files")
    for col in schema.DATE_COLUMNS:
        if col in df.columns and not pd.api.types.is_datetime64_any_dtype(df[col]):
            with contextlib.suppress(ValueError, TypeError):
                df[col] = pd.to_datetime(df[col], format="ISO8601")
    return df


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` as CSV or Parquet (by the suffix of ``path``), without its ``attrs``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise CommandError(f"{path}: write tables to {', '.join(TABLE_SUFFIXES)} files")
    path.parent.mkdir(parents=True, exist_ok=True)
    plain = df.copy()
    plain.attrs = {}
    if suffix in (".parquet", ".pq"):
        plain.to_parquet(path, index=False)
    else:
        plain.to_csv(path, index=False, sep="\t" if suffix == ".tsv" else ",")
    return path


def _csv_list(text: str | None, convert: Callable = str) -> list | None:
    if text is None:
        return None
    try:
        return [convert(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError:
        raise CommandError(f"cannot read {text!r} as a comma-separated list") from None


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


# -- simulate and validate -------------------------------------------------------------------
def cmd_simulate(args: argparse.Namespace, console: Console) -> int:
    """Simulate a NETSARC-like registry; write it and its truth."""
    import bayes_sarcoma as bs

    with console.step(f"simulating {args.patients} patients"):
        df = bs.simulate_registry(args.patients, seed=args.seed)
    out, truth_path = write_registry(df, args.out)
    console.print(
        f"wrote {out}: {len(df)} patients, {df[schema.CENTER_ID].nunique()} centres "
        f"({df.loc[df[schema.EXPERT], schema.CENTER_ID].nunique()} expert); "
        f"the true parameters are in {truth_path}"
    )
    return EXIT_OK


def write_registry(df: pd.DataFrame, path: str | Path) -> tuple[Path, Path]:
    """Write a simulated registry and, beside it, its truth as JSON (``<stem>.truth.json``)."""
    out = write_table(df, path)
    truth_path = out.with_suffix(".truth.json")
    truth = {"truth": df.attrs["truth"], "simulation": df.attrs.get("simulation", {})}
    truth_path.write_text(json.dumps(truth, indent=1, default=_json_default))
    return out, truth_path


def _describe_registry(df: pd.DataFrame) -> str:
    expert = df[schema.EXPERT].astype(bool)
    dates = df[schema.SURGERY_DATE]
    return (
        f"{len(df)} patients, {df[schema.CENTER_ID].nunique()} centres "
        f"({df.loc[expert, schema.CENTER_ID].nunique()} expert, {expert.mean():.0%} of "
        f"patients), surgery {dates.min():%Y-%m-%d} to {dates.max():%Y-%m-%d}"
    )


def cmd_validate(args: argparse.Namespace, console: Console) -> int:
    """Check a registry against the data contract."""
    import bayes_sarcoma as bs

    df = read_table(args.registry)
    bs.validate_registry(df)
    console.print(f"ok: {args.registry}: {_describe_registry(df)}")
    if args.calibration:
        console.print("", bs.format_calibration(df))
    return EXIT_OK


# -- fit -------------------------------------------------------------------------------------
def build_model(args: argparse.Namespace):
    """Return the :class:`~bayes_sarcoma.HierarchicalWeibull` the ``fit`` options describe.

    A model spec (``--spec``) gives the starting options; each option given on the command
    line overrides it; a prior set (``--priors``) replaces the spec's priors.
    """
    from bayes_sarcoma.model import HierarchicalWeibull
    from bayes_sarcoma.specs import load_model_spec, load_prior_set

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
        "baseline": args.baseline,
        "entry": args.entry,
    }
    options.update({k: v for k, v in given.items() if v is not None})
    if args.cluster == "none":
        options["cluster"] = None
    if args.priors:
        options["priors"] = dict(load_prior_set(args.priors).priors)
    if not options.get("endpoint") and not (options.get("time") and options.get("event")):
        raise CommandError("give --endpoint (LRFS, RFS, OS), or --time and --event, or --spec")
    return HierarchicalWeibull.from_dict(options)


def _is_registry(df: pd.DataFrame) -> bool:
    return set(schema.REQUIRED_COLUMNS) <= set(df.columns)


def fit_and_save(
    model,
    df: pd.DataFrame,
    args: argparse.Namespace,
    console: Console,
    out: Path,
    *,
    label: str = "",
):
    """Fit ``model`` on ``df`` with the sampler options of ``args``; save it to ``out``."""
    from bayes_sarcoma import io

    if out.exists() and not args.overwrite:
        raise CommandError(f"{out} exists; pass --overwrite to replace it")
    what = model.endpoint or model.time
    extra = f", {model.effect_modifier} interaction" if model.effect_modifier else ""
    with console.step(
        f"{label}fitting {what}{extra}: {len(df)} patients, {args.chains} chains x "
        f"{args.draws} draws"
    ):
        dt = model.fit(
            df,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            random_seed=args.seed,
            sampler=args.sampler,
            target_accept=args.target_accept,
            progressbar=console.progressbar,
        )
    io.save(model, dt, out, overwrite=args.overwrite)
    return dt


def cmd_fit(args: argparse.Namespace, console: Console) -> int:
    """Fit a model to a table and save the fit."""
    import bayes_sarcoma as bs

    model = build_model(args)
    df = read_table(args.data)
    if model.endpoint and _is_registry(df) and not args.no_validate:
        bs.validate_registry(df)
    dt = fit_and_save(model, df, args, console, Path(args.out))
    console.print(f"wrote {args.out}", "", *_fit_summary(dt, prob=args.prob))
    return EXIT_OK


# -- summary ---------------------------------------------------------------------------------
def _fmt_table(df: pd.DataFrame, floatfmt: str = "{:.3f}") -> str:
    return df.to_string(float_format=lambda v: floatfmt.format(v))


def _fit_summary(dt, *, prob: float) -> list[str]:
    from bayes_sarcoma.diagnostics import diagnose
    from bayes_sarcoma.effects import effect_by_modifier, hazard_ratios

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
        f"Hazard ratios (posterior median and {prob:.0%} interval; P(HR<1) = probability of "
        "a lower hazard):",
    ]
    hr = hazard_ratios(dt, prob=prob)[["median", "lower", "upper", "prob_lt_1"]]
    lines.append(_fmt_table(hr.rename(columns={"median": "HR", "prob_lt_1": "P(HR<1)"})))
    if "center_sd" in post:
        sd = post["center_sd"]
        lo, hi = np.quantile(sd, [(1 - prob) / 2, (1 + prob) / 2])
        lines.append(f"centre sd: {float(sd.median()):.3f} ({lo:.3f}-{hi:.3f})")
    if spec.get("effect_modifier") and "treatment_hazard_ratio" in post:
        by = effect_by_modifier(dt, prob=prob)
        cols = [c for c in ("n_patients", "median", "lower", "upper", "prob_lt_1") if c in by]
        lines += ["", f"{spec['treatment']} hazard ratio by {spec['effect_modifier']}:"]
        lines.append(_fmt_table(by[cols].rename(columns={"median": "HR", "prob_lt_1": "P(HR<1)"})))
    lines += ["", str(diagnose(dt))]
    return lines


def cmd_summary(args: argparse.Namespace, console: Console) -> int:
    """Print a saved fit's hazard ratios and diagnostics."""
    from bayes_sarcoma import io

    meta = io.read_metadata(args.fit)
    _, dt = io.load(args.fit, data=read_table(args.data) if args.data else None)
    console.print(
        f"{args.fit}: saved {meta['saved_at']} by bayes_sarcoma {meta['package_version']}"
        + ("; the data match the fit" if args.data else ""),
        *_fit_summary(dt, prob=args.prob),
    )
    return EXIT_OK


# -- predict ---------------------------------------------------------------------------------
def cmd_predict(args: argparse.Namespace, console: Console) -> int:
    """Predict survival and median event-free time for new patients from a saved fit."""
    from bayes_sarcoma import io
    from bayes_sarcoma.predict import predict_median, predict_survival, summarize

    _, dt = io.load(args.fit)
    patients = read_table(args.patients)
    times = _csv_list(args.times, float)
    surv = summarize(predict_survival(dt, patients, times, center=args.center), prob=args.prob)
    surv.insert(1, "quantity", "survival")
    med = summarize(predict_median(dt, patients, center=args.center), prob=args.prob)
    med.insert(1, "quantity", "median_time")
    med.insert(2, "time", np.nan)
    table = pd.concat([surv, med], ignore_index=True)
    if args.out:
        write_table(table, args.out)
        console.print(f"wrote {args.out}: {len(patients)} patients, {len(table)} rows")
    else:
        console.print(_fmt_table(table))
    return EXIT_OK


# -- sensitivity -----------------------------------------------------------------------------
def cmd_sensitivity(args: argparse.Namespace, console: Console) -> int:
    """Refit a grid of endpoints x prior sets and compare the expert effect."""
    from bayes_sarcoma.sensitivity import prior_sensitivity

    df = read_table(args.data)
    result = prior_sensitivity(
        df,
        endpoints=_csv_list(args.endpoints),
        prior_sets=_csv_list(args.prior_sets),
        model_specs=_csv_list(args.specs),
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        seed=args.seed,
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
    from bayes_sarcoma import io
    from bayes_sarcoma.report import analysis_report

    df = read_table(args.registry)
    fits = {}
    for path in _csv_list(args.fits) or []:
        model, dt = io.load(path, data=df)
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
            random_seed=args.seed,
            figures_dir=args.figures,
            progressbar=console.progressbar,
        )
    console.print(f"wrote {report.path}")
    return EXIT_OK


# -- the parser ------------------------------------------------------------------------------
def _add_sampler_options(p: argparse.ArgumentParser, *, draws: int = 1000) -> None:
    g = p.add_argument_group("sampler")
    g.add_argument("--draws", type=int, default=draws, help="draws per chain (default %(default)s)")
    g.add_argument("--tune", type=int, default=1000, help="tuning steps per chain (%(default)s)")
    g.add_argument("--chains", type=int, default=4, help="chains (default %(default)s)")
    g.add_argument("--seed", type=int, default=2026, help="random seed (default %(default)s)")
    g.add_argument(
        "--sampler", choices=("nutpie", "pymc", "numpyro"), default="nutpie", help="NUTS engine"
    )
    g.add_argument(
        "--target-accept", type=float, default=0.8, help="raise (e.g. 0.95) after divergences"
    )


def make_parser() -> argparse.ArgumentParser:
    """Return the ``bayes-sarcoma`` argument parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--traceback", action="store_true", help="show tracebacks of errors")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Bayesian hierarchical Weibull survival models for multi-centre cancer\n"
        "registries: does surgery at an expert sarcoma centre lengthen LRFS, RFS and OS?\n"
        "Run `bayes-sarcoma <command> --help` for a command's options and examples.",
        epilog=EXAMPLES,
        formatter_class=fmt,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    def command(name: str, func: Callable, help: str, epilog: str = "") -> argparse.ArgumentParser:
        p = sub.add_parser(
            name, help=help, description=help, parents=[common], epilog=epilog, formatter_class=fmt
        )
        p.set_defaults(func=func)
        return p

    p = command(
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
    _add_sampler_options(p)

    p = command(
        "simulate",
        cmd_simulate,
        "simulate a NETSARC-like registry (dates, covariates, derived endpoints)",
        "example:\n  bayes-sarcoma simulate --patients 9594 --seed 2026 -o registry.csv",
    )
    p.add_argument("--patients", type=int, default=schema.PUBLISHED["n_patients"])
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--out", "-o", required=True, help="registry file (.csv or .parquet)")

    p = command(
        "validate",
        cmd_validate,
        "check a registry against the data contract (names every broken rule and its rows)",
        "example:\n  bayes-sarcoma validate registry.csv --calibration",
    )
    p.add_argument("registry", help="registry file (.csv or .parquet)")
    p.add_argument(
        "--calibration", action="store_true", help="also print crude medians vs NETSARC's"
    )

    p = command(
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
    g = p.add_argument_group("model")
    g.add_argument("--endpoint", type=str.upper, choices=tuple(schema.ENDPOINTS))
    g.add_argument("--spec", help="model specification: a name in models/ or a .toml file")
    g.add_argument("--priors", help="prior set: a name in models/priors/ or a .toml file")
    g.add_argument("--terms", help="comma-separated covariate columns")
    g.add_argument("--categorical", help="comma-separated numeric columns to treat as categories")
    g.add_argument("--effect-modifier", help="e.g. margin: the expert effect per level")
    g.add_argument("--baseline", choices=("weibull", "exponential"))
    g.add_argument("--time", help="time column (your own table)")
    g.add_argument("--event", help="event column, 0/1 (your own table)")
    g.add_argument("--cluster", help="centre column, or 'none'")
    g.add_argument("--entry", help="delayed-entry time column")
    g.add_argument("--id-column", help="patient id column")
    g.add_argument("--no-validate", action="store_true", help="skip the registry checks")
    p.add_argument("--prob", type=float, default=PROB, help="interval probability (%(default)s)")
    _add_sampler_options(p)

    p = command(
        "summary",
        cmd_summary,
        "print a saved fit's hazard ratios, effect by modifier and diagnostics",
        "example:\n  bayes-sarcoma summary lrfs.zarr --data registry.csv",
    )
    p.add_argument("fit", help="fit file (.zarr or .nc)")
    p.add_argument("--data", help="the fitting table: checked against the fit's fingerprint")
    p.add_argument("--prob", type=float, default=PROB, help="interval probability (%(default)s)")

    p = command(
        "predict",
        cmd_predict,
        "predict survival and median event-free time for patients from a saved fit",
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
    p.add_argument("--prob", type=float, default=PROB, help="interval probability (%(default)s)")
    p.add_argument("--out", "-o", help="write the table here (.csv or .parquet)")

    p = command(
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
    _add_sampler_options(p)

    p = command(
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
    _add_sampler_options(p)
    return parser


# -- demo ------------------------------------------------------------------------------------
#: What the demo fits: the three endpoints, and LRFS with the expert-by-margin interaction.
DEMO_FITS = (("LRFS", None), ("RFS", None), ("OS", None), ("LRFS", "margin"))
DEMO_TIMES = (12.0, 24.0, 60.0)
QUICK = {"patients": 2000, "draws": 300, "tune": 300, "chains": 2}
#: target_accept of the interaction model (4 divergences at 0.8 on the NETSARC registry).
MODIFIER_TARGET_ACCEPT = 0.95


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
    with console.step(f"[1/4] simulating {settings.patients} patients (seed {settings.seed})"):
        df = bs.simulate_registry(settings.patients, seed=settings.seed)
        bs.validate_registry(df)
        write_registry(df, out / "registry.csv")
    fits = {}
    for i, (endpoint, modifier) in enumerate(DEMO_FITS, start=1):
        model = bs.HierarchicalWeibull(endpoint, effect_modifier=modifier)
        name = endpoint.lower() + (f"_{modifier}" if modifier else "")
        path = out / f"{name}.zarr"
        label = f"[2/4] fit {i} of {len(DEMO_FITS)}, "
        fit_settings = argparse.Namespace(**vars(settings))
        if modifier:  # the interaction's funnel needs smaller steps (divergences at 0.8)
            fit_settings.target_accept = max(settings.target_accept, MODIFIER_TARGET_ACCEPT)
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


def write_report(df: pd.DataFrame, fits: dict, out: Path, settings: argparse.Namespace):
    """Write the HTML report of the demo's main fits (not refitted); return its path.

    The report module fits what it is not given; here it gets the three main fits, and
    only the main model is reported per endpoint (candidates ``("weibull",)``), which
    keeps the demo within its time budget. The LRFS margin fit is in the printed headline
    and saved beside the report.
    """
    from bayes_sarcoma.report import analysis_report

    main = {name.upper(): fit for name, fit in fits.items() if "_" not in name}
    report = analysis_report(
        df,
        out / "report.html",
        endpoints=list(main),
        fits=main,
        candidates=("weibull",),
        draws=settings.draws,
        tune=settings.tune,
        chains=settings.chains,
        random_seed=settings.seed,
        prob=PROB,
    )
    return report.path


def _p_value(p: float) -> str:
    return "-" if not np.isfinite(p) else (f"{p:.3f}" if p >= 1e-3 else f"{p:.1e}")


def _interval(values, prob: float = PROB, fmt: str = "{:.2f}") -> str:
    lo, med, hi = np.quantile(np.asarray(values).ravel(), [(1 - prob) / 2, 0.5, (1 + prob) / 2])
    return f"{fmt.format(med)} ({fmt.format(lo)} to {fmt.format(hi)})"


def headline_table(df: pd.DataFrame, fits: dict, settings: argparse.Namespace) -> list[str]:
    """Return the demo's headline: calibration, HRs, standardized contrasts, margin, diagnostics."""
    import bayes_sarcoma as bs
    from bayes_sarcoma.diagnostics import diagnose
    from bayes_sarcoma.effects import effect_by_modifier
    from bayes_sarcoma.standardize import standardized_survival

    truth = df.attrs["truth"]
    expert = df[schema.EXPERT].astype(bool)
    lines = [
        f"NETSARC-style replication: {len(df)} simulated patients, "
        f"{df[schema.CENTER_ID].nunique()} centres "
        f"({df.loc[expert, schema.CENTER_ID].nunique()} expert, {expert.mean():.0%} of patients);"
        f" {settings.chains} chains x {settings.draws} draws per fit; intervals are {PROB:.0%}.",
        "",
        "1. Crude median survival, months (Kaplan-Meier): published NETSARC vs simulated",
    ]
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
    lines.append(
        pd.DataFrame(rows)
        .set_index("endpoint")
        .to_string(float_format=lambda v: f"{v:.1f}", na_rep="-")
    )
    hr_rows, std_rows, diag_rows = [], [], []
    for name, (_, dt) in fits.items():
        endpoint = name.split("_")[0].upper()
        beta = dt.posterior["beta"].sel(term=schema.EXPERT)
        diag = diagnose(dt)
        diag_rows.append(
            {
                "fit": name,
                "ok": "yes" if diag.ok else "NO",
                "divergences": int(diag.chains["divergences"].sum())
                if "divergences" in diag.chains
                else 0,
                "max R-hat": diag.table["r_hat"].max(),
                "min ESS bulk": diag.table["ess_bulk"].min(),
                "min ESS tail": diag.table["ess_tail"].min(),
            }
        )
        if "_" in name:
            continue
        t = truth[endpoint]
        hr_rows.append(
            {
                "endpoint": endpoint,
                f"HR expert ({PROB:.0%} interval)": _interval(np.exp(beta)),
                "P(HR<1)": f"{float((beta < 0).mean()):.3f}",
                "true HR": f"{np.exp(t['beta'][schema.EXPERT]):.2f}"
                + ("" if t["exact"] else " (pseudo-true)"),
            }
        )
        std = standardized_survival(dt, df, DEMO_TIMES)
        s = t["standardized"]
        true_diff = s["expert"][60] - s["other"][60]
        std_rows.append(
            {
                "endpoint": endpoint,
                "median difference, months": _interval(std["median_difference"], fmt="{:.1f}"),
                "S(60) difference": _interval(std["difference"].sel(time=60.0), fmt="{:+.3f}"),
                "true S(60) difference": f"{true_diff:+.3f}",
            }
        )
    lines += [
        "",
        "2. Adjusted expert-centre hazard ratio (Weibull PH, random centre intercept; "
        "posterior median and interval)",
        pd.DataFrame(hr_rows).set_index("endpoint").to_string(),
        "",
        "3. Standardized contrasts, expert minus other centres: every registry patient at an "
        "expert centre vs none, a new centre's effect integrated out",
        pd.DataFrame(std_rows).set_index("endpoint").to_string(),
    ]
    margin = [dt for name, (_, dt) in fits.items() if name.endswith("_margin")]
    if margin:
        by = effect_by_modifier(margin[0], prob=PROB)
        table = pd.DataFrame(
            {
                "patients": by["n_patients"].astype("Int64"),
                "HR expert": by["median"].map("{:.2f}".format),
                f"{PROB:.0%} interval": [
                    f"{lo:.2f} to {hi:.2f}" for lo, hi in zip(by.lower, by.upper, strict=True)
                ],
                "P(HR<1)": by["prob_lt_1"].map("{:.3f}".format),
            },
            index=by.index,
        )
        lines += [
            "",
            "4. LRFS: expert-centre effect by resection margin (partially pooled interaction;"
            " 'common' is the centre of the levels; sampled with target_accept "
            f"{max(settings.target_accept, MODIFIER_TARGET_ACCEPT)})",
            table.to_string(),
        ]
    lines += [
        "",
        "5. Sampling diagnostics (R-hat < 1.01 and ESS >= 400 for the key quantities)",
        pd.DataFrame(diag_rows)
        .set_index("fit")
        .to_string(float_format=lambda v: f"{v:.3f}" if v < 10 else f"{v:.0f}"),
    ]
    return lines


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
