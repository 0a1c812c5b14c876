"""Read a table from a file, with errors that name the file, the cause and the fix.

:func:`read_table` reads the formats a registry comes in, chosen by the file's extension:

- ``.csv``, ``.txt`` (``,`` expected) and ``.tsv``, ``.tab`` (tab expected): text, with
  ``pandas.read_csv``;
- ``.xlsx``, ``.xlsm`` (needs ``openpyxl``), ``.xls`` (``xlrd``), ``.ods`` (``odfpy``):
  the first sheet, with ``pandas.read_excel``;
- ``.parquet``, ``.pq`` (``pyarrow``, a dependency of the package);
- ``.sas7bdat``, ``.xpt`` (SAS) and ``.dta`` (Stata), with pandas alone.

A problem is a :class:`~bayes_sarcoma.data.errors.TableFileError` (a ``ValueError``) whose
message names the file, what is wrong and what to do: a missing file (with the closest
name in its folder), a folder, an empty file, a file that is not a table (binary, an
Excel workbook or a Parquet file under a text extension, prose, lines of unequal length),
a reader whose optional package is not installed (the package to install), dates that do
not parse.

Text files are read leniently where the intent is clear, and every such choice is said
in a :class:`~bayes_sarcoma.data.errors.TableReadNote` warning (the command line prints
it as ``bayes-sarcoma: warning: ...``):

- **Separator.** The first lines are parsed with ``,``, ``;``, tab and ``|``; the
  separator that gives every line the same number of fields (more than one) is used,
  the extension's own (``,`` for ``.csv``, tab for ``.tsv``) when it qualifies. A
  ``;``-separated ``.csv`` (French spreadsheets' default) is therefore read correctly,
  with a note, and with ``,`` as the decimal mark when its numbers are written ``8,5``.
- **Encoding.** UTF-8 (with or without a byte-order mark) is tried first, then
  Windows-1252 (Western European; Latin-1 where a byte is undefined in it); the note says
  which encoding was used and where the first non-UTF-8 byte is. A UTF-16 file (Excel's
  "Unicode text") is recognised by its byte-order mark. ``encoding=`` (``--encoding``)
  overrides the guess.
- **Whole numbers written 3.0.** A column read as floats whose values are all whole,
  some written ``3`` and some ``3.0``, is read as integers, and the note names the rows
  written with a decimal point. (A column whose every value is written ``3.0`` stays a
  float column.)
- **Dates.** The registry's date columns (``schema.DATE_COLUMNS``) are parsed: ISO 8601
  (``2012-03-31``) or, when every value has one of the layouts ``31/03/2012``,
  ``31.03.2012``, ``31-03-2012`` or ``2012/03/31``, day-first or month-first as the
  values show (a day above 12 in the first place means day-first; in the second place,
  month-first). When no value tells (every day number is 12 or less) the reader refuses
  to guess and asks for the format (``date_format=``, ``--date-format``). Values that do
  not parse with the format found or given are an error naming their rows.

Examples
--------
>>> from bayes_sarcoma.data.files import read_table
>>> df = read_table("registry.csv")                                    # doctest: +SKIP
>>> df = read_table("export.csv", date_format="%d/%m/%Y")              # doctest: +SKIP
"""

from __future__ import annotations

import codecs
import csv
import difflib
import importlib.util
import io
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_sarcoma.data import schema
from bayes_sarcoma.data.errors import TableFileError, TableReadNote

__all__ = ["READ_SUFFIXES", "read_table"]

TEXT_SUFFIXES = {".csv": ",", ".txt": ",", ".tsv": "\t", ".tab": "\t"}
#: Extension -> (format name, optional package it needs, its pip name).
BINARY_SUFFIXES = {
    ".xlsx": ("an Excel workbook", "openpyxl", "openpyxl"),
    ".xlsm": ("an Excel workbook", "openpyxl", "openpyxl"),
    ".xls": ("an Excel 97-2003 workbook", "xlrd", "xlrd"),
    ".ods": ("an OpenDocument spreadsheet", "odf", "odfpy"),
    ".parquet": ("a Parquet file", "pyarrow", "pyarrow"),
    ".pq": ("a Parquet file", "pyarrow", "pyarrow"),
    ".sas7bdat": ("a SAS data set", None, None),
    ".xpt": ("a SAS transport file", None, None),
    ".dta": ("a Stata data set", None, None),
}
#: Every extension :func:`read_table` reads.
READ_SUFFIXES = (*TEXT_SUFFIXES, *BINARY_SUFFIXES)
SEPARATORS = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}
#: Bytes looked at to recognise the format, separator and encoding.
HEAD_BYTES = 64 * 1024
#: Lines of the head parsed to find the separator.
SNIFF_LINES = 50
#: Leading bytes of files that are not text tables, and what they are.
MAGIC = (
    (b"PK\x03\x04", "a zip archive (an .xlsx Excel workbook is one)", ".xlsx"),
    (b"\xd0\xcf\x11\xe0", "an Excel 97-2003 workbook (or another OLE2 file)", ".xls"),
    (b"PAR1", "a Parquet file", ".parquet"),
    (b"%PDF", "a PDF document", None),
    (b"\x1f\x8b", "a gzip archive", None),
    (b"<stata_dta>", "a Stata data set", ".dta"),
    (b"{\\rtf", "an RTF document", None),
)
DATE_LAYOUTS = (
    # (pattern, day-first format, month-first format); ISO 8601 (2012-03-31, 2012/03/31)
    # is tried first.
    (re.compile(r"^\d{1,2}/\d{1,2}/\d{4}$"), "%d/%m/%Y", "%m/%d/%Y"),
    (re.compile(r"^\d{1,2}\.\d{1,2}\.\d{4}$"), "%d.%m.%Y", "%m.%d.%Y"),
    (re.compile(r"^\d{1,2}-\d{1,2}-\d{4}$"), "%d-%m-%Y", "%m-%d-%Y"),
)
#: Dates texts that mean "no date".
NO_DATE = {"", "nat", "nan", "na", "none", "null"}


def read_table(
    path: str | Path,
    *,
    date_format: str | None = None,
    dayfirst: bool | None = None,
    encoding: str | None = None,
) -> pd.DataFrame:
    r"""Read a table from a file (format by extension); registry date columns become datetimes.

    See the module docstring for the formats and for what is detected in text files.
    Nothing is dropped: the values are those of the file, and the checks of the data
    (:func:`~bayes_sarcoma.data.validation.validate_registry`, a model's ``prepare``) come
    after.

    Parameters
    ----------
    path : str or pathlib.Path
        The file.
    date_format : str, optional
        The ``strftime`` format of the registry date columns, e.g. ``"%d/%m/%Y"``. Default:
        ISO 8601, or the day-first or month-first layout the values show.
    dayfirst : bool, optional
        For ``31/03/2012``-like dates: True reads day/month/year, False month/day/year,
        None (default) decides from the values and refuses to guess when they do not tell.
        Ignored when ``date_format`` is given.
    encoding : str, optional
        The text encoding of a text file (default: UTF-8, else Windows-1252, with a note).

    Returns
    -------
    pandas.DataFrame
        The table; columns named in ``schema.DATE_COLUMNS`` as ``datetime64``.

    Raises
    ------
    TableFileError
        When the file cannot be read as a table; the message names the file, the cause and
        the fix.

    Warns
    -----
    TableReadNote
        When a text file was read with another separator, decimal mark or encoding than
        the default, when integers written ``3.0`` were read as integers, when dates were
        read day-first or month-first, or when a workbook has more than one sheet.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "t.csv").write_text("id;age;size\nP1;54;8,5\nP2;61;4\n")
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as notes:
    ...     warnings.simplefilter("always")
    ...     df = read_table(folder / "t.csv")
    >>> df["size"].tolist()
    [8.5, 4.0]
    >>> "';'-separated" in str(notes[0].message)
    True
    >>> read_table(folder / "t.cvs")
    Traceback (most recent call last):
    ...
    bayes_sarcoma.data.errors.TableFileError: ...t.cvs: no such file; did you mean 't.csv'?
    """
    path = Path(path)
    suffix = _check_file(path)
    if suffix in TEXT_SUFFIXES:
        df = _read_text(path, TEXT_SUFFIXES[suffix], encoding)
    else:
        df = _read_binary(path, suffix)
    if df.shape[1] == 0:
        raise TableFileError(path, "the file holds no columns", "export the table again")
    if len(df) == 0:
        names = ", ".join(map(str, df.columns[:5])) + (", ..." if df.shape[1] > 5 else "")
        raise TableFileError(
            path, f"the file has column names ({names}) but no rows", "export the rows too"
        )
    return _parse_dates(df, path, date_format=date_format, dayfirst=dayfirst)


# -- the path ----------------------------------------------------------------------------------
def _check_file(path: Path) -> str:
    """Raise unless ``path`` is a non-empty file with an extension read here; return it."""
    _check_path(path)
    suffix = path.suffix.lower()
    if suffix not in READ_SUFFIXES:
        raise TableFileError(
            path,
            f"cannot read {suffix or 'a file without an extension'} files",
            f"save the table as one of {', '.join(READ_SUFFIXES)} (the extension says the format)",
        )
    if path.stat().st_size == 0:
        raise TableFileError(path, "the file is empty (0 bytes)", "export or copy the table again")
    return suffix


def _check_path(path: Path) -> None:
    if path.is_dir():
        if path.suffix.lower() in (".zarr", ".nc"):
            raise TableFileError(
                path, "is a folder (a saved fit?), not a table", "give the table's file"
            )
        inside = sorted(p.name for p in path.iterdir() if p.suffix.lower() in READ_SUFFIXES)
        fix = f"give a file in it, e.g. {path / inside[0]}" if inside else "give the table's file"
        raise TableFileError(path, "is a folder, not a table file", fix)
    if path.exists() and not path.is_file():
        raise TableFileError(path, "is not a regular file", "give the table's file")
    if path.exists():
        try:
            with path.open("rb"):
                pass
        except PermissionError:
            raise TableFileError(
                path, "cannot be opened: permission denied", "check the file's permissions"
            ) from None
        return
    folder = path.parent
    if not folder.is_dir():
        raise TableFileError(
            path, "no such file", f"the folder {folder} does not exist; check the path"
        )
    names = [p.name for p in folder.iterdir() if p.is_file()]
    close = difflib.get_close_matches(path.name, names, n=1, cutoff=0.6)
    fix = f"did you mean {close[0]!r}?" if close else f"check the path (looked in {folder})"
    raise TableFileError(path, "no such file", fix)


# -- text files --------------------------------------------------------------------------------
def _note(message: str) -> None:
    warnings.warn(message, TableReadNote, stacklevel=3)


def _head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(HEAD_BYTES)


def _refuse_non_text(path: Path, head: bytes) -> None:
    for magic, what, suffix in MAGIC:
        if head.startswith(magic):
            fix = (
                f"rename it with the {suffix} extension if that is what it is"
                if suffix
                else "export the table as CSV"
            )
            raise TableFileError(path, f"is not a text table: it is {what}", fix)
    lower = head[:512].lstrip().lower()
    if lower.startswith((b"<!doctype html", b"<html")):
        raise TableFileError(
            path,
            "is not a table: it is an HTML page (a download that saved the web page?)",
            "download the table file itself",
        )
    if b"\x00" in head:
        raise TableFileError(
            path,
            "is not a text table: it holds binary data (NUL bytes)",
            "export it as CSV, or give it the extension of its format "
            f"({', '.join(READ_SUFFIXES)})",
        )


def _bom_encoding(head: bytes) -> str | None:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def _sniff(text: str, expected: str, truncated: bool) -> tuple[str | None, str, int]:
    """Return the separator, decimal mark and number of columns found in the head ``text``.

    A separator qualifies when it splits the first line into more than one field and at
    least 80% of the first lines into as many. The extension's own separator wins when it
    qualifies; else the one that fits most lines, then splits into most fields. None when
    none qualifies.
    """
    lines = text.splitlines()
    if truncated and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut
    sample = "\n".join([line for line in lines if line.strip()][:SNIFF_LINES])
    scores = {}
    for sep in SEPARATORS:
        try:
            counts = [len(row) for row in csv.reader(io.StringIO(sample), delimiter=sep)]
        except csv.Error:
            continue
        if counts and counts[0] > 1:
            share = np.mean([n == counts[0] for n in counts])
            if share >= 0.8:
                scores[sep] = (sep == expected, share, counts[0])
    if not scores:
        return None, ".", 1
    best = max(scores, key=scores.get)
    decimal = "."
    if best != ",":
        fields = [f.strip() for row in csv.reader(io.StringIO(sample), delimiter=best) for f in row]
        if any(re.fullmatch(r"[+-]?\d+,\d+", f) for f in fields) and not any(
            re.fullmatch(r"[+-]?\d+\.\d+", f) for f in fields
        ):
            decimal = ","
    return best, decimal, scores[best][2]


def _first_bad_utf8(path: Path) -> tuple[int, bytes]:
    """Return the line of the first byte that is not UTF-8, and the bytes around it."""
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        start = err.start
        return raw.count(b"\n", 0, start) + 1, raw[max(0, start - 20) : start + 20]
    return 0, b""


def _read_csv(path: Path, sep: str, decimal: str, encoding: str, head_text: str) -> pd.DataFrame:
    try:
        # round_trip: the numbers pandas wrote come back bit for bit (the default C parser
        # can be off by an ulp, which would change fits and data fingerprints).
        return pd.read_csv(
            path, sep=sep, decimal=decimal, encoding=encoding, float_precision="round_trip"
        )
    except pd.errors.EmptyDataError:
        raise TableFileError(
            path, "the file holds no table (only blank lines)", "export the table again"
        ) from None
    except pd.errors.ParserError as err:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(err))
        if not found:
            raise TableFileError(
                path, f"is not a readable table ({err})", "export the table again"
            ) from None
        want, line, saw = found.groups()
        raise TableFileError(
            path,
            f"is not a table read with {SEPARATORS[sep]} as separator: line {line} has {saw} "
            f"fields where the lines before have {want}",
            f"if it is a table, check line {line} (a separator inside an unquoted value, or a "
            "stray line)",
        ) from None


def _read_text(path: Path, expected: str, encoding: str | None) -> pd.DataFrame:
    head = _head(path)
    bom = _bom_encoding(head)
    if bom is None:
        _refuse_non_text(path, head)
    given = encoding or bom
    try:
        head_text = head.decode(given or "utf-8", errors="replace")
    except LookupError:
        raise TableFileError(
            path, f"unknown encoding {encoding!r}", "use e.g. utf-8, cp1252, latin-1 or utf-16"
        ) from None
    if not head_text.strip():
        raise TableFileError(
            path, "the file holds no table (only blank lines)", "export the table again"
        )
    sep, decimal, n_fields = _sniff(head_text, expected, len(head) == HEAD_BYTES)
    first = head_text.strip().splitlines()[0]
    if sep is None and len(first.split()) >= 4:
        raise TableFileError(
            path,
            "is not a table: its first lines do not split into the same number of columns "
            f"with ',', ';', tab or '|'; it starts {first[:60]!r}",
            "give a table: a header line of column names, then one line per patient",
        )
    sep = sep or expected
    notes = []
    if bom and not encoding:
        notes.append("it is UTF-16 text (as Excel saves 'Unicode text')")
    if sep != expected:
        name = {";": "';'-separated (as French spreadsheets save CSV)"}.get(
            sep, f"{SEPARATORS[sep]}-separated"
        )
        notes.append(
            f"read it as {name}, not {SEPARATORS[expected]}-separated: {SEPARATORS[sep]} splits "
            f"its first lines into {n_fields} columns"
        )
    if decimal == ",":
        notes.append("read numbers with ',' as the decimal mark (8,5 = 8.5)")
    used = given or "utf-8"
    try:
        df = _read_csv(path, sep, decimal, used, head_text)
    except UnicodeDecodeError:
        line, around = _first_bad_utf8(path)
        if given:
            raise TableFileError(
                path,
                f"is not {given} text (line {line} holds a byte that is not valid in it)",
                "pass the file's encoding with --encoding (encoding=), e.g. utf-8, cp1252, "
                "latin-1 or utf-16",
            ) from None
        try:
            used = "cp1252"
            df = _read_csv(path, sep, decimal, used, head_text)
        except UnicodeDecodeError:
            used = "latin-1"  # decodes any byte
            df = _read_csv(path, sep, decimal, used, head_text)
        shown = around.decode(used, errors="replace").replace("\r", "\n").split("\n")
        shown = max(shown, key=len).strip()
        name = "Windows Western European" if used == "cp1252" else "Latin-1"
        notes.append(
            f"it is not UTF-8 (line {line} holds {shown!r} in another encoding): read it as "
            f"{used} ({name}); if accented letters look wrong, pass the file's encoding with "
            "--encoding (encoding=), e.g. latin-1, cp1252 or utf-16"
        )
    df, whole = _whole_numbers(df, path, sep, decimal, used)
    notes += whole
    if notes:
        _note(f"{path}: " + "; ".join(notes))
    return df


def _whole_numbers(
    df: pd.DataFrame, path: Path, sep: str, decimal: str, encoding: str
) -> tuple[pd.DataFrame, list[str]]:
    """Read float columns of whole numbers written partly ``3`` and partly ``3.0`` as integers."""
    candidates = [
        c
        for c in df.columns
        if pd.api.types.is_float_dtype(df[c].dtype)
        and df[c].notna().all()
        and np.array_equal(df[c].to_numpy(), np.round(df[c].to_numpy()))
        and np.abs(df[c].to_numpy()).max() < 2**53
    ]
    if not candidates:
        return df, []
    try:
        texts = pd.read_csv(path, sep=sep, encoding=encoding, usecols=candidates, dtype=str)
    except (ValueError, pd.errors.ParserError):  # e.g. duplicated column names
        return df, []
    notes = []
    for c in candidates:
        written = texts[c].str.strip()
        plain = written.str.fullmatch(r"[+-]?\d+").to_numpy(dtype=bool)
        if plain.all() or not plain.any():
            continue
        rows = _rows(df, ~plain)
        shown = ", ".join(
            f"{r}: {v!r}" for r, v in zip(rows[:3], written[~plain][:3], strict=False)
        )
        more = f" and {len(rows) - 3} more" if len(rows) > 3 else ""
        notes.append(
            f"column '{c}' holds whole numbers, {int((~plain).sum())} of them written with a "
            f"decimal point ({shown}{more}): read them as integers"
        )
        df[c] = df[c].astype("int64")
    return df, notes


def _rows(df: pd.DataFrame, mask: np.ndarray) -> list[str]:
    """Name rows: by ``patient_id`` when the table has it, else by their row in the file."""
    if schema.PATIENT_ID in df.columns:
        return [str(v) for v in df[schema.PATIENT_ID].to_numpy()[mask]]
    return [f"row {i + 2}" for i in np.flatnonzero(mask)]


# -- other formats -----------------------------------------------------------------------------
def _read_binary(path: Path, suffix: str) -> pd.DataFrame:
    what, module, package = BINARY_SUFFIXES[suffix]
    readers: dict[str, Callable[[Path], pd.DataFrame]] = {
        ".parquet": pd.read_parquet,
        ".pq": pd.read_parquet,
        ".sas7bdat": lambda p: pd.read_sas(p, format="sas7bdat"),
        ".xpt": lambda p: pd.read_sas(p, format="xport"),
        ".dta": pd.read_stata,
    }
    head = _head(path)
    # A text table under a binary extension (a CSV renamed .xlsx, say): lines, no NUL.
    text_like = b"\x00" not in head and b"\n" in head[:4096]
    missing = module is not None and importlib.util.find_spec(module) is None
    try:
        if missing:
            # A text file under this extension is named as such, installed package or not.
            raise (ValueError("text") if text_like else ImportError(module))
        df = readers[suffix](path) if suffix in readers else _read_workbook(path, suffix)
    except ImportError:
        raise TableFileError(
            path,
            f"reading {what} ({suffix}) needs the optional package {package}, which is not "
            "installed",
            f"pip install {package} (or save the table as CSV)",
        ) from None
    except Exception as err:  # the readers raise many kinds for a file of another format
        if text_like:
            cause = f"is text, not {what} as its extension {suffix} says"
            fix = "rename it .csv (or .tsv) if it is a table"
        else:
            cause = f"could not be read as {what} ({type(err).__name__}: {err})"
            fix = "check that it is one, or export it again (or as CSV)"
        raise TableFileError(path, cause, fix) from None
    if module is None:
        df = _decode_bytes(df)
    return df


def _read_workbook(path: Path, suffix: str) -> pd.DataFrame:
    engine = {".xls": "xlrd", ".ods": "odf"}.get(suffix, "openpyxl")
    with pd.ExcelFile(path, engine=engine) as book:
        sheets = book.sheet_names
        df = book.parse(sheets[0])
    if len(sheets) > 1:
        others = ", ".join(repr(s) for s in sheets[1:4]) + (", ..." if len(sheets) > 4 else "")
        _note(
            f"{path}: read its first sheet, {sheets[0]!r}; it has {len(sheets)} sheets "
            f"(also {others}): save the sheet you mean as CSV if it is another"
        )
    return df


def _decode_bytes(df: pd.DataFrame) -> pd.DataFrame:
    """SAS files hold text as bytes: decode it (UTF-8, else Latin-1)."""
    for c in df.columns:
        if df[c].dtype == object and df[c].map(lambda v: isinstance(v, bytes)).any():

            def decode(v):
                if not isinstance(v, bytes):
                    return v
                try:
                    return v.decode("utf-8")
                except UnicodeDecodeError:
                    return v.decode("latin-1")

            df[c] = df[c].map(decode)
    return df


# -- dates -------------------------------------------------------------------------------------
def _date_texts(df: pd.DataFrame) -> dict[str, pd.Series]:
    """Return the registry date columns to parse: their values as text, missing dropped."""
    out = {}
    for c in schema.DATE_COLUMNS:
        if c not in df.columns or pd.api.types.is_datetime64_any_dtype(df[c].dtype):
            continue
        s = df[c]
        if s.isna().all():
            out[c] = pd.Series([], dtype=object)
        elif s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            text = s.dropna().astype(str).str.strip()
            out[c] = text[~text.str.lower().isin(NO_DATE)]
    return out


def _unique(values: pd.Series) -> pd.Series:
    return pd.Series(pd.unique(values.to_numpy()), dtype=object)


def _is_iso(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, format="ISO8601", errors="coerce").notna()


def _layout(values: pd.Series) -> tuple[re.Pattern, str, str] | None:
    """Return the day/month layout most of ``values`` have, or None."""
    for pattern, first, second in DATE_LAYOUTS:
        if len(values) and values.str.fullmatch(pattern.pattern).mean() >= 0.5:
            return pattern, first, second
    return None


def _choose_formats(
    path: Path, texts: dict[str, pd.Series], dayfirst: bool | None
) -> tuple[dict[str, str], str]:
    """Return each date column's format, and a note when the day/month order was inferred.

    A column is ISO 8601 when most of its values are; else it has a day/month layout
    (``31/03/2012``), whose order comes from ``dayfirst`` or from the values of every such
    column together (a file holds one convention).
    """
    formats: dict[str, str] = {}
    layouts: dict[str, tuple[re.Pattern, str, str]] = {}
    for c, values in texts.items():
        values = _unique(values)
        if values.empty or _is_iso(values).mean() >= 0.5:
            formats[c] = "ISO8601"  # the values that do not parse are named by the caller
        elif found := _layout(values):
            layouts[c] = found
        else:
            example = values[~_is_iso(values)].iloc[0]
            raise TableFileError(
                path,
                f"cannot tell the format of the dates of {c} (e.g. {example!r})",
                "give it with --date-format (date_format=), e.g. %d/%m/%Y, or write the "
                "dates as 2012-03-31",
            )
    if not layouts:
        return formats, ""
    if dayfirst is not None:
        return {**formats, **{c: lay[1 if dayfirst else 2] for c, lay in layouts.items()}}, ""
    day_first, month_first = [], []
    for c, (pattern, _, _) in layouts.items():
        values = _unique(texts[c])
        values = values[values.str.fullmatch(pattern.pattern)]
        parts = values.str.split(r"[/.-]", regex=True, expand=True).astype(int)
        day_first += values[(parts[0] > 12).to_numpy()].tolist()[:1]
        month_first += values[(parts[1] > 12).to_numpy()].tolist()[:1]
    columns = ", ".join(layouts)
    if day_first and month_first:
        raise TableFileError(
            path,
            f"the dates of {columns} mix day/month/year ({day_first[0]!r}) and month/day/year "
            f"({month_first[0]!r})",
            "write every date one way (ideally 2012-03-31) and read again",
        )
    first, second = next(iter(layouts.values()))[1:]
    if not day_first and not month_first:
        example = texts[next(iter(layouts))].iloc[0]
        raise TableFileError(
            path,
            f"the dates of {columns} could be day/month/year or month/day/year: no day "
            f"number is above 12 (e.g. {example!r})",
            f"say which with --date-format (date_format=) {first} or {second}",
        )
    which = 1 if day_first else 2
    chosen = {c: lay[which] for c, lay in layouts.items()}
    order, shown = (
        ("day/month/year", day_first[0]) if day_first else ("month/day/year", month_first[0])
    )
    note = f"read the dates of {columns} as {order} (e.g. {shown!r})"
    return {**formats, **chosen}, note


def _parse_dates(
    df: pd.DataFrame, path: Path, *, date_format: str | None, dayfirst: bool | None
) -> pd.DataFrame:
    texts = _date_texts(df)
    if not texts:
        return df
    note = ""
    if date_format is None:
        formats, note = _choose_formats(path, texts, dayfirst)
    else:
        # The format given, except for a column whose every value is ISO 8601.
        formats = {
            c: "ISO8601" if len(v) and _is_iso(_unique(v)).all() else date_format
            for c, v in texts.items()
        }
    bad_columns, parsed = [], {}
    n_bad = n_dates = 0
    for c in texts:
        s = df[c]
        missing = s.isna() | s.astype(str).str.strip().str.lower().isin(NO_DATE)
        try:
            dates = pd.to_datetime(s.where(~missing), format=formats[c], errors="coerce")
        except (ValueError, TypeError) as err:
            raise TableFileError(
                path,
                f"cannot use the date format {formats[c]!r} ({err})",
                "give a strftime format such as %d/%m/%Y",
            ) from None
        bad = (~missing & dates.isna()).to_numpy()
        if bad.any():
            rows = _rows(df, bad)
            shown = ", ".join(
                f"{r}: {v!r}" for r, v in zip(rows[:2], s[bad].iloc[:2], strict=False)
            )
            more = f" and {len(rows) - 2} more" if len(rows) > 2 else ""
            fmt = "ISO 8601 (2012-03-31)" if formats[c] == "ISO8601" else formats[c]
            bad_columns.append(
                f"{c}: {len(rows)} of {int((~missing).sum())} are not {fmt} ({shown}{more})"
            )
            n_bad, n_dates = n_bad + len(rows), n_dates + int((~missing).sum())
        parsed[c] = dates
    if bad_columns:
        fix = "fix or blank those values, or give the dates' format with --date-format"
        if n_bad > n_dates / 2:
            fix = "most of them do not read so: give the dates' format with --date-format"
        raise TableFileError(
            path,
            f"dates that cannot be read: {'; '.join(bad_columns)}",
            fix + " (date_format=), e.g. %d/%m/%Y",
        )
    if note:
        _note(f"{path}: {note}")
    return df.assign(**parsed)
