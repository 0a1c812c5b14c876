"""Values that are possible but unlikely: worth a look, not a refusal.

:func:`plausibility_problems` looks at any table, by column name and dtype, for values a
person should check before trusting a fit or a prediction: an age outside 15-100 years,
a tumour size above 50 cm, a date in the future or before 1900. It returns
:class:`~bayes_sarcoma.data.errors.Problem` objects (column, rule, rows) and raises
nothing; ``bayes-sarcoma validate`` and ``bayes-sarcoma predict`` print them as warnings
and carry on. (A registry's hard limits, age in [15, 110) and size in (0, 100) cm, are
errors of :func:`~bayes_sarcoma.data.validation.validate_registry`; these warnings sit
inside them.)

Which columns: an age column is named ``age`` or ``age_...`` / ``..._age`` (any case); a
size column has ``size`` in its name, in centimetres unless the name says ``mm`` (then
the limit is 500 mm); every ``datetime64`` column is a date column. Only numeric age and
size columns are looked at: a column of text is the business of the validation rules.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from bayes_sarcoma.data import schema
from bayes_sarcoma.data.errors import Problem, problem_where

__all__ = ["plausibility_problems"]

#: Ages (years) outside this closed range are flagged.
PLAUSIBLE_AGE = (15, 100)
#: Tumour sizes above this (cm) are flagged.
PLAUSIBLE_MAX_SIZE_CM = 50
#: Dates before this are flagged.
PLAUSIBLE_EARLIEST_DATE = pd.Timestamp("1900-01-01")


def _numeric(s: pd.Series) -> np.ndarray | None:
    if pd.api.types.is_bool_dtype(s.dtype) or not pd.api.types.is_numeric_dtype(s.dtype):
        return None
    return s.to_numpy(dtype="float64", na_value=np.nan)


def _is_age(name: str) -> bool:
    return re.fullmatch(r"age|age_.*|.*_age", name.casefold()) is not None


def plausibility_problems(
    data: pd.DataFrame,
    *,
    id_column: str | None = schema.PATIENT_ID,
    today: pd.Timestamp | None = None,
) -> list[Problem]:
    """Return the implausible values of ``data`` (see the module docstring); never raise.

    Parameters
    ----------
    data : pandas.DataFrame
        Any table of patients (not modified).
    id_column : str, optional
        The column whose values name the rows (the index when None or absent).
    today : pandas.Timestamp, optional
        The date after which a date is in the future (default: today).

    Returns
    -------
    list of Problem
        One per column and kind of implausible value; empty when nothing is odd.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"patient_id": ["a", "b", "c"], "age": [54, 150, 61]})
    >>> [str(p) for p in plausibility_problems(df)]
    ["column 'age': age outside 15-100 years is implausible (1 row breaks it: b). check the value (a typo, or months instead of years?)"]
    """  # noqa: E501
    today = (today or pd.Timestamp.today()).normalize()
    found: list[Problem | None] = []
    for column in data.columns:
        s = data[column]
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            found += _date_problems(data, str(column), today, id_column)
        elif (x := _numeric(s)) is not None:
            with np.errstate(invalid="ignore"):
                found.append(_number_problem(data, str(column), x, id_column))
    return [p for p in found if p is not None]


def _date_problems(
    data: pd.DataFrame, name: str, today: pd.Timestamp, id_column: str | None
) -> list[Problem | None]:
    s = data[name]
    values = s.dt.tz_localize(None) if getattr(s.dt, "tz", None) else s
    future = problem_where(
        data,
        name,
        (values >= today + np.timedelta64(1, "D")).to_numpy(),
        f"{name} is in the future (after today, {today.date()})",
        id_column=id_column,
        hint="check the year (a typo?) or the day/month order",
    )
    early = problem_where(
        data,
        name,
        (values < PLAUSIBLE_EARLIEST_DATE).to_numpy(),
        f"{name} is before {PLAUSIBLE_EARLIEST_DATE.year}",
        id_column=id_column,
        hint="an early year is usually a typo or a placeholder for an unknown date",
    )
    return [future, early]


def _number_problem(
    data: pd.DataFrame, name: str, x: np.ndarray, id_column: str | None
) -> Problem | None:
    if _is_age(name):
        low, high = PLAUSIBLE_AGE
        return problem_where(
            data,
            name,
            (x < low) | (x > high),
            f"{name} outside {low}-{high} years is implausible",
            id_column=id_column,
            hint="check the value (a typo, or months instead of years?)",
        )
    if "size" in name.casefold():
        mm = "mm" in name.casefold()
        limit = PLAUSIBLE_MAX_SIZE_CM * (10 if mm else 1)
        return problem_where(
            data,
            name,
            x > limit,
            f"{name} above {limit} {'mm' if mm else 'cm'} is implausible",
            id_column=id_column,
            hint="check the value" + ("" if mm else " (millimetres instead of centimetres?)"),
        )
    return None
