"""A registry's dates as the multi-state model's transition records (DESIGN.md 3.4).

The states and transitions are those of :mod:`bayes_sarcoma.math.multistate`. A patient's
history gives, for each transition the patient was at risk of, one record
``(entry, time, event)`` in months since surgery (or since the relapse, for the
death-after-relapse transition on the reset clock). Days from surgery: ``L`` local relapse,
``D`` distant relapse, ``M`` death, ``F`` last follow-up (``L``, ``D``, ``M`` missing when
not observed); ``end = M`` if observed, else ``F``; ``r`` the first relapse, kept only
if it came *before* the death (a relapse dated on the day of death is absorbed by the
death: in continuous time the two cannot tie, and every endpoint ends on that day either way).

- ``local_relapse``: every patient is at risk; time ``min(L, end)``; event: ``L`` seen,
  before death.
- ``distant_relapse``: every patient; time ``min(r, end)``; event: the first relapse is
  distant (``D < L``; on the same day, local).
- ``death``: every patient; time ``min(r, end)``; event: death with no relapse before.
- ``death_after_relapse``: the patients with ``r < end``; entry ``r`` and time ``end``
  (reset clock: entry 0 and time ``end - r``); event: death.

So each patient's likelihood is the product of the four transitions' survival-model
likelihoods (delayed entry for the forward clock), and the records reproduce the
endpoints exactly: the LRFS time is the local record's time when its event is a local
relapse, else the time of death or follow-up, and so on (tested).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_sarcoma.data import schema
from bayes_sarcoma.data.validation import DATE_RULES, DATE_TYPE_RULES, run_rules
from bayes_sarcoma.math.multistate import CLOCKS, TRANSITIONS

#: Columns of the table :func:`transition_records` returns.
RECORD_COLUMNS = ("row", "transition", "entry_months", "time_months", "event")


def _days(df: pd.DataFrame, column: str, origin: np.ndarray) -> np.ndarray:
    return (df[column].to_numpy() - origin) / np.timedelta64(1, "D")


def _history_days(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Return the days from surgery of each event (NaN when not seen) and the end."""
    surgery = df[schema.SURGERY_DATE].to_numpy()
    local = _days(df, schema.LOCAL_RELAPSE_DATE, surgery)
    distant = _days(df, schema.DISTANT_RELAPSE_DATE, surgery)
    death = _days(df, schema.DEATH_DATE, surgery)
    followup = _days(df, schema.LAST_FOLLOWUP_DATE, surgery)
    dead = ~np.isnan(death)
    end = np.where(dead, death, followup)
    # A relapse on the day of death is absorbed by the death (module docstring).
    local = np.where(dead & (local >= death), np.nan, local)
    distant = np.where(dead & (distant >= death), np.nan, distant)
    return {"local": local, "distant": distant, "dead": dead, "end": end}


def _records(transition: str, rows, entry, time, event) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row": rows,
            "transition": transition,
            "entry_months": entry / schema.DAYS_PER_MONTH,
            "time_months": time / schema.DAYS_PER_MONTH,
            "event": event.astype(np.int64),
        }
    )


def transition_records(df: pd.DataFrame, *, clock: str = "forward") -> pd.DataFrame:
    """Return one record per patient and transition at risk, from the registry's dates.

    Parameters
    ----------
    df : pandas.DataFrame
        A registry with the date columns of ``schema.DATE_COLUMNS`` (checked by the rules of
        :func:`~bayes_sarcoma.data.validation.validate_registry`: no relapse after death,
        no event after last follow-up, ...).
    clock : {"forward", "reset"}
        The death-after-relapse transition's clock: time since surgery (entry at the
        relapse) or time since the relapse (entry 0).

    Returns
    -------
    pandas.DataFrame
        Columns ``row`` (the patient's position in ``df``), ``transition`` (one of
        ``TRANSITIONS``), ``entry_months``, ``time_months`` and ``event`` (0/1), ordered by
        transition then row. Every patient has a record for the first three transitions.

    Raises
    ------
    RegistryError
        If a date column is missing or a date rule is broken (names the rows and the rule).

    Examples
    --------
    >>> import pandas as pd
    >>> dates = pd.DataFrame({
    ...     "patient_id": ["P1", "P2"],
    ...     "surgery_date": pd.to_datetime(["2012-01-01", "2012-01-01"]),
    ...     "local_relapse_date": pd.to_datetime(["2012-05-30", None]),
    ...     "distant_relapse_date": pd.to_datetime(["2012-03-01", None]),
    ...     "death_date": pd.to_datetime(["2013-01-01", None]),
    ...     "last_followup_date": pd.to_datetime(["2013-01-01", "2014-01-01"]),
    ... })
    >>> transition_records(dates).round(2)
       row           transition  entry_months  time_months  event
    0    0        local_relapse          0.00         4.93      1
    1    1        local_relapse          0.00        24.02      0
    2    0      distant_relapse          0.00         1.97      1
    3    1      distant_relapse          0.00        24.02      0
    4    0                death          0.00         1.97      0
    5    1                death          0.00        24.02      0
    6    0  death_after_relapse          1.97        12.02      1
    """
    if clock not in CLOCKS:
        raise ValueError(f"clock={clock!r}: choose one of {CLOCKS}")
    run_rules(df, required=schema.DATE_COLUMNS, type_rules=DATE_TYPE_RULES, rules=DATE_RULES)
    h = _history_days(df)
    rows = np.arange(len(df))
    local, distant, end = h["local"], h["distant"], h["end"]
    first = np.fmin(local, distant)
    relapsed = ~np.isnan(first)
    distant_first = ~np.isnan(distant) & ~(local <= distant)  # a tie counts as local
    parts = [
        _records(TRANSITIONS[0], rows, np.zeros(len(df)), np.fmin(local, end), ~np.isnan(local)),
        _records(TRANSITIONS[1], rows, np.zeros(len(df)), np.fmin(first, end), distant_first),
        _records(
            TRANSITIONS[2], rows, np.zeros(len(df)), np.fmin(first, end), h["dead"] & ~relapsed
        ),
    ]
    after = relapsed & (first < end)
    entry, stop = first[after], end[after]
    if clock == "reset":
        entry, stop = np.zeros(after.sum()), stop - entry
    parts.append(_records(TRANSITIONS[3], rows[after], entry, stop, h["dead"][after]))
    return pd.concat(parts, ignore_index=True)
