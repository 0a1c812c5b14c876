"""The catalogue of bad inputs: every kind a registry or a survival table really has.

Each kind is one test case. It corrupts a fresh, valid table in one way, runs one entry
point, and checks that the user gets a clear error (or a documented warning) that names
the column, the offending rows and the rule; that the user's DataFrame is not modified;
and, for warnings, that no row was dropped.

Entry points: ``validate_registry`` and ``derive_endpoints`` (registries),
``HierarchicalWeibull(...).prepare(df, learn=True)`` (any clustered survival table; the
checks a fit runs, without sampling), ``prepare`` against a fitted model (new data), and
``HierarchicalWeibull("OS").prepare`` on a registry.

Kinds marked ``xfail`` are not caught yet, or caught with a poor message; their reason
says what happens and what should. ``python tests/test_bad_inputs.py`` prints the
catalogue as the Markdown table of docs/reliability.md, with the messages the package
really gives.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from registry_factory import tiny_registry

import bayes_sarcoma as bs
from bayes_sarcoma.data import schema

DAY = np.timedelta64(1, "D")
DOCS = Path(__file__).parents[2] / "docs" / "reliability.md"

#: The generic table's model: its own column names, a treatment ``arm`` declared centre-level.
TABLE_MODEL = dict(
    time="t",
    event="d",
    cluster="site",
    terms=["dose", "arm"],
    id_column="subject",
    treatment="arm",
    center_level=["arm"],
)


def survival_table(n: int = 60) -> pd.DataFrame:
    """A valid clustered survival table: 6 sites, ``arm`` constant within a site."""
    rng = np.random.default_rng(0)
    site = np.arange(n) % 6
    return pd.DataFrame(
        {
            "subject": [f"S{i:03d}" for i in range(n)],
            "site": [f"site-{k}" for k in site],
            "dose": rng.normal(50.0, 10.0, n).round(2),
            "arm": site % 2,
            "stage": rng.choice(["I", "II", "III"], n),
            "t": rng.uniform(0.5, 60.0, n).round(3),
            "d": np.arange(n) % 3 % 2,  # a third of patients have the event
        }
    )


def small_registry() -> pd.DataFrame:
    return bs.simulate_registry(400, random_seed=3)


BASES: dict[str, Callable[[], pd.DataFrame]] = {
    "validate": tiny_registry,
    "derive": lambda: tiny_registry(endpoints=False),
    "model": survival_table,
    "predict": survival_table,
    "registry model": small_registry,
}


# -- corruptions ------------------------------------------------------------------------------
def put(column: str, index: Any, value: Any, *, as_object: bool = False):
    """Set ``df.loc[index, column] = value`` (after casting the column to object)."""

    def corrupt(df: pd.DataFrame) -> pd.DataFrame:
        if as_object:
            df[column] = df[column].astype(object)
        df.loc[index, column] = value
        return df

    return corrupt


def assign(column: str, make: Callable[[pd.DataFrame], Any]):
    """Replace a whole column: ``df[column] = make(df)``."""

    def corrupt(df: pd.DataFrame) -> pd.DataFrame:
        df[column] = make(df)
        return df

    return corrupt


def shift(column: str, index: int, other: str, days: int):
    """Set ``column`` to ``other`` + ``days`` for one row."""

    def corrupt(df: pd.DataFrame) -> pd.DataFrame:
        df.loc[index, column] = df.loc[index, other] + days * DAY
        return df

    return corrupt


def relapse_after_death(df: pd.DataFrame) -> pd.DataFrame:
    death = df.loc[1, "death_date"]  # P02 dies on day 900, at last follow-up
    df.loc[1, "local_relapse_date"] = death + 10 * DAY
    df.loc[1, "last_followup_date"] = death + 10 * DAY
    return df


def mixed_date_formats(df: pd.DataFrame) -> pd.DataFrame:
    text = df["surgery_date"].dt.strftime("%Y-%m-%d").astype(object)
    text[3] = df.loc[3, "surgery_date"].strftime("%d/%m/%Y")
    df["surgery_date"] = text
    return df


def excel_serial_dates(df: pd.DataFrame) -> pd.DataFrame:
    df["surgery_date"] = (df["surgery_date"] - pd.Timestamp("1899-12-30")).dt.days
    return df


def duplicate_column(column: str):
    def corrupt(df: pd.DataFrame) -> pd.DataFrame:
        return pd.concat([df, df[[column]]], axis=1)

    return corrupt


def single_centre(df: pd.DataFrame) -> pd.DataFrame:
    df["site"] = "site-0"
    df["arm"] = 0
    return df


def no_events_in_arm(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[df["arm"] == 1, "d"] = 0
    return df


def flip_arm(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[3, "arm"] = 1 - df.loc[3, "arm"]
    return df


def flip_expert(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[0, "expert_center"] = False  # P01, in C01 with three expert patients
    return df


# -- the catalogue ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Kind:
    """One kind of bad input and what the user must be told.

    ``expect``: ``"error"`` (``error`` raised), ``"warning"`` (``warns`` issued, the call
    succeeds) or ``"either"``. The message must contain ``column``, ``rule`` and every id
    in ``rows`` (and ``also``).
    """

    name: str
    entry: str
    example: str
    corrupt: Callable[[pd.DataFrame], Any]
    column: str
    rule: str
    rows: tuple = ()
    also: tuple[str, ...] = ()
    expect: str = "error"
    error: type[Exception] = bs.RegistryError
    warns: type[Warning] = UserWarning
    kw: dict = field(default_factory=dict)
    xfail: str = ""


V, D, M, P, R = "validate", "derive", "model", "predict", "registry model"

CATALOGUE: list[Kind] = [
    # ---- registries: validate_registry ------------------------------------------------------
    Kind("missing column", V, "no `margin` column", lambda df: df.drop(columns="margin"),
         "margin", "required column is missing"),
    Kind("misspelt column", V, "`tumour_size_cm` for `tumor_size_cm`",
         lambda df: df.rename(columns={"tumor_size_cm": "tumour_size_cm"}),
         "tumor_size_cm", "required column is missing", also=("did you mean 'tumour_size_cm'",)),
    Kind("duplicated column names", V, "`age` twice", duplicate_column("age"),
         "age", "column names must be unique"),
    Kind("empty table", V, "no rows", lambda df: df.iloc[:0], "<table>", "the table has no rows"),
    Kind("not a DataFrame", V, "a list of dicts", lambda df: df.to_dict("records"),
         "list", "expected a pandas DataFrame", error=TypeError),
    Kind("numbers stored as text", V, "`age` = '54'",
         assign("age", lambda df: df["age"].astype(str)),
         "age", "must have a numeric dtype", ("P01",), also=("pd.to_numeric",)),
    Kind("text that is not a number", V, "`age` = 'sixty'", put("age", 3, "sixty", as_object=True),
         "age", "found text that is not a number: 'sixty'", ("P04",)),
    Kind("bool in a numeric column", V, "`age` = True", assign("age", lambda df: df["age"] > 50),
         "age", "must have a numeric dtype, not bool", ("P01",)),
    Kind("integral floats for a code", V, "`grade` = 3.0",
         assign("grade", lambda df: df["grade"].astype(float)),
         "grade", "must have integer dtype with values 1/2/3, not float64",
         also=("no row is wrong",)),
    Kind("dates as ISO text", V, "'2012-01-01'",
         assign("surgery_date", lambda df: df["surgery_date"].dt.strftime("%Y-%m-%d")),
         "surgery_date", "must have a datetime64 dtype", ("P01",), also=("format='%Y-%m-%d'",)),
    Kind("dates as day/month/year text", V, "'15/06/2012'",
         assign("surgery_date", lambda df: df["surgery_date"].dt.strftime("%d/%m/%Y")),
         "surgery_date", "must have a datetime64 dtype", ("P01",), also=("format='%d/%m/%Y'",)),
    Kind("dates as month/day/year text", V, "'06/15/2012'",
         assign("surgery_date", lambda df: df["surgery_date"].dt.strftime("%m/%d/%Y")),
         "surgery_date", "must have a datetime64 dtype", ("P01",), also=("format='%m/%d/%Y'",)),
    Kind("dates in mixed text formats", V, "'2012-01-01' and '15/06/2012'", mixed_date_formats,
         "surgery_date", "must have a datetime64 dtype", ("P01",), also=("your date format",)),
    Kind("dates as spreadsheet serial numbers", V, "`surgery_date` = 40603 (days since 1899-12-30)",
         excel_serial_dates, "surgery_date", "must have a datetime64 dtype", ("P01",),
         also=("unit=",)),
    Kind("timezone-aware dates", V, "datetime64[ns, Europe/Paris]",
         assign("surgery_date", lambda df: df["surgery_date"].dt.tz_localize("Europe/Paris")),
         "surgery_date", "must be timezone-naive", ("P01",), also=("tz_localize(None)",)),
    Kind("missing covariate (NaN)", V, "`age` = NaN", put("age", 3, np.nan),
         "age", "must not be missing", ("P04",)),
    Kind("infinite covariate", V, "`tumor_size_cm` = inf", put("tumor_size_cm", 3, np.inf),
         "tumor_size_cm", "must be finite", ("P04",)),
    Kind("extreme covariate", V, "`age` = 1e12", put("age", 3, 1e12),
         "age", "must be >= 15 and < 110 years", ("P04",)),
    Kind("tumour size in millimetres", V, "`tumor_size_cm` = 150", put("tumor_size_cm", 3, 150.0),
         "tumor_size_cm", "must be > 0 and < 100 cm", ("P04",), also=("millimetres",)),
    Kind("negative derived time", V, "`os_months` = -1", put("os_months", 3, -1.0),
         "os_months", "must be >= 0", ("P04",)),
    Kind("infinite derived time", V, "`rfs_months` = inf", put("rfs_months", 3, np.inf),
         "rfs_months", "must be finite", ("P04",)),
    Kind("event flag other than 0/1", V, "`os_event` = 2", put("os_event", 3, 2),
         "os_event", "must be one of 0, 1; found 2", ("P04",)),
    Kind("event flags as text", V, "'dead' / 'alive'",
         assign("os_event", lambda df: np.where(df["os_event"] == 1, "dead", "alive")),
         "os_event", "must have bool or integer dtype", ("P01",), also=("'dead'",)),
    Kind("event flags as floats", V, "`os_event` = 1.0",
         assign("os_event", lambda df: df["os_event"].astype(float)),
         "os_event", "must have bool or integer dtype", also=("no row is wrong",)),
    Kind("duplicated patient ids", V, "P04 renamed P01", put("patient_id", 3, "P01"),
         "patient_id", "must be unique", ("P01",)),
    Kind("missing patient id", V, "`patient_id` = None", put("patient_id", 3, None),
         "patient_id", "must not be missing (rows named by index)", (3,)),
    Kind("mixed-type ids", V, "`patient_id` 4 among 'P01'...", put("patient_id", 3, 4),
         "patient_id", "ids of one type; found int, str", (4,), also=("astype(str)",)),
    Kind("missing centre id", V, "`center_id` = NaN", put("center_id", 3, np.nan),
         "center_id", "must not be missing", ("P04",)),
    Kind("expert flag varies within a centre", V, "one C01 patient non-expert", flip_expert,
         "expert_center", "must be constant within a centre", ("P01",), also=("'C01'",)),
    Kind("expert flag as text", V, "'yes' / 'no'",
         assign("expert_center", lambda df: df["expert_center"].map({True: "yes", False: "no"})),
         "expert_center", "must have bool or integer dtype", ("P01",)),
    Kind("unknown category", V, "`margin` = 'R3'", put("margin", 3, "R3"),
         "margin", "must be one of 'R0', 'R1', 'R2', 'Rx'; found 'R3'", ("P04",)),
    Kind("category in the wrong case", V, "`depth` = 'Deep '", put("depth", 3, "Deep "),
         "depth", "found 'Deep '", ("P04",), also=("'Deep ' -> 'deep'",)),
    Kind("unknown grade code", V, "`grade` = 4", put("grade", 3, 4),
         "grade", "must be one of 1, 2, 3; found 4", ("P04",)),
    Kind("RFS longer than LRFS", V, "`rfs_months` > `lrfs_months`",
         lambda df: put("rfs_months", 3, df.loc[3, "lrfs_months"] + 1.0)(df),
         "rfs_months", "must be <= lrfs_months", ("P04",)),
    Kind("events not nested", V, "`lrfs_event` = 0 after a death", put("lrfs_event", 1, 0),
         "lrfs_event", "must be 1 where os_event is 1", ("P02",)),
    Kind("derived time without its event", V, "`os_months` but no `os_event`",
         lambda df: df.drop(columns="os_event"), "os_event", "come in pairs"),
    Kind("derived time disagrees with the dates", V, "`os_months` 5 months longer than the dates",
         lambda df: put("os_months", 3, df.loc[3, "os_months"] + 5.0)(df),
         "os_months", "date", ("P04",)),
    Kind("enormous time", V, "`os_months` = 1e9 (83 million years)", put("os_months", 3, 1e9),
         "os_months", "date", ("P04",)),
    # ---- registries: derive_endpoints --------------------------------------------------------
    Kind("follow-up before surgery", D, "last follow-up a day before surgery",
         shift("last_followup_date", 0, "surgery_date", -1),
         "last_followup_date", "must not be before surgery_date", ("P01",),
         also=("swapped dates",)),
    Kind("relapse after death", D, "local relapse 10 days after death", relapse_after_death,
         "local_relapse_date", "must not be after death_date", ("P02",)),
    Kind("event before surgery", D, "death a month before surgery",
         shift("death_date", 6, "surgery_date", -30),
         "death_date", "must not be before surgery_date", ("P07",)),
    Kind("event after last follow-up", D, "relapse a day after last follow-up",
         shift("local_relapse_date", 7, "last_followup_date", 1),
         "local_relapse_date", "must not be after last_followup_date", ("P08",)),
    Kind("date in the future", D, "last follow-up in 2100",
         put("last_followup_date", 3, pd.Timestamp("2100-01-01")),
         "last_followup_date", "must not be in the future", ("P04",)),
    Kind("implausibly early date", D, "surgery on 1900-01-01",
         put("surgery_date", 3, pd.Timestamp("1900-01-01")),
         "surgery_date", "must be on or after 1950-01-01", ("P04",)),
    Kind("missing surgery date", D, "`surgery_date` = NaT", put("surgery_date", 3, pd.NaT),
         "surgery_date", "must not be missing", ("P04",)),
    Kind("missing last follow-up", D, "`last_followup_date` = NaT",
         put("last_followup_date", 3, pd.NaT), "last_followup_date", "must not be missing",
         ("P04",)),
    Kind("empty table (dates)", D, "no rows", lambda df: df.iloc[:0], "<table>", "no rows"),
    # ---- any survival table: HierarchicalWeibull(...).prepare --------------------------------
    Kind("missing time column", M, "no `t` column", lambda df: df.drop(columns="t"),
         "t", "a column the model uses is missing"),
    Kind("misspelt term", M, "`dos` for `dose`", lambda df: df.rename(columns={"dose": "dos"}),
         "dose", "a column the model uses is missing", also=("did you mean 'dos'",)),
    Kind("times stored as text", M, "`t` = '12.5'", assign("t", lambda df: df["t"].astype(str)),
         "t", "survival times must be numbers, not object", also=("pd.to_numeric",)),
    Kind("one text value among numeric times", M, "`t` = '12,5' in one row",
         put("t", 3, "12,5", as_object=True), "t", "number", ("S003",), also=("'12,5'",)),
    Kind("times as timedeltas", M, "`t` = Timedelta('30 days')",
         assign("t", lambda df: pd.to_timedelta(df["t"], unit="D")),
         "t", "survival times must be numbers, not timedelta64"),
    Kind("missing time (NaN)", M, "`t` = NaN", put("t", 3, np.nan),
         "t", "must have no missing values", ("S003",)),
    Kind("infinite time", M, "`t` = inf", put("t", 3, np.inf), "t", "must be finite", ("S003",)),
    Kind("negative time", M, "`t` = -1", put("t", 3, -1.0), "t", "must be >= 0", ("S003",)),
    Kind("zero time (death on the day of surgery)", M, "`t` = 0", put("t", 3, 0.0),
         "t", "set to 0.01643", ("S003",), expect="warning", warns=bs.ZeroTimeWarning),
    Kind("zero time, zero_time=None", M, "`t` = 0 with `zero_time=None`", put("t", 3, 0.0),
         "t", "must be > 0", ("S003",), kw={"zero_time": None}),
    Kind("event code other than 0/1", M, "`d` = 2", put("d", 3, 2),
         "d", "event flags must be 0/1 or bool", ("S003",)),
    Kind("fractional event", M, "`d` = 0.5",
         assign("d", lambda df: np.where(np.arange(len(df)) == 3, 0.5, df["d"])),
         "d", "event flags must be 0/1 or bool", ("S003",)),
    Kind("event codes as text", M, "'yes' / 'no'",
         assign("d", lambda df: np.where(df["d"] == 1, "yes", "no")),
         "d", "event flags must be 0/1 or bool, not object"),
    Kind("missing event", M, "`d` = NaN",
         assign("d", lambda df: np.where(np.arange(len(df)) == 3, np.nan, df["d"])),
         "d", "must have no missing values", ("S003",)),
    Kind("duplicated ids (table)", M, "S003 renamed S001", put("subject", 3, "S001"),
         "subject", "patient ids must be unique", ("S001",)),
    Kind("missing id (table)", M, "`subject` = NaN", put("subject", 3, np.nan),
         "subject", "missing", (3,)),
    Kind("mixed-type ids (table)", M, "`subject` 3 among 'S000'...", put("subject", 3, 3),
         "subject", "ids must all have one type", (3,), also=("astype(str)",)),
    Kind("cluster with NaN", M, "`site` = NaN", put("site", 3, np.nan),
         "site", "must have no missing values", ("S003",)),
    Kind("mixed-type cluster ids", M, "`site` 3 among 'site-0'...", put("site", 3, 3),
         "site", "ids must all have one type", ("S003",)),
    Kind("empty table (model)", M, "no rows", lambda df: df.iloc[:0], "t", "the table is empty"),
    Kind("single centre", M, "every patient in `site-0`", single_centre,
         "site", "one", expect="either",
         kw={"treatment": None, "terms": ["dose"], "center_level": ()}),
    Kind("all patients censored", M, "`d` = 0 everywhere", assign("d", lambda df: 0),
         "d", "no events", expect="either"),
    Kind("no events in a group", M, "no event where `arm` = 1", no_events_in_arm,
         "arm", "no events", expect="either"),
    Kind("declared centre-level term varies within a centre", M,
         "one `site-3` patient with `arm` = 0", flip_arm,
         "arm", "must be constant within each one", ("S003",), also=("site-3",)),
    Kind("constant term", M, "`dose` = 5 for all", assign("dose", lambda df: 5.0),
         "dose", "a continuous term must vary"),
    Kind("constant binary term", M, "`flag` = True for all", assign("flag", lambda df: True),
         "flag", "a binary term must take both values", kw={"terms": ["dose", "arm", "flag"]}),
    Kind("perfectly collinear terms", M, "`dose2` = 2 `dose` + 1",
         assign("dose2", lambda df: 2 * df["dose"] + 1),
         "dose, dose2", "perfectly collinear", kw={"terms": ["dose", "arm", "dose2"]}),
    Kind("term listed twice", M, "`terms=['dose', 'dose', 'arm']`", lambda df: df,
         "dose", "listed more than once", kw={"terms": ["dose", "dose", "arm"]}),
    Kind("unknown treatment", M, "`treatment='nothere'`", lambda df: df, "nothere",
         "must be one of the terms", error=ValueError, kw={"treatment": "nothere"}),
    Kind("reference level absent", M, "`reference={'stage': 'IV'}`", lambda df: df,
         "stage", "reference level 'IV' is not among the levels",
         kw={"terms": ["dose", "arm", "stage"], "reference": {"stage": "IV"}}),
    Kind("outcome used as a term", M, "`terms=['dose', 'arm', 't']`", lambda df: df,
         "t", "term", kw={"terms": ["dose", "arm", "t"]}),
    Kind("numbers as text in a term", M, "`dose` = '50.3'",
         assign("dose", lambda df: df["dose"].astype(str)), "dose", "pd.to_numeric"),
    Kind("covariate whose square overflows", M, "`dose` = -1e300 in one row",
         put("dose", 3, -1e300), "dose", "S003"),
    Kind("extreme covariate outlier", M, "`dose` = 1e12 among values near 50",
         put("dose", 3, 1e12), "dose", "S003", expect="either"),
    Kind("infinite covariate (table)", M, "`dose` = inf", put("dose", 3, np.inf),
         "dose", "numbers must be finite", ("S003",)),
    Kind("missing covariate (table)", M, "`dose` = NaN", put("dose", 3, np.nan),
         "dose", "must have no missing values", ("S003",)),
    Kind("entry after the end of follow-up", M, "`entry` > `t`",
         assign("entry", lambda df: np.where(np.arange(len(df)) == 3, df["t"] + 1, 0.0)),
         "entry, t", "a patient must enter before the end of follow-up", ("S003",),
         kw={"entry": "entry"}),
    Kind("negative entry", M, "`entry` = -1",
         assign("entry", lambda df: np.where(np.arange(len(df)) == 3, -1.0, 0.0)),
         "entry", "entry times must be finite and >= 0", ("S003",), kw={"entry": "entry"}),
    Kind("entry as text", M, "`entry` = '0'", assign("entry", lambda df: "0"),
         "entry", "entry times must be numbers", kw={"entry": "entry"}),
    Kind("duplicated column names (table)", M, "`t` twice", duplicate_column("t"),
         "t", "unique"),
    Kind("duplicated index without an id column", M, "index all 0, `id_column=None`",
         lambda df: df.set_axis([0] * len(df)), "index", "unique", kw={"id_column": None}),
    # ---- new data against a fitted model -----------------------------------------------------
    Kind("unknown category at prediction", P, "`stage` = 'IV' (not in the fit)",
         put("stage", 3, "IV"), "stage", "values must be levels the model was fitted on",
         ("S003",), also=("'IV'",), kw={"terms": ["dose", "arm", "stage"]}),
    Kind("unknown centre at prediction", P, "`site` = 'site-99'", put("site", 3, "site-99"),
         "site", "centre unknown to the fitted model", ("S003",)),
    # ---- a registry through the endpoint model -----------------------------------------------
    Kind("registry without a model term", R, "no `margin`", lambda df: df.drop(columns="margin"),
         "margin", "a column the model uses is missing"),
    Kind("registry with text dates and no endpoints", R, "dates as '2012-01-01', no *_months",
         lambda df: df.drop(columns=list(schema.DERIVED_COLUMNS)).assign(
             surgery_date=df["surgery_date"].dt.strftime("%Y-%m-%d")),
         "surgery_date", "must have a datetime64 dtype", ("P000001",)),
    Kind("registry with an unknown category", R, "`margin` = 'R3'", put("margin", 3, "R3"),
         "margin", "values must be one of 'R0', 'R1', 'R2', 'Rx'; found 'R3'", ("P000004",)),
]  # fmt: skip


def _call(kind: Kind, df: Any):
    """Run the kind's entry point on ``df``."""
    if kind.entry == V:
        return bs.validate_registry(df)
    if kind.entry == D:
        return bs.derive_endpoints(df)
    if kind.entry == R:
        return bs.HierarchicalWeibull("OS", **kind.kw).prepare(df, learn=True)
    model = bs.HierarchicalWeibull(**{**TABLE_MODEL, **kind.kw})
    if kind.entry == P:
        model.compiled(survival_table())  # learn the coding and the centres (no sampling)
        return model.prepare(df)
    return model.prepare(df, learn=True)


@dataclass
class Outcome:
    result: Any
    error: Exception | None
    warnings: list[warnings.WarningMessage]

    def message(self) -> str:
        if self.error is not None:
            return f"{type(self.error).__name__}: {self.error}"
        return "\n".join(f"{w.category.__name__}: {w.message}" for w in self.warnings)


def run(kind: Kind) -> tuple[Any, Any, Outcome]:
    """Build the kind's bad input and run it; return (input, copy made before, outcome)."""
    df = kind.corrupt(BASES[kind.entry]())
    before = df.copy(deep=True) if isinstance(df, pd.DataFrame) else None
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            result, error = _call(kind, df), None
        except Exception as err:
            result, error = None, err
    return df, before, Outcome(result, error, list(seen))


def _ids_shown(message: str, rows: tuple) -> None:
    for row in rows:
        assert str(row) in message, (row, message)


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(k, id=k.name, marks=pytest.mark.xfail(strict=True, reason=k.xfail))
        if k.xfail
        else pytest.param(k, id=k.name)
        for k in CATALOGUE
    ],
)
def test_bad_input(kind: Kind):
    df, before, out = run(kind)
    message = out.message()
    if kind.expect == "error" or (kind.expect == "either" and out.error is not None):
        assert isinstance(out.error, kind.error), message
        unexpected = [w for w in out.warnings if not issubclass(w.category, kind.warns)]
        assert not unexpected, [str(w.message) for w in unexpected]
        if isinstance(out.error, bs.RegistryError):
            named = [p for p in out.error.problems if kind.column in p.column]
            assert named, message
            assert any(set(kind.rows) <= set(p.rows) for p in named), message
    else:
        assert out.error is None, message
        relevant = [w for w in out.warnings if issubclass(w.category, kind.warns)]
        assert relevant, "expected a warning"
        assert len(relevant) == len(out.warnings), message
        message = "\n".join(str(w.message) for w in relevant)
        # a warning means the input was used: every row is still there
        assert len(out.result.time) == len(df)
    assert kind.column in message
    assert kind.rule in message
    _ids_shown(message, kind.rows)
    for text in kind.also:
        assert text in message
    if before is not None:
        pd.testing.assert_frame_equal(df, before)  # the user's frame is never modified


def test_catalogue_has_at_least_40_distinct_kinds():
    names = [k.name for k in CATALOGUE]
    assert len(set(names)) == len(names)
    assert len(names) >= 40
    caught = [k for k in CATALOGUE if not k.xfail]
    assert len(caught) >= 40


def test_zero_time_is_kept_at_half_a_day():
    """Death on the day of surgery: kept, time set to half a day, the patient named."""
    df = survival_table()
    df.loc[[3, 7], "t"] = 0.0
    df.loc[[3, 7], "d"] = 1
    with pytest.warns(bs.ZeroTimeWarning, match=r"2 patients have t = 0.*S003, S007"):
        prepared = bs.HierarchicalWeibull(**TABLE_MODEL).prepare(df, learn=True)
    assert prepared.n_zero_times == 2
    np.testing.assert_array_equal(prepared.time[[3, 7]], 0.5 / schema.DAYS_PER_MONTH)
    np.testing.assert_array_equal(prepared.event[[3, 7]], 1.0)
    keep = np.ones(len(df), bool)
    keep[[3, 7]] = False
    np.testing.assert_array_equal(prepared.time[keep], df["t"].to_numpy()[keep])
    custom = bs.HierarchicalWeibull(**TABLE_MODEL, zero_time=0.01)
    with pytest.warns(bs.ZeroTimeWarning, match="set to 0.01"):
        assert custom.prepare(df, learn=True).time[3] == 0.01


@pytest.mark.parametrize(
    ("unit", "column", "half_day"),
    [
        ("days", "t", 0.5),
        ("months", "t", 0.5 / 30.4375),
        ("years", "t", 0.5 / 365.25),
        ("auto", "fu_days", 0.5),  # the unit the column's name states
        ("auto", "os_months", 0.5 / 30.4375),
        ("auto", "time.years", 0.5 / 365.25),
    ],
)
def test_the_default_zero_time_is_half_a_day_in_the_tables_time_unit(unit, column, half_day):
    """``zero_time="auto"`` follows ``time_unit``; a number given is kept as it is."""
    df = survival_table().rename(columns={"t": column})
    df.loc[[3, 7], column] = 0.0
    model = bs.HierarchicalWeibull(**{**TABLE_MODEL, "time": column}, time_unit=unit)
    with pytest.warns(bs.ZeroTimeWarning, match=r"half a day, the times being in"):
        prepared = model.prepare(df, learn=True)
    np.testing.assert_allclose(prepared.time[[3, 7]], half_day, rtol=1e-15)
    assert model.to_dict()["time_unit"] in ("days", "months", "years")
    given = bs.HierarchicalWeibull(**{**TABLE_MODEL, "time": column}, time_unit=unit, zero_time=0.2)
    with pytest.warns(bs.ZeroTimeWarning, match="set to 0.2 "):
        assert given.prepare(df, learn=True).time[3] == 0.2


def test_an_unknown_time_unit_keeps_half_a_day_in_months_and_says_so():
    df = survival_table()
    df.loc[3, "t"] = 0.0
    model = bs.HierarchicalWeibull(**TABLE_MODEL)  # "t" states no unit
    assert model.time_unit is None
    with pytest.warns(bs.ZeroTimeWarning, match=r"if the times are in months.*time_unit="):
        assert model.prepare(df, learn=True).time[3] == 0.5 / schema.DAYS_PER_MONTH
    with pytest.raises(ValueError, match="time_unit='hours'"):
        bs.HierarchicalWeibull(**TABLE_MODEL, time_unit="hours")
    with pytest.raises(ValueError, match="zero_time=-1"):
        bs.HierarchicalWeibull(**TABLE_MODEL, zero_time=-1)


def test_a_specification_from_before_time_unit_loads_as_it_was():
    """Old saved fits: no ``time_unit``, ``center_level``; ``zero_time`` a number."""
    spec = bs.HierarchicalWeibull(**TABLE_MODEL).to_dict()
    for key in ("time_unit", "center_level"):
        del spec[key]
    spec["zero_time"] = 0.5 / schema.DAYS_PER_MONTH
    model = bs.HierarchicalWeibull.from_dict(spec)
    assert model.zero_time == spec["zero_time"]
    assert model.center_level == ()  # "arm" was checked as the treatment; now not declared
    df = survival_table()
    df.loc[3, "t"] = 0.0
    with pytest.warns(bs.ZeroTimeWarning, match=r"set to 0.01643 \(the zero_time given\)"):
        assert model.prepare(df, learn=True).time[3] == spec["zero_time"]


def test_derived_zero_time_from_dates_is_kept():
    """A death on the day of surgery derives to time 0, event 1; validation accepts it."""
    out = bs.derive_endpoints(tiny_registry(endpoints=False))
    p06 = out.set_index("patient_id").loc["P06"]
    assert p06["os_months"] == 0.0
    assert p06["os_event"] == 1
    bs.validate_registry(out)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda df: df.assign(t=df["t"].astype(np.float32)), id="float32 times"),
        pytest.param(lambda df: df.assign(t=df["t"].astype("Float64")), id="nullable floats"),
        pytest.param(lambda df: df.assign(t=df["t"].round().clip(lower=1).astype(int)),
                     id="integer times"),
        pytest.param(lambda df: df.assign(d=df["d"].astype(bool)), id="bool events"),
        pytest.param(lambda df: df.assign(d=df["d"].astype("boolean")), id="nullable bool"),
        pytest.param(lambda df: df.assign(d=df["d"].astype(np.int8)), id="int8 events"),
        pytest.param(lambda df: df.assign(d=df["d"].astype(float)), id="float 0/1 events"),
        pytest.param(lambda df: df.assign(site=df["site"].str[5:].astype(int)), id="integer sites"),
        pytest.param(lambda df: df.assign(t=df["t"] * 1e-6), id="tiny time unit"),
        pytest.param(lambda df: df.assign(t=df["t"] * 1e6), id="huge time unit"),
        pytest.param(
            lambda df: df.assign(site=df["site"].astype("category")), id="categorical sites"
        ),
    ],
)  # fmt: skip
def test_valid_variants_are_accepted_silently(change):
    df = change(survival_table())
    before = df.copy(deep=True)
    prepared = bs.HierarchicalWeibull(**TABLE_MODEL).prepare(df, learn=True)  # warnings = errors
    assert len(prepared.time) == len(df)
    assert np.isfinite(prepared.arrays["log_t"]).all()
    pd.testing.assert_frame_equal(df, before)


@pytest.mark.slow  # ~15 s and ~1 GB of frames; measured numbers are in docs/reliability.md
def test_more_than_a_million_rows():
    """Validation and endpoint derivation scale to registries of a million patients.

    Timed, not asserted (the machine is shared); the problems of a huge table still name
    the patients.
    """
    base = bs.simulate_registry(1200, random_seed=5)
    copies = 1000
    big = pd.concat([base] * copies, ignore_index=True)
    big["patient_id"] = pd.Index(np.arange(len(big))).map("Q{:07d}".format)
    big["center_id"] = np.tile(base["center_id"].to_numpy(), copies)
    assert len(big) > 1_000_000
    start = time.perf_counter()
    bs.validate_registry(big)
    validate_s = time.perf_counter() - start
    dates = big.drop(columns=list(schema.DERIVED_COLUMNS))
    start = time.perf_counter()
    derived = bs.derive_endpoints(dates)
    derive_s = time.perf_counter() - start
    np.testing.assert_allclose(derived["os_months"], big["os_months"], rtol=0, atol=1e-12)
    bad = big.copy()
    bad.loc[[12, 1_100_000], "margin"] = "R3"
    before = bad.copy(deep=True)
    with pytest.raises(bs.RegistryError, match=r"margin.*2 rows break it: Q0000012, Q1100000"):
        bs.validate_registry(bad)
    pd.testing.assert_frame_equal(bad, before)
    print(f"\n{len(big)} rows: validate_registry {validate_s:.2f} s, derive {derive_s:.2f} s")


def test_docs_list_every_kind():
    """docs/reliability.md carries the catalogue (python tests/test_bad_inputs.py --write)."""
    text = DOCS.read_text()
    missing = [k.name for k in CATALOGUE if f"| {k.name} |" not in text]
    assert not missing, missing


# -- the Markdown table of docs/reliability.md ----------------------------------------------------
def markdown_table() -> str:
    """Return the catalogue as Markdown, with the messages really given."""
    lines = [
        "| # | kind | entry point | example | what the user gets |",
        "|---|---|---|---|---|",
    ]
    for i, kind in enumerate(CATALOGUE, start=1):
        _, _, out = run(kind)
        text = out.message() or "(accepted silently)"
        text = text.replace("\n", " ").replace("|", "\\|").replace("`", "'")
        if len(text) > 300:
            text = text[:297] + "..."
        status = "**open** (xfail) " if kind.xfail else ""
        lines.append(f"| {i} | {kind.name} | {kind.entry} | {kind.example} | {status}`{text}` |")
    return "\n".join(lines)


START, END = "<!-- catalogue:start -->", "<!-- catalogue:end -->"


def write_docs(path: Path = DOCS) -> None:
    """Replace the table between the catalogue markers of docs/reliability.md."""
    text = path.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{markdown_table()}\n{END}{tail}")


if __name__ == "__main__":
    import logging

    logging.getLogger("pymc").setLevel(logging.WARNING)
    if "--write" in sys.argv:
        write_docs()
    else:
        print(markdown_table())
