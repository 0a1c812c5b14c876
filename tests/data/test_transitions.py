"""Transition records from a registry's dates: edge cases and the endpoints they imply."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_sarcoma.data.endpoints import derive_endpoints
from bayes_sarcoma.data.errors import RegistryError
from bayes_sarcoma.data.transitions import RECORD_COLUMNS, transition_records
from bayes_sarcoma.simulate.registry import simulate_registry


def _table(rows):
    cols = [
        "surgery_date",
        "local_relapse_date",
        "distant_relapse_date",
        "death_date",
        "last_followup_date",
    ]
    df = pd.DataFrame(rows, columns=cols)
    for c in cols:
        df[c] = pd.to_datetime(df[c])
    df.insert(0, "patient_id", [f"P{i}" for i in range(len(df))])
    return df


EDGE = _table(
    [
        # relapse on the day of death: absorbed by the death
        ["2010-01-01", "2011-01-01", None, "2011-01-01", "2011-01-01"],
        # local and distant relapse on the same day: the first relapse is local
        ["2010-01-01", "2010-07-01", "2010-07-01", None, "2012-01-01"],
        # distant, then local relapse, then death
        ["2010-01-01", "2011-01-01", "2010-04-01", "2012-01-01", "2012-01-01"],
        # relapse on the last follow-up day, alive: not at risk of death after relapse
        ["2010-01-01", None, "2011-01-01", None, "2011-01-01"],
        # nothing happened
        ["2010-01-01", None, None, None, "2013-01-01"],
    ]
)


def _by(records, transition):
    return records[records["transition"] == transition].set_index("row")


def test_edge_cases_follow_the_documented_rules():
    rec = transition_records(EDGE)
    assert tuple(rec.columns) == RECORD_COLUMNS
    local, distant, death = (_by(rec, k) for k in ("local_relapse", "distant_relapse", "death"))
    after = _by(rec, "death_after_relapse")
    # 0: the relapse on the day of death is absorbed
    assert local.loc[0, "event"] == 0
    assert death.loc[0, "event"] == 1
    assert 0 not in after.index
    # 1: same-day relapses count as local first
    assert local.loc[1, "event"] == 1
    assert distant.loc[1, "event"] == 0
    assert death.loc[1, "time_months"] == local.loc[1, "time_months"]
    # 2: distant first; the later local relapse still ends the local transition
    assert distant.loc[2, "event"] == 1
    assert local.loc[2, "event"] == 1
    assert local.loc[2, "time_months"] > distant.loc[2, "time_months"]
    assert after.loc[2, "entry_months"] == distant.loc[2, "time_months"]
    assert after.loc[2, "event"] == 1
    # 3: relapse on the last day: no record of death after relapse
    assert distant.loc[3, "event"] == 1
    assert 3 not in after.index
    # 4: censored everywhere
    assert rec.loc[rec["row"] == 4, "event"].sum() == 0
    assert sorted(after.index) == [1, 2]


def test_records_reproduce_the_three_endpoints_of_a_registry():
    df = derive_endpoints(simulate_registry(3000, random_seed=5))
    rec = transition_records(df)
    local, distant, death = (
        _by(rec, k).sort_index() for k in ("local_relapse", "distant_relapse", "death")
    )
    after = _by(rec, "death_after_relapse")
    dead = death["event"].to_numpy().astype(bool)
    dead[after.index] |= after["event"].to_numpy().astype(bool)
    end = death["time_months"].to_numpy().copy()
    end[after.index] = after["time_months"].to_numpy()
    np.testing.assert_allclose(df["os_months"], end, rtol=1e-12)
    np.testing.assert_array_equal(df["os_event"], dead.astype(int))
    np.testing.assert_allclose(df["rfs_months"], death["time_months"], rtol=1e-12)
    any_event = local["event"].eq(1) & (local["time_months"] == death["time_months"])
    rfs_event = (
        distant["event"].eq(1)
        | death["event"].eq(1)
        | any_event
        | dead & (death["time_months"] == end)
    )
    np.testing.assert_array_equal(df["rfs_event"], rfs_event.astype(int))
    lrfs = np.where(local["event"].eq(1), local["time_months"], end)
    np.testing.assert_allclose(df["lrfs_months"], lrfs, rtol=1e-12)
    np.testing.assert_array_equal(df["lrfs_event"], (local["event"].eq(1) | dead).astype(int))
    assert (after["entry_months"] < after["time_months"]).all()
    assert 0.05 < len(after) / len(df) < 0.9


def test_the_reset_clock_starts_at_the_relapse():
    forward = _by(transition_records(EDGE), "death_after_relapse")
    reset = _by(transition_records(EDGE, clock="reset"), "death_after_relapse")
    assert (reset["entry_months"] == 0).all()
    np.testing.assert_allclose(
        reset["time_months"], forward["time_months"] - forward["entry_months"], rtol=1e-12
    )


def test_bad_dates_and_clocks_are_refused():
    bad = EDGE.copy()
    bad.loc[2, "local_relapse_date"] = pd.Timestamp("2013-01-01")  # after death
    with pytest.raises(RegistryError, match="P2"):
        transition_records(bad)
    with pytest.raises(ValueError, match="clock='wall'"):
        transition_records(EDGE, clock="wall")
