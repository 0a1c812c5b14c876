"""plausibility_problems: implausible but possible values, named by column and rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
from registry_factory import tiny_registry

from bayes_sarcoma.data.plausibility import plausibility_problems

TODAY = pd.Timestamp("2026-01-15")


def by_column(df: pd.DataFrame, **kw) -> dict[str, list]:
    found: dict[str, list] = {}
    for p in plausibility_problems(df, today=TODAY, **kw):
        found.setdefault(p.column, []).append(p)
    return found


def test_a_valid_registry_has_nothing_implausible():
    assert plausibility_problems(tiny_registry(), today=TODAY) == []


def test_age_outside_15_to_100_is_named():
    df = tiny_registry()
    df.loc[[1, 6], "age"] = [150, 12]
    [p] = by_column(df)["age"]
    assert p.rows == ("P02", "P07")
    assert "age outside 15-100 years is implausible" in p.rule
    assert "months instead of years" in p.hint


def test_age_columns_of_any_table_by_name():
    df = pd.DataFrame({"subject": ["a", "b"], "Age_years": [40, 101], "stage": [150, 1]})
    found = by_column(df, id_column="subject")
    assert list(found) == ["Age_years"]
    assert found["Age_years"][0].rows == ("b",)


def test_size_above_50_cm_and_500_mm():
    df = tiny_registry().assign(size_mm=40.0)
    df.loc[2, "tumor_size_cm"] = 62.0
    df.loc[3, "size_mm"] = 620.0
    found = by_column(df)
    assert found["tumor_size_cm"][0].rows == ("P03",)
    assert "above 50 cm" in found["tumor_size_cm"][0].rule
    assert "millimetres" in found["tumor_size_cm"][0].hint
    assert found["size_mm"][0].rows == ("P04",)
    assert "above 500 mm" in found["size_mm"][0].rule


def test_dates_in_the_future_or_before_1900():
    df = tiny_registry()
    df.loc[4, "last_followup_date"] = pd.Timestamp("2031-05-01")
    df.loc[5, "surgery_date"] = pd.Timestamp("1899-12-31")
    found = by_column(df)
    [future] = found["last_followup_date"]
    assert future.rows == ("P05",)
    assert "in the future (after today, 2026-01-15)" in future.rule
    [early] = found["surgery_date"]
    assert early.rows == ("P06",)
    assert "before 1900" in early.rule


def test_text_and_missing_values_are_not_its_business():
    df = pd.DataFrame({"age": ["150", None], "tumor_size": [np.nan, 3.0]})
    assert plausibility_problems(df, today=TODAY) == []


def test_rows_are_named_by_the_index_without_an_id_column():
    df = pd.DataFrame({"age": [40, 120]}, index=[10, 11])
    [p] = plausibility_problems(df, id_column=None, today=TODAY)
    assert p.rows == (11,)
