"""Check a registry against the data contract and report every broken rule at once.

:func:`validate_registry` runs the rules below and raises one
:class:`~bayes_sarcoma.data.errors.RegistryError` listing every problem found (column, rule,
the first offending patient ids and their count, a hint). Nothing is coerced and no row
is dropped: a user fixes the table in one pass, and downstream code can rely on the
dtypes of a validated registry.

Rules run in two stages. *Type rules* check one column's dtype; a column that fails its
type rule is left out of the *value rules* (ranges, categories, date order), so that one
type error is not repeated as a cascade of value errors. Missing values are reported
whatever the dtype.

Dtype policy (deliberately strict; each hint gives the one-line fix):

- ``age``, ``tumor_size_cm`` and derived times: a numeric dtype (not bool, not text).
- ``grade``: an integer dtype with values 1, 2, 3. Floats are rejected even when every
  value is integral (``3.0``), so that a validated registry holds integer codes and
  term labels such as ``grade[3]``. Such a problem names only the rows whose value is
  not a whole code; when every value is one, no row is named (the dtype is wrong, not a
  row).
- ``expert_center`` and derived events: bool, or an integer dtype with values 0/1.
- ``patient_id``, ``center_id``: any dtype, but one type of value (not ``12`` and ``"P3"``).
- dates: a timezone-naive ``datetime64`` dtype; text is rejected with a
  ``pd.to_datetime(..., format=...)`` hint whose format is guessed from the values.

:func:`check_time_column`, :func:`check_event_column` and :func:`check_cluster_column`
apply the same rules to one column of any survival table.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import NamedTuple

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from bayes_sarcoma.data import schema
from bayes_sarcoma.data.errors import Problem, problem_where, raise_if
from bayes_sarcoma.data.timeline import endpoint_arrays

__all__ = [
    "check_cluster_column",
    "check_event_column",
    "check_time_column",
    "validate_registry",
]

Found = Problem | Iterable[Problem | None] | None
Check = Callable[[pd.DataFrame], Found]

ID = schema.PATIENT_ID
AGE_RANGE = (15, 110)  # years, [15, 110)
SIZE_RANGE_CM = (0, 100)  # cm, (0, 100)
EARLIEST_SURGERY = pd.Timestamp("1950-01-01")
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y/%m/%d", "%d-%m-%Y")
#: Slack (months) when checking RFS <= LRFS <= OS on derived times.
TIME_TOLERANCE = 1e-9
#: How far a stored endpoint time may differ from its dates (half a day, in months).
DERIVED_TOLERANCE_MONTHS = 0.5 / schema.DAYS_PER_MONTH


class Rule(NamedTuple):
    """A value rule: runs when ``columns`` are present and, if ``typed``, passed type rules."""

    check: Check
    columns: tuple[str, ...] = ()
    typed: bool = True


# ------------------------------------------------------------------------------ helpers
def _as_list(found: Found) -> list[Problem]:
    if found is None:
        return []
    if isinstance(found, Problem):
        return [found]
    return [p for p in found if p is not None]


def _show(values: Iterable, limit: int = 5) -> str:
    """Return the distinct values, repr'd and sorted, e.g. ``"'R3', 'r0 '"``."""
    found = [v.item() if isinstance(v, np.generic) else v for v in pd.unique(pd.Series(values))]
    found = sorted(found, key=str)
    text = ", ".join(repr(v) for v in found[:limit])
    return text + (f" and {len(found) - limit} more" if len(found) > limit else "")


def _is_text(s: pd.Series) -> np.ndarray:
    return s.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)


def _numbers(df: pd.DataFrame, column: str) -> np.ndarray:
    return df[column].to_numpy(dtype="float64", na_value=np.nan)


# --------------------------------------------------------------------------- type rules
def _numeric_type(df: pd.DataFrame, column: str, id_column: str | None = ID) -> Problem | None:
    s = df[column]
    if ptypes.is_numeric_dtype(s.dtype) and not ptypes.is_bool_dtype(s.dtype):
        return None
    present = s.notna().to_numpy()
    rule = f"{column} must have a numeric dtype, not {s.dtype}"
    if not _is_text(s).any():
        return problem_where(df, column, present, rule, id_column=id_column)
    convert = f"df['{column}'] = pd.to_numeric(df['{column}'])"
    bad = present & pd.to_numeric(s, errors="coerce").isna().to_numpy()
    if bad.any():
        rule = f"{column} must be numeric; found text that is not a number: {_show(s[bad])}"
        hint = f"fix or blank those values, then convert with {convert}"
        return problem_where(df, column, bad, rule, id_column=id_column, hint=hint)
    hint = f"numbers are stored as text: convert with {convert}"
    return problem_where(df, column, present, rule, id_column=id_column, hint=hint)


def _coded_type(
    df: pd.DataFrame,
    column: str,
    levels: Sequence[int],
    allow_bool: bool,
    id_column: str | None = ID,
) -> Problem | None:
    """Type rule of an integer-coded column (grade, 0/1 flags): integer or bool dtype."""
    s = df[column]
    is_bool = ptypes.is_bool_dtype(s.dtype) or (
        s.dtype == object and ptypes.infer_dtype(s, skipna=True) == "boolean"
    )
    if ptypes.is_integer_dtype(s.dtype) or (allow_bool and is_bool):
        return None
    kind = "bool or integer" if allow_bool else "integer"
    codes = "/".join(str(v) for v in levels)
    rule = f"{column} must have {kind} dtype with values {codes}, not {s.dtype}"
    present = s.notna().to_numpy()
    hint = f"convert with df['{column}'].astype('int64') once no value is missing"
    if ptypes.is_float_dtype(s.dtype):
        # Only the values that are not whole codes break the rule. When every value is one
        # (1.0, 2.0, 3.0), no row is wrong, the column's dtype is: a missing value, or one
        # value written ``3.0`` in a file, makes pandas read the whole column as floats.
        bad = present & ~np.isin(_numbers(df, column), np.asarray(levels, dtype=float))
        if bad.any():
            rule += f"; found {_show(s[bad])}"
            return problem_where(df, column, bad, rule, id_column=id_column, hint=hint)
        rule += " (every value is a whole code: no row is wrong, the column's dtype is)"
        hint = (
            "a missing value, or a value written as 3.0 in a file, makes pandas read integer "
            f"codes as floats; {hint}"
        )
        return Problem(column, rule, hint=hint)
    if _is_text(s).any():
        rule += f"; found {_show(s[present])}"
        if pd.to_numeric(s[present], errors="coerce").notna().all():
            hint = f"numbers are stored as text: convert with pd.to_numeric(df['{column}'])"
        else:
            hint = f"map the text to {codes} explicitly with df['{column}'].map({{...}})"
    return problem_where(df, column, present, rule, id_column=id_column, hint=hint)


def _guess_date_format(texts: pd.Series) -> str | None:
    sample = texts.head(1000)
    for fmt in DATE_FORMATS:
        if len(sample) and pd.to_datetime(sample, format=fmt, errors="coerce").notna().all():
            return fmt
    return None


def _date_type(df: pd.DataFrame, column: str) -> Problem | None:
    s = df[column]
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        rule = f"{column} must be timezone-naive datetime64, not {s.dtype}"
        hint = f"drop the time zone with df['{column}'].dt.tz_localize(None)"
        return problem_where(df, column, s.notna(), rule, hint=hint)
    if ptypes.is_datetime64_dtype(s.dtype):
        return None
    present = s.notna().to_numpy()
    rows = present if present.any() else np.ones(len(s), dtype=bool)  # all-missing column
    fmt = _guess_date_format(s[present & _is_text(s)])
    fmt_arg = f", format={fmt!r}" if fmt else ", format=... (your date format)"
    if not _is_text(s).any():
        fmt_arg = ""
    hint = f"convert with df['{column}'] = pd.to_datetime(df['{column}']{fmt_arg})"
    if ptypes.is_numeric_dtype(s.dtype) and not ptypes.is_bool_dtype(s.dtype) and present.any():
        # Plain numbers are ambiguous: pd.to_datetime reads them as nanoseconds since 1970.
        hint = (
            f"numbers are not dates: if they are spreadsheet serial days, convert with "
            f"df['{column}'] = pd.to_datetime(df['{column}'], unit='D', origin='1899-12-30'); "
            "if they are Unix timestamps, pass the matching unit= (e.g. unit='s')"
        )
    rule = f"{column} must have a datetime64 dtype, not {s.dtype}"
    return problem_where(df, column, rows, rule, hint=hint)


def _single_type(df: pd.DataFrame, column: str, id_column: str | None = ID) -> Problem | None:
    """Ids hold one type of value: ``12`` and ``"12"`` would silently be two ids."""
    s = df[column]
    if s.dtype != object or not ptypes.infer_dtype(s, skipna=True).startswith("mixed"):
        return None
    kinds = s.map(lambda v: type(v).__name__, na_action="ignore")
    bad = s.notna().to_numpy() & (kinds != kinds.mode().iloc[0]).to_numpy()
    rule = f"{column} must hold ids of one type; found {', '.join(sorted(kinds.dropna().unique()))}"
    hint = f"convert with df['{column}'].astype(str)"
    return problem_where(df, column, bad, rule, id_column=id_column, hint=hint)


# -------------------------------------------------------------------------- value rules
def _not_missing(df: pd.DataFrame, column: str, id_column: str | None = ID) -> Problem | None:
    rule = f"{column} must not be missing"
    if column == id_column:
        id_column, rule = None, rule + " (rows named by index)"
    elif column in schema.REQUIRED_COLUMNS:
        rule += " (only the relapse and death dates may be)"
    return problem_where(df, column, df[column].isna(), rule, id_column=id_column)


def _unique_ids(df: pd.DataFrame) -> Problem | None:
    s = df[ID]
    repeated = s.duplicated(keep="first") & s.notna()
    return problem_where(df, ID, repeated, "patient_id must be unique (repeated ids shown)")


def _finite(df: pd.DataFrame, column: str, id_column: str | None = ID) -> Problem | None:
    inf = np.isinf(_numbers(df, column))
    return problem_where(df, column, inf, f"{column} must be finite, not inf", id_column=id_column)


def _non_negative(df: pd.DataFrame, column: str, id_column: str | None = ID) -> Problem | None:
    negative = _numbers(df, column) < 0
    return problem_where(df, column, negative, f"{column} must be >= 0", id_column=id_column)


def _age_range(df: pd.DataFrame, column: str = "age") -> Problem | None:
    low, high = AGE_RANGE
    x = _numbers(df, column)
    rule = f"{column} must be >= {low} and < {high} years (plausible range)"
    hint = "the registry includes patients aged 15 or older" if (x < low).any() else ""
    bad = ((x < low) | (x >= high)) & np.isfinite(x)  # inf is reported by _finite
    return problem_where(df, column, bad, rule, hint=hint)


def _size_range(df: pd.DataFrame, column: str = "tumor_size_cm") -> Problem | None:
    low, high = SIZE_RANGE_CM
    x = _numbers(df, column)
    rule = f"{column} must be > {low} and < {high} cm (plausible range)"
    bad = ((x <= low) | (x >= high)) & np.isfinite(x)
    mm = (x[bad] >= high).any()
    hint = f"sizes of {high} or more look like millimetres: divide by 10" if mm else ""
    return problem_where(df, column, bad, rule, hint=hint)


def _levels(
    df: pd.DataFrame, column: str, levels: Sequence, id_column: str | None = ID
) -> Problem | None:
    s = df[column]
    bad = (s.notna() & ~s.isin(levels)).to_numpy()
    if not bad.any():
        return None
    unknown = s[bad]
    rule = f"{column} must be one of {', '.join(map(repr, levels))}; found {_show(unknown)}"
    spelled = {str(v).casefold(): v for v in levels}
    near = [
        f"{v!r} -> {spelled[v.strip().casefold()]!r}"
        for v in pd.unique(unknown)
        if isinstance(v, str) and v.strip().casefold() in spelled
    ]
    hint = f"fix case/whitespace (not corrected silently): {', '.join(near[:5])}" if near else ""
    return problem_where(df, column, bad, rule, id_column=id_column, hint=hint)


def _expert_constant(df: pd.DataFrame) -> Problem | None:
    flag, centre = df[schema.EXPERT], df[schema.CENTER_ID].to_numpy()  # nunique skips NaN
    varies = (flag.groupby(centre, sort=False).transform("nunique") > 1).to_numpy()
    if not varies.any():
        return None
    majority = flag[varies].groupby(centre[varies]).transform(lambda v: v.mode().iloc[0])
    bad = np.zeros(len(df), dtype=bool)
    bad[varies] = (flag[varies] != majority).to_numpy() & flag[varies].notna().to_numpy()
    rule = (
        "expert_center must be constant within a centre (it is a centre attribute); "
        f"it varies within centre(s) {_show(centre[varies])}"
    )
    hint = "the rows named differ from the majority of their centre"
    return problem_where(df, schema.EXPERT, bad, rule, hint=hint)


def _not_before(df: pd.DataFrame, column: str, other: str, hint: str = "") -> Problem | None:
    mask = df[column] < df[other]
    return problem_where(df, column, mask, f"{column} must not be before {other}", hint=hint)


def _not_after(df: pd.DataFrame, column: str, other: str, hint: str = "") -> Problem | None:
    mask = df[column] > df[other]
    return problem_where(df, column, mask, f"{column} must not be after {other}", hint=hint)


def _not_in_future(df: pd.DataFrame, column: str) -> Problem | None:
    today = pd.Timestamp.today().normalize()
    rule = f"{column} must not be in the future (after today, {today.date()})"
    return problem_where(df, column, df[column] >= today + np.timedelta64(1, "D"), rule)


def _plausible_surgery(df: pd.DataFrame, column: str = schema.SURGERY_DATE) -> Problem | None:
    rule = f"{column} must be on or after {EARLIEST_SURGERY.date()} (plausible)"
    hint = "an early year is usually a typo or a placeholder for an unknown date"
    return problem_where(df, column, df[column] < EARLIEST_SURGERY, rule, hint=hint)


def _derived_pairs(df: pd.DataFrame) -> list[Problem]:
    found = []
    for time, event in schema.ENDPOINTS.values():
        if (time in df.columns) != (event in df.columns):
            have, lack = (time, event) if time in df.columns else (event, time)
            found.append(Problem(lack, f"{have} is present without {lack}: they come in pairs"))
    return found


def _time_nests(df: pd.DataFrame, column: str, other: str) -> Problem | None:
    """RFS ends no later than LRFS, which ends no later than OS."""
    a, b = _numbers(df, column), _numbers(df, other)
    late = (a > b + TIME_TOLERANCE) & np.isfinite(a) & np.isfinite(b)
    return problem_where(df, column, late, f"{column} must be <= {other} (RFS <= LRFS <= OS)")


def _event_nests(df: pd.DataFrame, column: str, other: str) -> Problem | None:
    """Check events nest: a death ends LRFS too; a local relapse or death ends RFS too."""
    missed = _numbers(df, column) < _numbers(df, other)
    rule = f"{column} must be 1 where {other} is 1 (rfs_event >= lrfs_event >= os_event)"
    return problem_where(df, column, missed, rule)


# -------------------------------------------------------------------------- rule tables
def _each(check: Callable, columns: Iterable[str], *, typed: bool = True, **kw) -> list[Rule]:
    """One rule per column: ``check(df, column=c, **kw)``."""
    return [Rule(partial(check, column=c, **kw), (c,), typed) for c in columns]


def _pairs(check: Callable, columns: Iterable[str], other: str, **kw) -> list[Rule]:
    """One rule per column comparing it with ``other``: ``check(df, column=c, other=other)``."""
    return [Rule(partial(check, column=c, other=other, **kw), (c, other)) for c in columns]


_CATS = schema.CATEGORICAL_COVARIATES
_TIMES = tuple(t for t, _ in schema.ENDPOINTS.values())  # lrfs, rfs, os
_EVENTS = tuple(e for _, e in schema.ENDPOINTS.values())
_SURGERY, _FOLLOWUP = schema.SURGERY_DATE, schema.LAST_FOLLOWUP_DATE
_EVENT_DATES = schema.OPTIONAL_DATE_COLUMNS  # local relapse, distant relapse, death
_RELAPSES = (schema.LOCAL_RELAPSE_DATE, schema.DISTANT_RELAPSE_DATE)
_AFTER_FOLLOWUP = (
    "patients are censored at last follow-up: if the event is confirmed, "
    "set last_followup_date to (at least) its date"
)
_NOT_NULL = tuple(c for c in schema.REQUIRED_COLUMNS if c not in schema.OPTIONAL_DATE_COLUMNS)

#: Column -> type rule. A column failing its type rule is skipped by the value rules.
DATE_TYPE_RULES: dict[str, Check] = {c: partial(_date_type, column=c) for c in schema.DATE_COLUMNS}
TYPE_RULES: dict[str, Check] = {
    ID: partial(_single_type, column=ID),
    schema.CENTER_ID: partial(_single_type, column=schema.CENTER_ID),
    schema.EXPERT: partial(_coded_type, column=schema.EXPERT, levels=(0, 1), allow_bool=True),
    "age": partial(_numeric_type, column="age"),
    "tumor_size_cm": partial(_numeric_type, column="tumor_size_cm"),
    "grade": partial(_coded_type, column="grade", levels=_CATS["grade"], allow_bool=False),
    **DATE_TYPE_RULES,
    **{t: partial(_numeric_type, column=t) for t in _TIMES},
    **{e: partial(_coded_type, column=e, levels=(0, 1), allow_bool=True) for e in _EVENTS},
}

#: Date rules, shared by :func:`validate_registry` and ``derive_endpoints``.
DATE_RULES: tuple[Rule, ...] = (
    *_each(_not_missing, (_SURGERY, _FOLLOWUP), typed=False),
    Rule(_plausible_surgery, (_SURGERY,)),
    *_each(_not_in_future, schema.DATE_COLUMNS),
    *_pairs(_not_before, (_FOLLOWUP,), _SURGERY, hint="check for swapped dates"),
    *_pairs(_not_before, _EVENT_DATES, _SURGERY),
    *_pairs(_not_after, _RELAPSES, schema.DEATH_DATE, hint="no relapse is seen after death"),
    *_pairs(_not_after, _EVENT_DATES, _FOLLOWUP, hint=_AFTER_FOLLOWUP),
)

#: Every value rule of a registry, in the order problems are reported.
RULES: tuple[Rule, ...] = (
    *_each(_not_missing, [c for c in _NOT_NULL if c not in schema.DATE_COLUMNS], typed=False),
    Rule(_unique_ids, (ID,)),
    *_each(_finite, schema.CONTINUOUS_COVARIATES),
    Rule(_age_range, ("age",)),
    Rule(_size_range, ("tumor_size_cm",)),
    *(Rule(partial(_levels, column=c, levels=lv), (c,)) for c, lv in _CATS.items()),
    Rule(partial(_levels, column=schema.EXPERT, levels=(0, 1)), (schema.EXPERT,)),
    Rule(_expert_constant, (schema.EXPERT, schema.CENTER_ID)),
    *DATE_RULES,
    # derived endpoint columns, when present
    Rule(_derived_pairs),
    *_each(_not_missing, (*_TIMES, *_EVENTS), typed=False),
    *_each(_finite, _TIMES),
    *_each(_non_negative, _TIMES),
    *_each(_levels, _EVENTS, levels=(0, 1)),
    Rule(partial(_time_nests, column="rfs_months", other="lrfs_months"), _TIMES),
    Rule(partial(_time_nests, column="lrfs_months", other="os_months"), _TIMES),
    Rule(partial(_event_nests, column="rfs_event", other="lrfs_event"), _EVENTS),
    Rule(partial(_event_nests, column="lrfs_event", other="os_event"), _EVENTS),
)


# ------------------------------------------------------------------------------ running
def _table_problems(df: object) -> list[Problem]:
    """Problems that stop the checks: not a table, no rows, ambiguous column names."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    names = [str(c) for c in df.columns]
    found = [
        Problem(name, "column names must be unique; this one appears more than once")
        for name in sorted({n for n in names if names.count(n) > 1})
    ]
    if len(df) == 0:
        found.append(Problem("<table>", "the table has no rows"))
    return found


def _missing_columns(df: pd.DataFrame, required: Sequence[str]) -> list[Problem]:
    """List missing columns, with a hint when a present one has a close name (difflib)."""
    others = {str(n).casefold(): str(n) for n in df.columns if n not in required}
    found = []
    for column in required:
        if column not in df.columns:
            close = difflib.get_close_matches(column.casefold(), others, n=1, cutoff=0.75)
            hint = f"did you mean {others[close[0]]!r}?" if close else ""
            found.append(Problem(column, "required column is missing", hint=hint))
    return found


def run_rules(
    df: pd.DataFrame,
    *,
    required: Sequence[str] = schema.REQUIRED_COLUMNS,
    type_rules: dict[str, Check] = TYPE_RULES,
    rules: Sequence[Rule] = RULES,
) -> None:
    """Run ``type_rules`` then ``rules`` on ``df``; raise one RegistryError listing all problems.

    Parameters
    ----------
    df : pandas.DataFrame
        The table to check (never modified).
    required : sequence of str
        Columns that must be present.
    type_rules : dict
        Column -> dtype check; a column failing it is skipped by the typed value rules.
    rules : sequence of Rule
        Value rules, each run when its columns are present (and well typed).

    Raises
    ------
    TypeError
        If ``df`` is not a DataFrame.
    RegistryError
        Listing every broken rule.
    """
    fatal = _table_problems(df)
    problems = fatal + _missing_columns(df, required)
    if fatal:
        raise_if(problems)  # no point checking the values of an empty or ambiguous table
    present, untyped = set(df.columns), set()
    for column, check in type_rules.items():
        if column in present and (found := _as_list(check(df))):
            untyped.add(column)
            problems += found
    for rule in rules:
        if set(rule.columns) <= present and not (rule.typed and untyped & set(rule.columns)):
            problems += _as_list(rule.check(df))
    raise_if(problems)


def validate_registry(df: pd.DataFrame) -> pd.DataFrame:
    """Check a registry against the data contract; return a copy or raise listing every problem.

    The rules: required columns present; dtypes (numeric, integer-coded, datetime64, ids of
    one type); no missing values except the relapse and death dates (event not observed);
    unique patient ids; age in [15, 110) years; tumour size in (0, 100) cm; categories
    from ``schema.CATEGORICAL_COVARIATES`` (exact spelling); ``expert_center`` constant
    within a centre; dates in order (no event before surgery, no relapse after death, no
    event after last follow-up, follow-up not before surgery, nothing in the future,
    surgery from 1950); and, when the derived endpoint columns are present, finite times
    >= 0, events 0/1, RFS <= LRFS <= OS and nested events. See the module docstring for
    the dtype policy.

    Parameters
    ----------
    df : pandas.DataFrame
        The registry, one row per patient, with the columns of ``schema.REQUIRED_COLUMNS``
        (and optionally ``schema.DERIVED_COLUMNS``).

    Returns
    -------
    pandas.DataFrame
        A deep copy of ``df``: nothing coerced, no row dropped, ``df`` itself untouched.

    Raises
    ------
    TypeError
        If ``df`` is not a DataFrame.
    RegistryError
        Listing every broken rule: the column, the rule, the first offending patient ids
        with their count, and a hint where one helps.

    Examples
    --------
    >>> import pandas as pd
    >>> from bayes_sarcoma.data.validation import validate_registry
    >>> df = pd.DataFrame({
    ...     "patient_id": ["P1", "P2"], "center_id": ["C1", "C1"],
    ...     "expert_center": [True, True], "age": [54, 10], "sex": ["female", "male"],
    ...     "tumor_size_cm": [8.5, 4.0], "grade": [3, 1], "depth": ["deep", "deep"],
    ...     "margin": ["R0", "R3"],
    ...     "surgery_date": pd.to_datetime(["2012-01-01", "2012-06-01"]),
    ...     "local_relapse_date": pd.to_datetime([None, None]),
    ...     "distant_relapse_date": pd.to_datetime([None, None]),
    ...     "death_date": pd.to_datetime([None, None]),
    ...     "last_followup_date": pd.to_datetime(["2015-01-01", "2014-01-01"]),
    ... })
    >>> validate_registry(df)
    Traceback (most recent call last):
    ...
    bayes_sarcoma.data.errors.RegistryError: 2 problems in the table:
      - column 'age': age must be >= 15 and < 110 years (plausible range) (1 row breaks it: P2). the registry includes patients aged 15 or older
      - column 'margin': margin must be one of 'R0', 'R1', 'R2', 'Rx'; found 'R3' (1 row breaks it: P2)
    >>> df.loc[1, ["age", "margin"]] = [61, "R1"]
    >>> validate_registry(df).shape
    (2, 14)
    """  # noqa: E501
    run_rules(df)
    raise_if(_derived_match_dates(df))
    return df.copy(deep=True)


def _derived_match_dates(df: pd.DataFrame) -> list[Problem]:
    """Check that derived endpoint columns, when present, are what the dates give.

    Run only once every other rule holds (so the dates can be trusted). Times may differ
    by up to :data:`DERIVED_TOLERANCE_MONTHS` (half a day) for rounding.
    """
    if not set(schema.DERIVED_COLUMNS) & set(df.columns):
        return []
    expected = endpoint_arrays(df)
    found = []
    for time, event in schema.ENDPOINTS.values():
        if time not in df.columns:
            continue
        off = np.abs(_numbers(df, time) - expected[time]) > DERIVED_TOLERANCE_MONTHS
        found.append(
            problem_where(
                df,
                time,
                off,
                f"{time} must equal the months from surgery_date to the end of follow-up given by "
                f"the dates (days / {schema.DAYS_PER_MONTH})",
                hint="recompute the endpoints with bayes_sarcoma.derive_endpoints(df)",
            )
        )
        wrong = _numbers(df, event) != expected[event]
        found.append(
            problem_where(
                df,
                event,
                wrong,
                f"{event} must agree with the dates (1 when the endpoint's event is dated)",
                hint="recompute the endpoints with bayes_sarcoma.derive_endpoints(df)",
            )
        )
    return _as_list(found)


# --------------------------------------------------------------- helpers for any table
def check_time_column(
    df: pd.DataFrame, column: str, *, id_column: str | None = None
) -> list[Problem]:
    """Return the problems of a survival-time column: numeric, not missing, finite, >= 0.

    Parameters
    ----------
    df : pandas.DataFrame
        Any survival table.
    column : str
        The time column.
    id_column : str, optional
        Column whose values name offending rows; the index when None.

    Returns
    -------
    list of Problem
        Empty when the column is fine; pass it to ``errors.raise_if`` to raise.

    Examples
    --------
    >>> df = pd.DataFrame({"t": [1.5, -2.0, float("inf")]})
    >>> [str(p) for p in check_time_column(df, "t")]
    ["column 't': t must be finite, not inf (1 row breaks it: 2)", "column 't': t must be >= 0 (1 row breaks it: 1)"]
    """  # noqa: E501
    if column not in df.columns:
        return [Problem(column, "required column is missing")]
    if typed := _numeric_type(df, column, id_column):
        return [typed, *_as_list(_not_missing(df, column, id_column))]
    checks = (_not_missing, _finite, _non_negative)
    return _as_list(check(df, column, id_column) for check in checks)


def check_event_column(
    df: pd.DataFrame, column: str, *, id_column: str | None = None
) -> list[Problem]:
    """Return the problems of an event column: bool or integer 0/1, not missing.

    Parameters
    ----------
    df : pandas.DataFrame
        Any survival table.
    column : str
        The event column (1 = event, 0 = censored). Floats are rejected, even 0.0/1.0.
    id_column : str, optional
        Column whose values name offending rows; the index when None.

    Returns
    -------
    list of Problem
        Empty when the column is fine.

    Examples
    --------
    >>> [str(p) for p in check_event_column(pd.DataFrame({"d": [0, 1, 2]}), "d")]
    ["column 'd': d must be one of 0, 1; found 2 (1 row breaks it: 2)"]
    """
    if column not in df.columns:
        return [Problem(column, "required column is missing")]
    missing = _not_missing(df, column, id_column)
    if typed := _coded_type(df, column, (0, 1), allow_bool=True, id_column=id_column):
        return _as_list([typed, missing])
    return _as_list([missing, _levels(df, column, (0, 1), id_column)])


def check_cluster_column(
    df: pd.DataFrame, column: str, *, id_column: str | None = None
) -> list[Problem]:
    """Return the problems of a cluster (centre) column: not missing, ids of one type.

    Parameters
    ----------
    df : pandas.DataFrame
        Any clustered table.
    column : str
        The cluster id column.
    id_column : str, optional
        Column whose values name offending rows; the index when None.

    Returns
    -------
    list of Problem
        Empty when the column is fine.

    Examples
    --------
    >>> check_cluster_column(pd.DataFrame({"c": ["A", "B"]}), "c")
    []
    """
    if column not in df.columns:
        return [Problem(column, "required column is missing")]
    return _as_list([_single_type(df, column, id_column), _not_missing(df, column, id_column)])
