"""The files the ``bayes-sarcoma`` commands read and write.

Tables are read from and written to CSV/TSV (dates in ISO format, ``2012-03-31``) or
Parquet; a simulated registry is written with its truth beside it (JSON); a fit is made
with a command's sampler options and saved with :func:`bayes_sarcoma.model.io.save`, never over
an existing file unless the command says ``--overwrite``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_sarcoma.cli.console import CommandError, Console
from bayes_sarcoma.data import schema

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")


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


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_registry(df: pd.DataFrame, path: str | Path) -> tuple[Path, Path]:
    """Write a simulated registry and, beside it, its truth as JSON (``<stem>.truth.json``)."""
    out = write_table(df, path)
    truth_path = out.with_suffix(".truth.json")
    truth = {"truth": df.attrs["truth"], "simulation": df.attrs.get("simulation", {})}
    truth_path.write_text(json.dumps(truth, indent=1, default=_json_default))
    return out, truth_path


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
    from bayes_sarcoma.model import io

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
            random_seed=args.random_seed,
            sampler=args.sampler,
            target_accept=args.target_accept,
            progressbar=console.progressbar,
        )
    io.save(dt, out, overwrite=args.overwrite)
    return dt
