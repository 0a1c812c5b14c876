"""Property-based tests (hypothesis): random registries, random tables, random corruptions.

Validation: every corruption of a random registry is reported, naming its patient; no
patient who was not corrupted is ever named; the input is never modified. Endpoint
derivation: per patient, so row order, subsets and a common shift of all dates do not
change anyone's endpoints. Model tables: ``prepare`` keeps every row in order, and a
corruption anywhere is reported with its row.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from registry_factory import registries, survival_tables

import bayes_sarcoma as bs
from bayes_sarcoma.data import schema

DAY = np.timedelta64(1, "D")
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def frame_hash(df: pd.DataFrame) -> int:
    """A fingerprint of values, dtypes, index and column names (detects any mutation)."""
    values = int(pd.util.hash_pandas_object(df, index=True).sum())
    return hash((values, tuple(map(str, df.dtypes)), tuple(df.columns), len(df)))


# -- registry corruptions ---------------------------------------------------------------------
def _young(df, i):
    df.loc[i, "age"] = 10
    return "age", "must be >= 15"


def _old(df, i):
    df.loc[i, "age"] = 150
    return "age", "must be >= 15 and < 110"


def _age_missing(df, i):
    df["age"] = df["age"].astype(float)
    df.loc[i, "age"] = np.nan
    return "age", "must not be missing"


def _size_zero(df, i):
    df.loc[i, "tumor_size_cm"] = 0.0
    return "tumor_size_cm", "must be > 0"


def _size_inf(df, i):
    df.loc[i, "tumor_size_cm"] = np.inf
    return "tumor_size_cm", "must be finite"


def _margin(df, i):
    df.loc[i, "margin"] = "R3"
    return "margin", "found 'R3'"


def _sex(df, i):
    df.loc[i, "sex"] = "Female"
    return "sex", "found 'Female'"


def _grade(df, i):
    df.loc[i, "grade"] = 4
    return "grade", "found 4"


def _centre_missing(df, i):
    df.loc[i, "center_id"] = None
    return "center_id", "must not be missing"


def _relapse_after_death(df, i):
    death = df.loc[i, "surgery_date"] + 10 * DAY
    df.loc[i, ["death_date", "last_followup_date"]] = death
    df.loc[i, "distant_relapse_date"] = death + DAY
    return "distant_relapse_date", "must not be after death_date"


def _followup_before_surgery(df, i):
    df.loc[i, "last_followup_date"] = df.loc[i, "surgery_date"] - 3 * DAY
    return "last_followup_date", "must not be before surgery_date"


def _death_before_surgery(df, i):
    df.loc[i, "death_date"] = df.loc[i, "surgery_date"] - 30 * DAY
    return "death_date", "must not be before surgery_date"


def _old_surgery(df, i):
    df.loc[i, "surgery_date"] = pd.Timestamp("1900-01-01")
    return "surgery_date", "on or after 1950-01-01"


def _future(df, i):
    df.loc[i, "last_followup_date"] = pd.Timestamp("2200-01-01")
    return "last_followup_date", "must not be in the future"


def _followup_missing(df, i):
    df.loc[i, "last_followup_date"] = pd.NaT
    return "last_followup_date", "must not be missing"


#: Corruptions of a patient's values (covariates and ids) and of the dates.
VALUE_KINDS = [_young, _old, _age_missing, _size_zero, _size_inf, _margin, _sex, _grade]
VALUE_KINDS += [_centre_missing]
DATE_KINDS = [_relapse_after_death, _followup_before_surgery, _death_before_surgery]
DATE_KINDS += [_old_surgery, _future, _followup_missing]


def _negative_time(df, i):
    df.loc[i, "os_months"] = -1.0
    return "os_months", "must be >= 0"


def _event_two(df, i):
    df.loc[i, "os_event"] = 2
    return "os_event", "found 2"


def _rfs_too_long(df, i):
    df.loc[i, "rfs_months"] = df.loc[i, "lrfs_months"] + 1.0
    return "rfs_months", "must be <= lrfs_months"


DERIVED_KINDS = [_negative_time, _event_two, _rfs_too_long]


def _corrupt(data, df: pd.DataFrame, kinds) -> dict[str, tuple[str, str]]:
    """Corrupt 1-3 distinct random patients; return id -> (column, rule fragment)."""
    n = data.draw(st.integers(1, min(3, len(df))), label="how many")
    rows = data.draw(st.permutations(range(len(df))), label="order")[:n]
    done = {}
    for i in rows:
        kind = data.draw(st.sampled_from(kinds), label="kind")
        done[f"P{i}"] = kind(df, i)
    return done


def _check_report(found: list[bs.Problem], corrupted: dict[str, tuple[str, str]]) -> None:
    shown = [str(p) for p in found]
    for pid, (column, rule) in corrupted.items():
        assert any(p.column == column and rule in p.rule and pid in p.rows for p in found), (
            pid,
            column,
            shown,
        )
    named = {row for p in found for row in p.rows}
    assert named <= set(corrupted), (named, shown)  # nobody else is blamed


@PROPERTY
@given(registries(), st.data())
def test_every_corruption_is_reported_and_nobody_else_is_named(df, data):
    with_endpoints = data.draw(st.booleans(), label="with endpoints")
    if with_endpoints:
        df = bs.derive_endpoints(df)
    kinds = VALUE_KINDS + DATE_KINDS + (DERIVED_KINDS if with_endpoints else [])
    corrupted = _corrupt(data, df, kinds)
    fingerprint = frame_hash(df)
    with pytest.raises(bs.RegistryError) as info:
        bs.validate_registry(df)
    assert frame_hash(df) == fingerprint
    _check_report(info.value.problems, corrupted)
    for p in info.value.problems:  # one error lists them all
        assert str(p) in str(info.value)


@PROPERTY
@given(registries(), st.data())
def test_date_corruptions_stop_endpoint_derivation(df, data):
    corrupted = _corrupt(data, df, DATE_KINDS)
    fingerprint = frame_hash(df)
    with pytest.raises(bs.RegistryError) as info:
        bs.derive_endpoints(df)
    assert frame_hash(df) == fingerprint
    _check_report(info.value.problems, corrupted)


@PROPERTY
@given(registries())
def test_validation_returns_an_equal_copy_and_never_mutates(df):
    fingerprint = frame_hash(df)
    out = bs.validate_registry(df)
    assert out is not df
    assert frame_hash(df) == fingerprint
    pd.testing.assert_frame_equal(out, df)


# -- endpoint derivation ----------------------------------------------------------------------
def _by_patient(out: pd.DataFrame) -> pd.DataFrame:
    return out.set_index("patient_id")[list(schema.DERIVED_COLUMNS)].sort_index()


@PROPERTY
@given(registries(), st.randoms(use_true_random=False))
def test_derivation_does_not_depend_on_row_order_or_other_rows(df, random):
    out = bs.derive_endpoints(df)
    assert out.index.equals(df.index)
    assert list(out.columns) == [*df.columns, *schema.DERIVED_COLUMNS]
    order = list(df.index)
    random.shuffle(order)
    shuffled = bs.derive_endpoints(df.loc[order])
    assert shuffled.index.tolist() == order
    pd.testing.assert_frame_equal(_by_patient(shuffled), _by_patient(out))
    keep = sorted(random.sample(order, k=max(1, len(order) // 2)))
    pd.testing.assert_frame_equal(bs.derive_endpoints(df.loc[keep]), out.loc[keep])


@PROPERTY
@given(registries(), st.integers(-3000, 300))
def test_shifting_every_date_changes_no_endpoint(df, days):
    shifted = df.copy()
    for column in schema.DATE_COLUMNS:
        shifted[column] = shifted[column] + days * DAY
    a, b = bs.derive_endpoints(df), bs.derive_endpoints(shifted)
    pd.testing.assert_frame_equal(
        a[list(schema.DERIVED_COLUMNS)], b[list(schema.DERIVED_COLUMNS)], check_exact=True
    )


@PROPERTY
@given(registries())
def test_times_are_whole_days_and_events_match_the_dates(df):
    out = bs.derive_endpoints(df)
    for endpoint, (time, event) in schema.ENDPOINTS.items():
        days = out[time] * schema.DAYS_PER_MONTH
        np.testing.assert_allclose(days, days.round(), rtol=0, atol=1e-9)
        observed = df[list(schema.ENDPOINT_EVENTS[endpoint])].notna().any(axis=1)
        np.testing.assert_array_equal(out[event].to_numpy(), observed.to_numpy().astype(int))


# -- any survival table through the model's checks --------------------------------------------
MODEL = dict(time="months", event="died", cluster="site", terms=(), id_column="subject")


@PROPERTY
@given(survival_tables())
def test_prepare_keeps_every_row_in_order(df):
    assume(df["died"].any())  # an all-censored table is an error, tested in the catalogue
    fingerprint = frame_hash(df)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        prepared = bs.HierarchicalWeibull(**MODEL).prepare(df, learn=True)
    assert frame_hash(df) == fingerprint
    zero = df["months"].to_numpy() == 0
    expected = {bs.ZeroTimeWarning} if zero.any() else set()
    if df["site"].nunique() == 1:
        expected.add(bs.DataWarning)  # one cluster: its sd is learnt from the prior alone
    assert {w.category for w in seen} == expected
    assert prepared.n_zero_times == zero.sum()
    np.testing.assert_array_equal(prepared.patient_ids, df["subject"].to_numpy())
    np.testing.assert_array_equal(prepared.event, df["died"].to_numpy())
    np.testing.assert_array_equal(prepared.time[~zero], df["months"].to_numpy()[~zero])
    assert (prepared.time > 0).all()
    assert np.isfinite(prepared.arrays["log_t"]).all()
    np.testing.assert_array_equal(prepared.center_ids[prepared.center_index], df["site"].to_numpy())


def _nan_time(df, i):
    df.loc[i, "months"] = np.nan
    return "months"


def _inf_time(df, i):
    df.loc[i, "months"] = np.inf
    return "months"


def _negative(df, i):
    df.loc[i, "months"] = -0.5
    return "months"


def _event_code(df, i):
    df.loc[i, "died"] = 2
    return "died"


def _site_missing(df, i):
    df.loc[i, "site"] = None
    return "site"


TABLE_KINDS = [_nan_time, _inf_time, _negative, _event_code, _site_missing]


@PROPERTY
@given(survival_tables(), st.data())
def test_a_corrupted_table_is_reported_with_its_row(df, data):
    assume(len(df) >= 2)
    i = data.draw(st.integers(0, len(df) - 1), label="row")
    column = data.draw(st.sampled_from(TABLE_KINDS), label="kind")(df, i)
    fingerprint = frame_hash(df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.ZeroTimeWarning)  # zero times elsewhere are fine
        with pytest.raises(bs.RegistryError) as info:
            bs.HierarchicalWeibull(**MODEL).prepare(df, learn=True)
    assert frame_hash(df) == fingerprint
    found = info.value.problems
    assert any(p.column == column and f"S{i}" in p.rows for p in found), str(info.value)
    assert {r for p in found for r in p.rows} == {f"S{i}"}, str(info.value)
