"""derive_endpoints: hand-made cases, contract of the returned frame, a property test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from registry_factory import EXPECTED_DAYS, registries, tiny_registry

from bayes_sarcoma.data import schema
from bayes_sarcoma.data.endpoints import derive_endpoints
from bayes_sarcoma.data.errors import RegistryError
from bayes_sarcoma.data.validation import validate_registry

DAY = np.timedelta64(1, "D")


def endpoint(out: pd.DataFrame, patient: str, name: str) -> tuple[float, int]:
    time, event = schema.ENDPOINTS[name]
    row = out.set_index("patient_id").loc[patient]
    return row[time], row[event]


@pytest.mark.parametrize("patient", sorted(EXPECTED_DAYS))
@pytest.mark.parametrize("name", ["LRFS", "RFS", "OS"])
def test_hand_made_cases(patient, name):
    out = derive_endpoints(tiny_registry(endpoints=False))
    days, event = EXPECTED_DAYS[patient][name]
    time, got = endpoint(out, patient, name)
    assert time == pytest.approx(days / 30.4375, rel=1e-12, abs=0)
    assert got == event


def test_specific_cases_spelled_out():
    out = derive_endpoints(tiny_registry(endpoints=False))
    # P04: local and distant relapse on the same day: one event at that day
    assert endpoint(out, "P04", "RFS") == endpoint(out, "P04", "LRFS") == (250 / 30.4375, 1)
    # P05: local relapse on the day of death: all three end that day with an event
    assert {endpoint(out, "P05", e) for e in ("LRFS", "RFS", "OS")} == {(700 / 30.4375, 1)}
    # P06: death on the day of surgery: time 0, event 1, kept
    assert {endpoint(out, "P06", e) for e in ("LRFS", "RFS", "OS")} == {(0.0, 1)}
    # P01: no event: censored at last follow-up
    assert endpoint(out, "P01", "OS") == (1826 / 30.4375, 0)
    # P08: local relapse on the last follow-up day counts as an event; OS censored then
    assert endpoint(out, "P08", "LRFS") == (600 / 30.4375, 1)
    assert endpoint(out, "P08", "OS") == (600 / 30.4375, 0)
    # P03: distant relapse ends RFS but not LRFS
    assert endpoint(out, "P03", "RFS") == (300 / 30.4375, 1)
    assert endpoint(out, "P03", "LRFS") == (1500 / 30.4375, 0)


def test_dtypes_and_nesting():
    out = derive_endpoints(tiny_registry(endpoints=False))
    for time, event in schema.ENDPOINTS.values():
        assert out[time].dtype == np.float64
        assert out[event].dtype == np.int64
        assert set(out[event]) <= {0, 1}
    assert (out["rfs_months"] <= out["lrfs_months"]).all()
    assert (out["lrfs_months"] <= out["os_months"]).all()


def test_returns_a_new_frame_and_input_is_untouched():
    df = tiny_registry(endpoints=False)
    before = df.copy(deep=True)
    out = derive_endpoints(df)
    pd.testing.assert_frame_equal(df, before)
    assert list(out.columns) == [*df.columns, *schema.DERIVED_COLUMNS]
    pd.testing.assert_frame_equal(out[df.columns], before)


def test_existing_derived_columns_are_overwritten_in_the_copy_only():
    df = tiny_registry()
    order = list(df.columns)
    df["os_months"] = -7.0
    df["lrfs_event"] = 1
    before = df.copy(deep=True)
    out = derive_endpoints(df)
    pd.testing.assert_frame_equal(df, before)
    assert list(out.columns) == order
    pd.testing.assert_frame_equal(out, tiny_registry())


def test_index_and_attrs_are_kept():
    df = tiny_registry(endpoints=False).set_index("patient_id", drop=False)
    df.index = df.index.rename("pid")
    df.attrs["source"] = "hand-made"
    out = derive_endpoints(df)
    pd.testing.assert_index_equal(out.index, df.index)
    assert out.attrs == {"source": "hand-made"}
    assert out.loc["P06", "os_months"] == 0.0


def test_only_dates_are_needed_and_covariates_are_not_checked():
    df = tiny_registry(endpoints=False)
    df.loc[0, "margin"] = "R3"  # a covariate problem is validate_registry's business
    dates = df[["patient_id", *schema.DATE_COLUMNS]]
    assert derive_endpoints(df)["os_event"].sum() == 4
    assert derive_endpoints(dates)["os_event"].sum() == 4


def test_other_datetime_units():
    df = tiny_registry(endpoints=False)
    df["surgery_date"] = df["surgery_date"].astype("datetime64[s]")
    out = derive_endpoints(df)
    pd.testing.assert_series_equal(out["os_months"], tiny_registry()["os_months"])


def test_bad_dates_raise_naming_the_patient():
    df = tiny_registry(endpoints=False)
    df.loc[6, "local_relapse_date"] = df.loc[6, "death_date"] + 3 * DAY  # P07, after death
    df.loc[0, "last_followup_date"] = df.loc[0, "surgery_date"] - DAY  # P01, before surgery
    before = df.copy(deep=True)
    with pytest.raises(RegistryError) as info:
        derive_endpoints(df)
    found = {(p.column, p.rule): p.rows for p in info.value.problems}
    assert found[("local_relapse_date", "local_relapse_date must not be after death_date")] == (
        "P07",
    )
    assert found[("last_followup_date", "last_followup_date must not be before surgery_date")] == (
        "P01",
    )
    assert "P07" in str(info.value)
    pd.testing.assert_frame_equal(df, before)


def test_text_dates_and_missing_columns_raise():
    df = tiny_registry(endpoints=False)
    df["death_date"] = df["death_date"].dt.strftime("%Y-%m-%d")
    with pytest.raises(RegistryError, match=r"death_date must have a datetime64 dtype"):
        derive_endpoints(df)
    with pytest.raises(RegistryError, match=r"column 'surgery_date': required column is missing"):
        derive_endpoints(tiny_registry().drop(columns="surgery_date"))
    with pytest.raises(TypeError):
        derive_endpoints(df.to_dict())


def test_missing_follow_up_raises():
    df = tiny_registry(endpoints=False)
    df.loc[2, "last_followup_date"] = pd.NaT
    with pytest.raises(RegistryError, match=r"last_followup_date must not be missing.*P03"):
        derive_endpoints(df)


def _reference(row: pd.Series) -> dict[str, tuple[float, int]]:
    """Per-patient derivation written independently, one patient at a time."""
    result = {}
    for name, events in schema.ENDPOINT_EVENTS.items():
        dates = [row[c] for c in events if not pd.isna(row[c])]
        end = min(dates) if dates else row["last_followup_date"]
        days = (end - row["surgery_date"]).days
        result[name] = (days / schema.DAYS_PER_MONTH, int(bool(dates)))
    return result


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(registries())
def test_property_matches_reference_and_nests(df):
    out = derive_endpoints(df)
    assert (out["rfs_months"] <= out["lrfs_months"]).all()
    assert (out["lrfs_months"] <= out["os_months"]).all()
    assert (out["rfs_event"] >= out["lrfs_event"]).all()
    assert (out["lrfs_event"] >= out["os_event"]).all()
    assert (out[["lrfs_months", "rfs_months", "os_months"]] >= 0).all().all()
    for i, row in df.iterrows():
        for name, (time, event) in _reference(row).items():
            t_col, e_col = schema.ENDPOINTS[name]
            assert out.loc[i, t_col] == pytest.approx(time, rel=1e-12, abs=0)
            assert out.loc[i, e_col] == event
    validate_registry(out)  # a registry with its derived endpoints is a valid registry
