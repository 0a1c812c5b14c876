"""validate_registry: one test per rule, each checking the column, an id and the rule text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from registry_factory import registries, tiny_registry

from bayes_sarcoma.data.errors import Problem, RegistryError
from bayes_sarcoma.data.validation import (
    check_cluster_column,
    check_event_column,
    check_time_column,
    validate_registry,
)

DAY = np.timedelta64(1, "D")


def problems_of(df: pd.DataFrame) -> list[Problem]:
    with pytest.raises(RegistryError) as info:
        validate_registry(df)
    for p in info.value.problems:  # every problem is in the one message
        assert str(p) in str(info.value)
    return info.value.problems


def the_problem(
    df: pd.DataFrame,
    column: str,
    rule: str,
    ids=(),
    *,
    hint: str = "",
    only: bool = True,
    n: int | None = None,
) -> Problem:
    """Assert validation fails with one problem on ``column`` whose rule has ``rule``.

    ``ids`` must be shown in the message; ``n`` rows break it (``len(ids)`` by default);
    with ``only`` it must be the only problem found.
    """
    found = problems_of(df)
    if only:
        assert len(found) == 1, [str(p) for p in found]
    matches = [p for p in found if p.column == column and rule in p.rule]
    assert len(matches) == 1, [str(p) for p in found]
    p = matches[0]
    assert f"column '{column}'" in str(p)
    assert rule in str(p)
    assert set(ids) <= set(p.rows), (ids, p.rows)
    for i in ids:
        assert str(i) in str(p)
    if ids or n is not None:
        assert p.n_rows == (len(ids) if n is None else n)
    assert hint in p.hint
    return p


# --------------------------------------------------------------------------- valid input
def test_valid_registry_returns_an_equal_copy_and_leaves_input_alone():
    df = tiny_registry()
    before = df.copy(deep=True)
    out = validate_registry(df)
    pd.testing.assert_frame_equal(out, before)
    pd.testing.assert_frame_equal(df, before)
    assert out is not df
    out.loc[0, "age"] = 99
    assert df.loc[0, "age"] == before.loc[0, "age"]  # a deep copy, not a view


def test_registry_without_derived_columns_is_valid():
    df = tiny_registry(endpoints=False)
    pd.testing.assert_frame_equal(validate_registry(df), df)


def test_failed_validation_leaves_input_alone():
    df = tiny_registry()
    df["age"] = df["age"].astype(str)
    df.loc[2, "margin"] = "R3"
    before = df.copy(deep=True)
    problems_of(df)
    pd.testing.assert_frame_equal(df, before)


def test_accepted_variants_of_types():
    df = tiny_registry()
    df["expert_center"] = df["expert_center"].astype("int64")  # 0/1 integers
    df["patient_id"] = np.arange(100, 100 + len(df))  # integer ids
    df["age"] = df["age"].astype(float) + 0.5
    df["margin"] = df["margin"].astype("category")
    df["surgery_date"] = df["surgery_date"].astype("datetime64[s]")
    validate_registry(df)


# ------------------------------------------------------------------------- the table
def test_not_a_dataframe_is_a_type_error():
    with pytest.raises(TypeError, match="expected a pandas DataFrame, got list"):
        validate_registry([{"patient_id": "P1"}])


def test_empty_table():
    p = the_problem(tiny_registry().iloc[:0], "<table>", "the table has no rows")
    assert str(p) == "column '<table>': the table has no rows"


def test_duplicate_column_names():
    df = tiny_registry()
    df = pd.concat([df, df[["age"]]], axis=1)
    the_problem(df, "age", "column names must be unique")


def test_missing_column_with_close_name_gets_a_hint():
    df = tiny_registry().rename(columns={"tumor_size_cm": "tumour_size_cm"})
    p = the_problem(df, "tumor_size_cm", "required column is missing")
    assert p.hint == "did you mean 'tumour_size_cm'?"


def test_missing_columns_are_all_listed():
    df = tiny_registry().drop(columns=["margin", "death_date"])
    found = problems_of(df)
    assert [p.column for p in found] == ["margin", "death_date"]
    assert all(p.rule == "required column is missing" and not p.hint for p in found)


# ------------------------------------------------------------------------------ types
def test_numbers_stored_as_text():
    df = tiny_registry()
    df["age"] = df["age"].astype(str)
    p = the_problem(df, "age", "age must have a numeric dtype, not object", ["P01"], n=len(df))
    assert "pd.to_numeric(df['age'])" in p.hint


def test_text_that_is_not_a_number_is_named():
    df = tiny_registry()
    df["tumor_size_cm"] = df["tumor_size_cm"].astype(str)
    df.loc[3, "tumor_size_cm"] = "15,5"
    the_problem(
        df,
        "tumor_size_cm",
        "tumor_size_cm must be numeric; found text that is not a number: '15,5'",
        ["P04"],
        hint="pd.to_numeric",
    )


def test_type_error_is_not_repeated_as_value_errors():
    df = tiny_registry()
    df["age"] = df["age"].astype(str)
    df.loc[0, "age"] = "10"  # out of range, but the type problem is reported alone
    the_problem(df, "age", "numeric dtype")


def test_bool_is_not_a_number():
    df = tiny_registry()
    df["age"] = df["age"] > 50
    the_problem(df, "age", "age must have a numeric dtype, not bool", ["P01"], n=9)


def test_dates_stored_as_text_get_a_format_hint():
    df = tiny_registry()
    df["surgery_date"] = df["surgery_date"].dt.strftime("%d/%m/%Y")
    p = the_problem(df, "surgery_date", "surgery_date must have a datetime64 dtype, not object")
    assert p.n_rows == len(df)
    assert "pd.to_datetime(df['surgery_date'], format='%d/%m/%Y')" in p.hint


def test_all_missing_optional_date_must_still_be_datetime():
    df = tiny_registry(endpoints=False)
    df["death_date"] = np.nan
    p = the_problem(df, "death_date", "must have a datetime64 dtype, not float64", ["P01"], n=9)
    assert p.hint == "convert with df['death_date'] = pd.to_datetime(df['death_date'])"


def test_timezone_aware_dates():
    df = tiny_registry()
    df["last_followup_date"] = df["last_followup_date"].dt.tz_localize("Europe/Paris")
    the_problem(
        df, "last_followup_date", "must be timezone-naive", ["P01"], hint="tz_localize", n=9
    )


def test_expert_center_as_text():
    df = tiny_registry()
    df["expert_center"] = np.where(df["expert_center"], "yes", "no")
    p = the_problem(df, "expert_center", "must have bool or integer dtype with values 0/1")
    assert "found 'no', 'yes'" in p.rule
    assert p.rows[0] == "P01"
    assert "map" in p.hint


def test_expert_center_integers_other_than_0_1():
    df = tiny_registry()
    df["expert_center"] = df["expert_center"].astype("int64")
    df.loc[df["center_id"] == "C02", "expert_center"] = 2
    the_problem(df, "expert_center", "expert_center must be one of 0, 1; found 2", ["P05", "P06"])


def test_grade_as_text_digits():
    df = tiny_registry()
    df["grade"] = df["grade"].astype(str)
    p = the_problem(df, "grade", "grade must have integer dtype with values 1/2/3, not object")
    assert "found '1', '2', '3'" in p.rule
    assert "pd.to_numeric(df['grade'])" in p.hint


def test_integral_float_grade_is_rejected_with_a_hint():
    df = tiny_registry()
    df["grade"] = df["grade"].astype(float)
    p = the_problem(
        df, "grade", "grade must have integer dtype with values 1/2/3, not float64", n=0
    )
    assert "no row is wrong" in p.rule
    assert "astype('int64')" in p.hint
    assert "written as 3.0" in p.hint


def test_float_grade_counts_only_the_rows_that_break_the_rule():
    # One bad value in a float column names that row, not every row of the table.
    df = tiny_registry()
    df["grade"] = df["grade"].astype(float)
    df.loc[4, "grade"] = 2.5
    p = the_problem(df, "grade", "not float64; found 2.5", ["P05"])
    assert p.n_rows == 1


def test_float_grade_with_a_missing_value_names_the_missing_row_only():
    df = tiny_registry()
    df["grade"] = df["grade"].astype(float)
    df.loc[2, "grade"] = np.nan
    found = {p.rule.split(" (")[0]: p for p in problems_of(df)}
    assert found["grade must not be missing"].rows == ("P03",)
    typed = found["grade must have integer dtype with values 1/2/3, not float64"]
    assert typed.n_rows == 0


def test_unknown_grade():
    df = tiny_registry()
    df.loc[4, "grade"] = 4
    the_problem(df, "grade", "grade must be one of 1, 2, 3; found 4", ["P05"])


# -------------------------------------------------------------------------------- ids
def test_patient_id_unique():
    df = tiny_registry()
    df.loc[5, "patient_id"] = "P02"
    p = the_problem(df, "patient_id", "patient_id must be unique", ["P02"])
    assert p.n_rows == 1


def test_patient_id_missing_rows_named_by_index():
    df = tiny_registry()
    df.loc[7, "patient_id"] = None
    p = the_problem(df, "patient_id", "patient_id must not be missing", [7])
    assert "(1 row breaks it: 7)" in str(p)


def test_mixed_type_ids():
    df = tiny_registry()
    df["center_id"] = df["center_id"].astype(object)
    df.loc[6, "center_id"] = 101
    the_problem(df, "center_id", "center_id must hold ids of one type; found int, str", ["P07"])


def test_center_id_missing():
    df = tiny_registry()
    df.loc[8, "center_id"] = np.nan
    the_problem(df, "center_id", "center_id must not be missing", ["P09"])


# ------------------------------------------------------------------- missing and inf
@pytest.mark.parametrize("column", ["age", "sex", "tumor_size_cm", "depth", "margin"])
def test_required_values_not_missing(column):
    df = tiny_registry()
    df.loc[1, column] = None
    the_problem(df, column, f"{column} must not be missing", ["P02"])


@pytest.mark.parametrize("column", ["surgery_date", "last_followup_date"])
def test_required_dates_not_missing(column):
    df = tiny_registry(endpoints=False)
    df.loc[2, column] = pd.NaT
    the_problem(df, column, f"{column} must not be missing", ["P03"])


def test_expert_center_missing():
    df = tiny_registry()
    df["expert_center"] = df["expert_center"].astype(object)
    df.loc[0, "expert_center"] = None
    the_problem(df, "expert_center", "expert_center must not be missing", ["P01"])


def test_infinite_size():
    df = tiny_registry()
    df.loc[6, "tumor_size_cm"] = np.inf
    p = the_problem(df, "tumor_size_cm", "tumor_size_cm must be finite", ["P07"])
    assert p.rule == "tumor_size_cm must be finite, not inf"


# ----------------------------------------------------------------------------- ranges
AGES = [(10, False), (14.9, False), (15, True), (109.9, True), (110, False)]


@pytest.mark.parametrize(("age", "ok"), AGES)
def test_age_range(age, ok):
    df = tiny_registry()
    df["age"] = df["age"].astype(float)
    df.loc[3, "age"] = age
    if ok:
        validate_registry(df)
    else:
        the_problem(df, "age", "age must be >= 15 and < 110 years", ["P04"])


def test_young_age_hint():
    df = tiny_registry()
    df.loc[0, "age"] = 10
    p = the_problem(df, "age", "age must be >= 15", ["P01"])
    assert "15 or older" in p.hint


@pytest.mark.parametrize("size", [0.0, -3.0, 100.0])
def test_tumour_size_range(size):
    df = tiny_registry()
    df.loc[2, "tumor_size_cm"] = size
    the_problem(df, "tumor_size_cm", "tumor_size_cm must be > 0 and < 100 cm", ["P03"])


def test_tumour_size_in_mm_gets_a_hint():
    df = tiny_registry()
    df.loc[2, "tumor_size_cm"] = 250.0
    p = the_problem(df, "tumor_size_cm", "must be > 0 and < 100 cm", ["P03"])
    assert "millimetres" in p.hint


# ------------------------------------------------------------------------- categories
def test_unknown_category_named():
    df = tiny_registry()
    df.loc[[2, 4], "margin"] = "R3"
    the_problem(
        df, "margin", "margin must be one of 'R0', 'R1', 'R2', 'Rx'; found 'R3'", ["P03", "P05"]
    )


def test_case_and_whitespace_variants_are_errors_with_a_hint():
    df = tiny_registry()
    df.loc[0, "margin"] = "r0 "
    df.loc[1, "sex"] = "Male"
    found = problems_of(df)
    assert [p.column for p in found] == ["sex", "margin"]
    sex, margin = found
    assert "found 'r0 '" in margin.rule
    assert margin.rows == ("P01",)
    assert "'r0 ' -> 'R0'" in margin.hint
    assert sex.rows == ("P02",)
    assert "'Male' -> 'male'" in sex.hint


# --------------------------------------------------------------------------- centres
def test_expert_center_constant_within_centre():
    df = tiny_registry()
    df.loc[2, "expert_center"] = False  # P03 in C01, whose other patients are expert
    p = the_problem(df, "expert_center", "expert_center must be constant within a centre", ["P03"])
    assert "centre(s) 'C01'" in p.rule


# ------------------------------------------------------------------------------ dates
DATE_CASES = [
    # (column, other, shift (days) of column relative to other, rule fragment, patient row)
    ("local_relapse_date", "surgery_date", -5, "must not be before surgery_date", 1),
    ("distant_relapse_date", "surgery_date", -1, "must not be before surgery_date", 2),
    ("death_date", "surgery_date", -30, "must not be before surgery_date", 6),
    ("last_followup_date", "surgery_date", -1, "must not be before surgery_date", 0),
]


@pytest.mark.parametrize(("column", "other", "shift", "rule", "row"), DATE_CASES)
def test_date_not_before_surgery(column, other, shift, rule, row):
    df = tiny_registry(endpoints=False)
    df.loc[row, column] = df.loc[row, other] + shift * DAY
    found = problems_of(df)
    ids = (f"P0{row + 1}",)
    assert any(p.column == column and p.rule == f"{column} {rule}" and p.rows == ids for p in found)


@pytest.mark.parametrize("column", ["local_relapse_date", "distant_relapse_date"])
def test_relapse_not_after_death(column):
    df = tiny_registry(endpoints=False)
    df.loc[6, "last_followup_date"] += 100 * DAY  # P07 died at day 1200; follow-up later
    df.loc[6, column] = df.loc[6, "death_date"] + 10 * DAY
    p = the_problem(df, column, f"{column} must not be after death_date", ["P07"])
    assert "after death" in p.hint


@pytest.mark.parametrize("column", ["local_relapse_date", "distant_relapse_date", "death_date"])
def test_event_not_after_last_followup(column):
    df = tiny_registry(endpoints=False)
    df.loc[0, column] = df.loc[0, "last_followup_date"] + DAY  # P01 had no event
    p = the_problem(df, column, f"{column} must not be after last_followup_date", ["P01"])
    assert "censored at last follow-up" in p.hint


def test_no_future_dates():
    df = tiny_registry(endpoints=False)
    df.loc[3, "last_followup_date"] = pd.Timestamp.today().normalize() + 40 * DAY
    p = the_problem(df, "last_followup_date", "must not be in the future", ["P04"])
    assert "after today" in p.rule


def test_surgery_date_plausible():
    df = tiny_registry(endpoints=False)
    df.loc[8, "surgery_date"] = pd.Timestamp("1900-01-01")
    the_problem(df, "surgery_date", "surgery_date must be on or after 1950-01-01", ["P09"])


def test_today_is_not_in_the_future():
    df = tiny_registry(endpoints=False)
    df.loc[0, "last_followup_date"] = pd.Timestamp.today().normalize()
    validate_registry(df)


# ------------------------------------------------------------------ derived endpoints
def test_derived_time_negative_missing_and_infinite():
    df = tiny_registry()
    df.loc[0, "os_months"] = -1.0
    df.loc[1, "lrfs_months"] = np.nan
    df.loc[2, "rfs_months"] = np.inf
    found = {(p.column, p.rule): p.rows for p in problems_of(df)}
    assert found[("os_months", "os_months must be >= 0")] == ("P01",)
    assert found[("lrfs_months", "lrfs_months must not be missing")] == ("P02",)
    assert found[("rfs_months", "rfs_months must be finite, not inf")] == ("P03",)


def test_derived_event_not_0_1():
    df = tiny_registry()
    df.loc[3, "os_event"] = 2
    the_problem(df, "os_event", "os_event must be one of 0, 1; found 2", ["P04"], only=False)


def test_derived_event_as_float_is_rejected():
    df = tiny_registry()
    df["rfs_event"] = df["rfs_event"].astype(float)
    the_problem(df, "rfs_event", "rfs_event must have bool or integer dtype", n=0)


def test_derived_times_must_nest():
    df = tiny_registry()
    df.loc[2, "rfs_months"] = df.loc[2, "lrfs_months"] + 1  # P03: RFS > LRFS
    df.loc[0, "lrfs_months"] = df.loc[0, "os_months"] + 1  # P01: LRFS > OS (and > RFS)
    found = {p.rule: p.rows for p in problems_of(df)}
    assert found["rfs_months must be <= lrfs_months (RFS <= LRFS <= OS)"] == ("P03",)
    assert found["lrfs_months must be <= os_months (RFS <= LRFS <= OS)"] == ("P01",)


def test_derived_events_must_nest():
    df = tiny_registry()
    df.loc[0, "os_event"] = 1  # P01 died but LRFS and RFS censored
    found = {p.rule: p.rows for p in problems_of(df)}
    rule = "lrfs_event must be 1 where os_event is 1 (rfs_event >= lrfs_event >= os_event)"
    assert found == {rule: ("P01",)}


def test_derived_columns_come_in_pairs():
    df = tiny_registry().drop(columns=["rfs_event"])
    the_problem(df, "rfs_event", "rfs_months is present without rfs_event")


# ----------------------------------------------------------------------- all at once
def test_every_problem_is_reported_in_one_error():
    df = tiny_registry()
    df.loc[0, "age"] = 10
    df.loc[1, "margin"] = "R3"
    df.loc[2, "patient_id"] = "P01"
    df.loc[4, "local_relapse_date"] = df.loc[4, "death_date"] + DAY
    with pytest.raises(RegistryError) as info:
        validate_registry(df)
    message = str(info.value)
    assert message.startswith(f"{len(info.value.problems)} problems in the table:")
    assert set(info.value.columns) >= {"age", "margin", "patient_id", "local_relapse_date"}
    for fragment in ("age must be >= 15", "'R3'", "patient_id must be unique", "P05"):
        assert fragment in message


# --------------------------------------------------------------------- column helpers
def test_check_time_column():
    df = pd.DataFrame({"id": ["a", "b", "c", "d"], "t": [1.0, -1.0, np.nan, np.inf]})
    found = {p.rule: p.rows for p in check_time_column(df, "t", id_column="id")}
    assert found == {
        "t must not be missing": ("c",),
        "t must be finite, not inf": ("d",),
        "t must be >= 0": ("b",),
    }
    assert check_time_column(df.iloc[:1], "t") == []
    [p] = check_time_column(df.assign(t=["1", "x", "2", "3"]), "t")
    assert "'x'" in p.rule
    assert p.rows == (1,)
    assert check_time_column(df, "time")[0].rule == "required column is missing"


def test_check_event_column():
    assert check_event_column(pd.DataFrame({"d": [True, False]}), "d") == []
    assert check_event_column(pd.DataFrame({"d": [0, 1]}), "d") == []
    [p] = check_event_column(pd.DataFrame({"d": [0, 1, 3]}), "d")
    assert p.rows == (2,)
    [p] = check_event_column(pd.DataFrame({"d": [0.0, 1.0]}), "d")
    assert "not float64" in p.rule
    found = check_event_column(pd.DataFrame({"d": [0.0, None]}), "d")
    assert {p.rule.split(" (")[0] for p in found} >= {"d must not be missing"}


def test_check_cluster_column():
    assert check_cluster_column(pd.DataFrame({"c": [1, 2]}), "c") == []
    df = pd.DataFrame({"c": ["A", None, 3, "B"]})
    found = {p.rule: p.rows for p in check_cluster_column(df, "c")}
    assert found == {
        "c must hold ids of one type; found int, str": (2,),
        "c must not be missing": (1,),
    }


# ------------------------------------------------------------------------- properties
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(registries())
def test_random_valid_registries_validate(df):
    pd.testing.assert_frame_equal(validate_registry(df), df)


def _corrupt(df: pd.DataFrame, i: int, kind: str) -> tuple[str, str]:
    """Break one rule for patient ``i``; return the (column, rule fragment) expected."""
    if kind == "young":
        df.loc[i, "age"] = 10
        return "age", "age must be >= 15"
    if kind == "size":
        df.loc[i, "tumor_size_cm"] = 0.0
        return "tumor_size_cm", "must be > 0"
    if kind == "margin":
        df.loc[i, "margin"] = "R3"
        return "margin", "found 'R3'"
    if kind == "relapse after death":
        death = df.loc[i, "surgery_date"] + 10 * DAY
        df.loc[i, ["death_date", "last_followup_date"]] = death
        df.loc[i, "local_relapse_date"] = death + DAY
        return "local_relapse_date", "must not be after death_date"
    if kind == "follow-up before surgery":
        df.loc[i, "last_followup_date"] = df.loc[i, "surgery_date"] - DAY
        return "last_followup_date", "must not be before surgery_date"
    if kind == "death before surgery":
        df.loc[i, "death_date"] = df.loc[i, "surgery_date"] - 30 * DAY
        return "death_date", "must not be before surgery_date"
    if kind == "old surgery":
        df.loc[i, "surgery_date"] = pd.Timestamp("1900-01-01")
        return "surgery_date", "on or after 1950-01-01"
    df.loc[i, "surgery_date"] = pd.NaT
    return "surgery_date", "must not be missing"


KINDS = ["young", "size", "margin", "relapse after death", "follow-up before surgery"]
KINDS += ["death before surgery", "old surgery", "missing surgery"]


@FAST
@given(registries(), st.data())
def test_single_corruption_is_caught_and_names_the_patient(df, data):
    i = data.draw(st.integers(0, len(df) - 1), label="patient")
    column, rule = _corrupt(df, i, data.draw(st.sampled_from(KINDS), label="kind"))
    found = problems_of(df)
    assert any(p.column == column and rule in p.rule and p.rows == (f"P{i}",) for p in found), [
        str(p) for p in found
    ]
