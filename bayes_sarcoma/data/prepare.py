"""From a clustered survival table to the arrays the sampling model reads.

:func:`prepare` checks the columns a model uses (clear errors naming the column, the
rows and the rule; nothing is dropped or silently changed), codes the covariates with a
:class:`~bayes_sarcoma.data.design.Design`, indexes the clusters and lays out every array as
``pm.Data`` wants it.

Zero times. A death on the day of surgery gives ``os_months = 0``, where the Weibull
density is 0 or infinite. Such patients are kept: their time is set to ``zero_time``
and a warning names them. By default (``zero_time="auto"``) that is half a day in the
table's time unit (:func:`resolve_zero_time`): 0.5 in a table in days, 0.5 / 30.4375 in
months, 0.5 / 365.25 in years; when the unit is not known, half a day in months, the
registry's unit, and the warning says so. Pass ``zero_time=None`` to make them an error
instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_sarcoma.data import schema
from bayes_sarcoma.data.design import Design, level_codes, missing_value_problems
from bayes_sarcoma.data.errors import DataWarning, Problem, RegistryError, problem_where, raise_if
from bayes_sarcoma.math.mle import weibull_ph_mle

#: Centre sd guess when no moment estimate can be made.
DEFAULT_SD_GUESS = 0.3
#: Half a day, in months: what a zero time becomes in a table in months.
HALF_DAY_MONTHS = 0.5 / schema.DAYS_PER_MONTH
#: The time units a model knows (``time_unit=``), and ``zero_time``'s default.
TIME_UNITS = tuple(schema.DAYS_PER_UNIT)
AUTO_ZERO_TIME = "auto"
#: Words of a time column's name that state its unit (``fu_days``, ``os_months``, ``years``).
_UNIT_WORDS = {f"{unit[:-1]}{s}": unit for unit in TIME_UNITS for s in ("", "s")}


class ZeroTimeWarning(UserWarning):
    """Some patients had time 0 and were given ``zero_time`` instead."""


@dataclass(frozen=True)
class Columns:
    """The columns a model reads from a table."""

    time: str
    event: str
    cluster: str | None
    entry: str | None
    terms: tuple[str, ...]
    id_column: str | None
    treatment: str | None
    effect_modifier: str | None

    @property
    def used(self) -> list[str]:
        """Every column read, without duplicates, in a stable order."""
        cols = [self.time, self.event, self.cluster, self.entry, *self.terms, self.effect_modifier]
        if self.treatment:
            cols.append(self.treatment)
        return list(dict.fromkeys(c for c in cols if c))


@dataclass
class Prepared:
    """A table turned into model arrays, with the labels needed to name the results."""

    arrays: dict[str, np.ndarray]
    time: np.ndarray
    event: np.ndarray
    entry: np.ndarray | None
    raw_x: np.ndarray
    patient_ids: np.ndarray
    center_ids: np.ndarray  # one per cluster, in index order (empty without clusters)
    center_index: np.ndarray  # per patient (zeros without clusters)
    center_weight: np.ndarray
    center_terms: tuple[int, ...]  # design columns constant within every centre
    modifier_levels: tuple
    modifier_index: np.ndarray | None
    treatment: np.ndarray | None
    t_ref: float
    n_zero_times: int


def resolve_table(data: pd.DataFrame, columns: Columns) -> None:
    """Raise a :class:`RegistryError` if ``data`` cannot be read as the model's table.

    The table must be a non-empty DataFrame with unique column names holding every column
    the model uses; a term cannot be the time, event, entry or cluster column.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    if len(data) == 0:
        raise RegistryError(Problem(columns.time, "the table is empty: there is nothing to fit"))
    names = [str(c) for c in data.columns]
    dupes = sorted({n for n in names if names.count(n) > 1} & set(columns.used))
    outcome = {columns.time, columns.event, columns.entry, columns.cluster} - {None}
    problems = [
        Problem(c, "column names must be unique; this one appears more than once") for c in dupes
    ]
    problems += [
        Problem(
            t,
            "a term cannot be the time, event, entry or cluster column (the outcome "
            "would explain itself)",
            hint="remove it from `terms`",
        )
        for t in columns.terms
        if t in outcome
    ]
    raise_if(problems)
    missing = [c for c in columns.used if c not in data.columns]
    if missing:
        import difflib

        raise RegistryError(
            [
                Problem(
                    col,
                    "a column the model uses is missing from the data",
                    hint=_hint(difflib.get_close_matches(col, map(str, data.columns), n=1)),
                )
                for col in missing
            ]
        )
    if columns.id_column is None and not data.index.is_unique:
        raise RegistryError(
            problem_where(
                data,
                "index",
                data.index.duplicated(keep=False),
                "with id_column=None the index names the patients, so it must be unique",
                id_column=None,
                hint="pass id_column=... or reset the index",
            )
        )


def _hint(close: list[str]) -> str:
    return f"did you mean {close[0]!r}?" if close else ""


def check_outcome(data: pd.DataFrame, columns: Columns) -> None:
    """Check time, event, entry, cluster and id columns; raise every problem found."""
    idc = columns.id_column
    raise_if(_missing_problems(data, columns))
    t, problems = _time_problems(data, columns.time, idc)
    problems += _event_problems(data, columns.event, idc)
    if not any(problems) and not (data[columns.event].to_numpy(dtype=float) > 0).any():
        problems.append(
            Problem(
                columns.event,
                "the table has no events (every patient is censored): "
                "there is no hazard to estimate",
            )
        )
    if columns.entry:
        problems += _entry_problems(data, columns.entry, columns.time, t, idc)
    problems += _id_problems(data, columns)
    raise_if(problems)


def _missing_problems(data: pd.DataFrame, columns: Columns) -> list[Problem | None]:
    """Return a problem per used column with missing values (ids named by the index)."""
    idc = columns.id_column
    not_id = [c for c in columns.used if c != idc]
    problems: list[Problem | None] = list(missing_value_problems(data, not_id, idc))
    if idc:  # a missing id cannot name its own row: name it by the index
        problems += missing_value_problems(data, [idc], None)
    return problems


def _time_problems(
    data: pd.DataFrame, column: str, idc: str | None
) -> tuple[np.ndarray, list[Problem | None]]:
    """Return the survival times as floats and their problems; raise if they are not numbers."""
    time = data[column]
    if not pd.api.types.is_numeric_dtype(time) or pd.api.types.is_bool_dtype(time):
        raise RegistryError(_not_numbers(data, column, "survival times", idc))
    t = time.to_numpy(dtype=float)
    problems = [
        problem_where(
            data, column, ~np.isfinite(t), "survival times must be finite", id_column=idc
        ),
        problem_where(data, column, t < 0, "survival times must be >= 0", id_column=idc),
    ]
    return t, problems


def _event_problems(data: pd.DataFrame, column: str, idc: str | None) -> list[Problem | None]:
    """Return the problems of an event column that is not 0/1 or bool."""
    ev = data[column]
    if pd.api.types.is_bool_dtype(ev):
        return []
    if pd.api.types.is_numeric_dtype(ev):
        ok_event = ev.isin([0, 1]).to_numpy()
        return [
            problem_where(data, column, ~ok_event, "event flags must be 0/1 or bool", id_column=idc)
        ]
    return [
        Problem(
            column,
            f"event flags must be 0/1 or bool, not {ev.dtype}",
            hint="map your codes to 0 (censored) / 1 (event)",
        )
    ]


def _entry_problems(
    data: pd.DataFrame, column: str, time_column: str, t: np.ndarray, idc: str | None
) -> list[Problem | None]:
    """Return the problems of delayed-entry times: numbers, finite, >= 0 and before ``t``."""
    a = data[column]
    if not pd.api.types.is_numeric_dtype(a):
        return [Problem(column, f"entry times must be numbers, not {a.dtype}")]
    a = a.to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        return [
            problem_where(
                data,
                column,
                ~np.isfinite(a) | (a < 0),
                "entry times must be finite and >= 0",
                id_column=idc,
            ),
            problem_where(
                data,
                f"{column}, {time_column}",
                a >= t,
                "a patient must enter before the end of follow-up (entry < time)",
                id_column=idc,
            ),
        ]


def _id_problems(data: pd.DataFrame, columns: Columns) -> list[Problem | None]:
    """Return the problems of patient ids (unique, one type) and cluster ids (one type)."""
    idc = columns.id_column
    problems: list[Problem | None] = []
    if idc:
        problems.append(
            problem_where(
                data,
                idc,
                data[idc].duplicated(keep=False).to_numpy(),
                "patient ids must be unique",
                id_column=idc,
            )
        )
        problems.append(_mixed_types(data, idc, idc))
    if columns.cluster:
        problems.append(_mixed_types(data, columns.cluster, idc))
    return problems


def _not_numbers(data: pd.DataFrame, column: str, what: str, idc: str | None) -> Problem:
    """Return the problem of a column that should hold numbers, naming text that is not one."""
    values = data[column]
    dtype = values.dtype
    if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        parsed = pd.to_numeric(values, errors="coerce")
        bad = parsed.isna().to_numpy()
        if bad.any():
            found = ", ".join(repr(v) for v in pd.unique(values[bad].to_numpy(dtype=object))[:5])
            return problem_where(
                data,
                column,
                bad,
                f"{what} must be numbers, not {dtype}; found text that is not a number: {found}",
                id_column=idc,
                hint="fix those values, then convert with pd.to_numeric",
            )
        return Problem(
            column,
            f"{what} must be numbers, not {dtype} (numbers stored as text)",
            hint=f"convert with df[{column!r}] = pd.to_numeric(df[{column!r}])",
        )
    return Problem(
        column,
        f"{what} must be numbers, not {dtype}",
        hint="convert with pd.to_numeric or derive them from dates",
    )


def _mixed_types(data: pd.DataFrame, column: str, idc: str | None) -> Problem | None:
    values = data[column]
    if values.dtype != object:
        return None
    kinds = values.map(lambda v: type(v).__name__)
    if kinds.nunique() <= 1:
        return None
    main = kinds.mode().iloc[0]
    return problem_where(
        data,
        column,
        (kinds != main).to_numpy(),
        f"ids must all have one type; most are {main}, these are not "
        f"({', '.join(sorted(set(kinds) - {main}))})",
        id_column=idc,
        hint="convert the column with .astype(str)",
    )


def data_warnings(data: pd.DataFrame, columns: Columns, design: Design) -> None:
    """Warn (:class:`~bayes_sarcoma.data.errors.DataWarning`) about fittable but suspect data.

    A single cluster (its sd is then learnt from the prior alone); a level of a binary or
    categorical term without any event (its hazard ratio is informed by the prior only);
    a continuous value more than 100 robust standard deviations from the median.
    """
    idc = columns.id_column
    if columns.cluster and data[columns.cluster].nunique() == 1:
        warnings.warn(
            f"column '{columns.cluster}': there is only one cluster "
            f"({data[columns.cluster].iloc[0]!r}), so the centre sd is learnt from its prior "
            "alone; pass cluster=None to fit without centre effects",
            DataWarning,
            stacklevel=4,
        )
    event = data[columns.event].to_numpy(dtype=float) > 0
    raw = design.raw_matrix(data)
    for j, label in enumerate(design.labels):
        term = next(t for t in design.terms if label in t.labels)
        if term.kind == "continuous":
            x = raw[:, j]
            median = np.median(x)
            spread = 1.4826 * np.median(np.abs(x - median)) or np.std(x)
            far = np.abs(x - median) > 100 * spread
            if far.any():
                ids = data[idc].to_numpy()[far] if idc else data.index.to_numpy()[far]
                warnings.warn(
                    f"column '{term.name}': {int(far.sum())} values lie more than 100 robust "
                    f"SDs from the median ({median:.4g}), e.g. {x[far][0]:.4g}; rows "
                    f"{', '.join(map(str, ids[:5]))}. Check the unit or a typo.",
                    DataWarning,
                    stacklevel=4,
                )
            continue
        levels = [(f"{label} = 1" if term.kind == "binary" else label, raw[:, j] > 0)]
        if term.kind == "binary" or label == term.labels[0]:
            reference = ~raw[:, [design.labels.index(lb) for lb in term.labels]].any(axis=1)
            name = (
                f"{term.name}[{term.reference}]"
                if term.kind == "categorical"
                else (f"{term.name} = 0")
            )
            levels.append((name, reference))
        for name, rows in levels:
            if rows.any() and not event[rows].any():
                warnings.warn(
                    f"column '{term.name}': no events among the {int(rows.sum())} patients with "
                    f"{name}; its hazard ratio is informed by the prior alone",
                    DataWarning,
                    stacklevel=4,
                )


def time_unit_from_name(column: str) -> str | None:
    """Return the time unit that a time column's name states, or None if it states none.

    A unit counts when it is a whole word of the name (words are split at anything that is
    not a letter): ``fu_days`` and ``time.days`` are in days, ``os_months`` in months,
    ``years`` in years; ``t``, ``daysim`` or ``days_or_months`` (two units) state none.

    Examples
    --------
    >>> time_unit_from_name("fu_days"), time_unit_from_name("OS_Months"), time_unit_from_name("t")
    ('days', 'months', None)
    """
    import re

    words = re.split(r"[^a-z]+", str(column).lower())
    units = {_UNIT_WORDS[w] for w in words if w in _UNIT_WORDS}
    return units.pop() if len(units) == 1 else None


def resolve_zero_time(
    zero_time: float | str | None, time_unit: str | None
) -> tuple[float | None, str]:
    """Return what a zero time becomes, and the words that say why (for the warning).

    ``zero_time="auto"`` is half a day in ``time_unit`` (one of :data:`TIME_UNITS`), or in
    months when the unit is not known (``None``); a number or ``None`` is kept as it is.

    Examples
    --------
    >>> resolve_zero_time("auto", "days")
    (0.5, 'half a day, the times being in days')
    >>> round(resolve_zero_time("auto", "years")[0], 6)
    0.001369
    >>> resolve_zero_time(0.01, "days")
    (0.01, 'the zero_time given')
    """
    if zero_time is None or (not isinstance(zero_time, str) and zero_time > 0):
        return zero_time, "the zero_time given"
    if zero_time != AUTO_ZERO_TIME:
        raise ValueError(
            f"zero_time={zero_time!r}: give a time > 0 (in the table's time unit), "
            "'auto' (half a day in the time unit) or None (zero times are an error)"
        )
    if time_unit is None:
        return HALF_DAY_MONTHS, (
            "half a day if the times are in months, but their unit is not known: say it "
            "with time_unit='days', 'weeks', 'months' or 'years'"
        )
    if time_unit not in TIME_UNITS:
        raise ValueError(f"time_unit={time_unit!r}: choose one of {TIME_UNITS} or None")
    return 0.5 / schema.DAYS_PER_UNIT[time_unit], f"half a day, the times being in {time_unit}"


def check_cluster_level(data: pd.DataFrame, cluster: str, column: str, idc: str | None) -> None:
    """Raise if ``column`` (e.g. ``expert_center``) varies within a cluster."""
    varies = data.groupby(cluster, sort=False, observed=True)[column].transform("nunique") > 1
    if varies.any():
        centres = pd.unique(data.loc[varies, cluster])
        shown = ", ".join(map(str, centres[:5]))
        raise RegistryError(
            problem_where(
                data,
                column,
                varies.to_numpy(),
                f"{column} is a property of the {cluster} and must be constant within each one; "
                f"it varies within {len(centres)} of them ({shown})",
                id_column=idc,
                hint="its effect is identified between centres; fix the flag, or, if it "
                "really is a patient-level attribute (e.g. a treatment randomised within "
                "centres), leave it out of center_level= (e.g. center_level=())",
            )
        )


def prepare(
    data: pd.DataFrame,
    columns: Columns,
    design: Design,
    *,
    zero_time: float | str | None = AUTO_ZERO_TIME,
    time_unit: str | None = "months",
    centers: Sequence | None = None,
    modifier_levels: Sequence | None = None,
    parameterization: str = "auto",
    center_sd_guess: float | None = None,
    t_ref: float | None = None,
) -> Prepared:
    """Turn ``data`` into model arrays (see the module docstring).

    Parameters
    ----------
    data : pandas.DataFrame
        The table (never modified).
    columns : Columns
        Which columns to read.
    design : Design
        The covariate coding (learnt on the fitting data).
    zero_time : float, "auto" or None
        What a time of exactly 0 becomes (``"auto"``: half a day in ``time_unit``, see
        :func:`resolve_zero_time`; ``None``: an error).
    time_unit : {"days", "weeks", "months", "years"} or None
        The time column's unit (``None``: not known).
    centers : sequence, optional
        The cluster ids, in index order (default: the sorted ids in ``data``).
    modifier_levels : sequence, optional
        Levels of the effect modifier (default: from the design or sorted values).
    parameterization : {"auto", "centered", "noncentered"}
        How centre effects are parameterised (see :mod:`bayes_sarcoma.model.graph`).
    center_sd_guess : float, optional
        The guess ``s`` of the centre sd used by ``"auto"`` (default: a moment estimate
        from the data, :func:`moment_center_sd`).
    t_ref : float, optional
        Reference time (default: the median observed time).
    """
    resolve_table(data, columns)
    check_outcome(data, columns)
    ids = data[columns.id_column].to_numpy() if columns.id_column else data.index.to_numpy()
    time, n_zero_times = _times_without_zeros(
        data, columns, ids, *resolve_zero_time(zero_time, time_unit)
    )
    event = data[columns.event].to_numpy(dtype=float)
    if t_ref is None:
        t_ref = float(np.median(time))
    raw_x = design.raw_matrix(data)
    arrays = _outcome_arrays(time, event, (raw_x - design.mean) / design.scale, t_ref)
    entry, entry_arrays = _entry_arrays(data, columns.entry, t_ref)
    arrays |= entry_arrays
    centres = _center_layout(
        data, columns, arrays["X"], time, event, raw_x, centers, parameterization, center_sd_guess
    )
    arrays |= centres.arrays
    levels, modifier_index, treatment = _modifier_layout(data, columns, design, modifier_levels)
    if columns.effect_modifier:
        arrays |= {"modifier_idx": modifier_index, "treatment": treatment}
    return Prepared(
        arrays=arrays,
        time=time,
        event=event,
        entry=entry,
        raw_x=raw_x,
        patient_ids=ids,
        center_ids=centres.ids,
        center_index=centres.index,
        center_weight=centres.weight,
        center_terms=centres.terms,
        modifier_levels=levels,
        modifier_index=modifier_index,
        treatment=treatment,
        t_ref=t_ref,
        n_zero_times=n_zero_times,
    )


def _times_without_zeros(
    data: pd.DataFrame, columns: Columns, ids: np.ndarray, zero_time: float | None, why: str
) -> tuple[np.ndarray, int]:
    """Return the survival times with each 0 set to ``zero_time`` (with a warning), and how many.

    ``why`` (from :func:`resolve_zero_time`) goes into the warning. Raise instead if
    ``zero_time`` is None.
    """
    time = data[columns.time].to_numpy(dtype=float).copy()
    zero = time == 0
    if zero.any():
        if zero_time is None:
            raise RegistryError(
                problem_where(
                    data,
                    columns.time,
                    zero,
                    "survival times must be > 0 (zero_time=None)",
                    id_column=columns.id_column,
                )
            )
        shown = ", ".join(map(str, ids[zero][:5]))
        warnings.warn(
            f"{int(zero.sum())} patients have {columns.time} = 0 (an event or censoring on the "
            f"day of the time origin, e.g. death on the day of surgery): their time is set to "
            f"{zero_time:.4g} ({why}) for the fit; rows {shown}. Pass zero_time=None to make "
            "this an error.",
            ZeroTimeWarning,
            stacklevel=4,  # the caller of prepare's caller (as when this was inside prepare)
        )
        time[zero] = zero_time
    return time, int(zero.sum())


def _outcome_arrays(
    time: np.ndarray, event: np.ndarray, x: np.ndarray, t_ref: float
) -> dict[str, np.ndarray]:
    """Return the design and outcome arrays every model reads (times relative to ``t_ref``)."""
    log_t = np.log(time / t_ref)
    return {
        "X": x,
        "log_t": log_t,
        "event": event,
        "n_events": np.asarray(event.sum()),
        "sum_event_log_t": np.asarray(event @ log_t),
    }


def _entry_arrays(
    data: pd.DataFrame, column: str | None, t_ref: float
) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """Return the delayed-entry times and their model arrays (None and none without entry)."""
    if not column:
        return None, {}
    entry = data[column].to_numpy(dtype=float)
    has = entry > 0
    return entry, {
        "has_entry": has.astype(float),
        "log_entry": np.where(has, np.log(np.where(has, entry, 1.0) / t_ref), 0.0),
    }


@dataclass(frozen=True)
class _CenterLayout:
    """The clusters as the model reads them (empty without clusters)."""

    ids: np.ndarray  # one per cluster, in index order
    index: np.ndarray  # per patient
    weight: np.ndarray  # centring weight per cluster
    terms: tuple[int, ...]  # design columns constant within every centre
    arrays: dict[str, np.ndarray]


def _center_layout(
    data: pd.DataFrame,
    columns: Columns,
    x: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    raw_x: np.ndarray,
    centers: Sequence | None,
    parameterization: str,
    center_sd_guess: float | None,
) -> _CenterLayout:
    """Index the clusters, weigh their centring and find the centre-level design columns."""
    if not columns.cluster:
        return _CenterLayout(
            np.array([]), np.zeros(len(data), dtype=np.int64), np.array([]), (), {}
        )
    center_ids, center_index = _center_index(data, columns.cluster, centers, columns.id_column)
    events = np.bincount(center_index, weights=event, minlength=len(center_ids))
    if center_sd_guess is None and parameterization == "auto":
        center_sd_guess = moment_center_sd(time, event, raw_x, center_index, len(center_ids))
    weight = center_weights(events, parameterization, center_sd_guess or DEFAULT_SD_GUESS)
    center_terms, center_x = center_level_terms(x, center_index, len(center_ids))
    arrays = {
        "center_idx": center_index,
        "center_weight": weight,
        "center_events": events,
        "X_center": center_x[:, list(center_terms)],
    }
    return _CenterLayout(center_ids, center_index, weight, center_terms, arrays)


def _center_index(
    data: pd.DataFrame, cluster: str, centers: Sequence | None, idc: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """Return the cluster ids (default: sorted) and each patient's index; raise on unknown ones."""
    values = data[cluster]
    if centers is None:
        centers = np.sort(pd.unique(values.to_numpy()))
    center_ids = np.asarray(centers)
    center_index = level_codes(values, list(center_ids))
    raise_if(
        [
            problem_where(
                data,
                cluster,
                center_index < 0,
                "centre unknown to the fitted model",
                id_column=idc,
            )
        ]
    )
    return center_ids, center_index


def _modifier_layout(
    data: pd.DataFrame, columns: Columns, design: Design, modifier_levels: Sequence | None
) -> tuple[tuple, np.ndarray | None, np.ndarray | None]:
    """Return the effect modifier's levels, each patient's level and treatment flag.

    Without an effect modifier: ``((), None, None)``. Raise on a level not in the levels.
    """
    name = columns.effect_modifier
    if not name:
        return (), None, None
    if modifier_levels is None:
        modifier_levels = (
            design.term(name).levels if name in design.columns else sorted(pd.unique(data[name]))
        )
    levels = tuple(modifier_levels)
    modifier_index = level_codes(data[name], levels)
    raise_if(
        [
            problem_where(
                data,
                name,
                modifier_index < 0,
                f"values must be one of {levels}",
                id_column=columns.id_column,
            )
        ]
    )
    return levels, modifier_index, data[columns.treatment].to_numpy(dtype=float)


def center_level_terms(
    x: np.ndarray, center_index: np.ndarray, n_centers: int
) -> tuple[tuple[int, ...], np.ndarray]:
    """Return the design columns constant within every centre, and each centre's row.

    Such columns (the expert-centre flag) describe centres, not patients: the model
    moves them into the centre effects' mean (hierarchical centring, Gelfand, Sahu &
    Carlin 1995), where their effect is learnt from the centres' effects.

    Returns
    -------
    terms : tuple of int
        Indices of the centre-level columns.
    center_x : numpy.ndarray
        (n_centers, n_columns) each centre's values (zeros for a centre without patients).
    """
    center_x = np.zeros((n_centers, x.shape[1]))
    if x.shape[1] == 0 or len(x) == 0:
        return (), center_x
    order = np.argsort(center_index, kind="stable")
    xs, ci = x[order], center_index[order]
    starts = np.flatnonzero(np.r_[True, ci[1:] != ci[:-1]])
    constant = np.all(
        np.maximum.reduceat(xs, starts, axis=0) == np.minimum.reduceat(xs, starts, axis=0), axis=0
    )
    center_x[ci[starts]] = xs[starts]
    return tuple(int(j) for j in np.flatnonzero(constant)), center_x


def center_weights(events: np.ndarray, parameterization: str, sd_guess: float) -> np.ndarray:
    """Return each centre's centring weight ``w_c`` (0 non-centred, 1 centred).

    ``"auto"`` gives ``w_c = d_c s**2 / (1 + d_c s**2)`` for a centre with ``d_c`` events:
    the share of the centre effect's posterior precision that comes from its own data
    (Papaspiliopoulos, Roberts & Skold 2007).
    """
    events = np.asarray(events, dtype=float)
    if parameterization == "centered":
        return np.ones_like(events)
    if parameterization == "noncentered":
        return np.zeros_like(events)
    if parameterization != "auto":
        raise ValueError(
            f"parameterization={parameterization!r}: choose 'auto', 'centered' or 'noncentered'"
        )
    info = events * sd_guess**2
    return info / (1.0 + info)


def moment_center_sd(
    time: np.ndarray,
    event: np.ndarray,
    raw_x: np.ndarray,
    center_index: np.ndarray,
    n_centers: int,
) -> float:
    """Return a quick moment estimate of the centre sd, for the centring weights only.

    A Weibull PH model without centre effects is fitted by maximum likelihood, giving each
    centre's expected events ``E_c`` beside its observed ``O_c``; with a multiplicative
    frailty of variance ``s**2``, ``E[(O - E)**2 - O] = s**2 E**2``, so
    ``s**2 = sum((O - E)**2 - O) / sum(E**2)``. The estimate only tunes the sampler's
    geometry (it never enters the posterior), and is clipped to [0.05, 1]; if the quick
    fit fails the default guess is used.
    """
    try:
        fit = weibull_ph_mle(time, event, raw_x) if raw_x.shape[1] else None
    except (RuntimeError, ValueError, np.linalg.LinAlgError):
        return DEFAULT_SD_GUESS
    if fit is None:
        return DEFAULT_SD_GUESS
    eta = fit["intercept"] + raw_x @ fit["beta"]
    expected = np.exp(fit["shape"] * np.log(time) + eta)
    e_c = np.bincount(center_index, weights=expected, minlength=n_centers)
    o_c = np.bincount(center_index, weights=event, minlength=n_centers)
    var = np.sum((o_c - e_c) ** 2 - o_c) / max(np.sum(e_c**2), 1e-12)
    return float(np.clip(np.sqrt(max(var, 0.0)), 0.05, 1.0))


def registry_columns(endpoint: str, terms: Sequence[str] | None) -> tuple[str, str, Sequence[str]]:
    """Return (time, event, terms) of a registry endpoint."""
    time, event = schema.endpoint_columns(endpoint)
    return time, event, tuple(terms) if terms is not None else schema.DEFAULT_TERMS


def as_mapping(value: Mapping | None) -> dict:
    """Return a plain dict copy (``None`` -> ``{}``)."""
    return dict(value or {})
