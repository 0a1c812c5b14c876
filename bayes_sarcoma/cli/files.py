"""The files the ``bayes-sarcoma`` commands write.

Tables are read with :func:`bayes_sarcoma.data.files.read_table` (CSV/TSV, Excel, Parquet,
SAS, Stata; errors that name the file, the cause and the fix) and written here to CSV/TSV
(dates in ISO format, ``2012-03-31``) or Parquet; a simulated registry is written with its
truth beside it (JSON); a fit is made with a command's sampler options and saved with
:func:`bayes_sarcoma.model.io.save`, never over an existing file unless the command says
``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_sarcoma.cli.console import CommandError, Console

#: The extensions tables are written with.
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")


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
