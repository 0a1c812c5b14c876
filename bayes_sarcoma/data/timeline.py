"""Endpoint times and events from a registry's dates, as arrays (no checks).

The arithmetic of DESIGN.md section 2 on its own, so that both the validation of stored
endpoints (:mod:`bayes_sarcoma.data.validation`) and :func:`bayes_sarcoma.derive_endpoints`
(:mod:`bayes_sarcoma.data.endpoints`, which validates first) can use it.
"""

from __future__ import annotations

from functools import reduce

import numpy as np
import pandas as pd

from bayes_sarcoma.data import schema


def _days_since(df: pd.DataFrame, column: str, origin: np.ndarray) -> np.ndarray:
    """Return the days from ``origin`` to ``df[column]`` as float64 (NaN where NaT)."""
    return (df[column].to_numpy() - origin) / np.timedelta64(1, "D")


def endpoint_arrays(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Return the derived endpoint columns as arrays, from dates assumed valid.

    No checks: :func:`derive_endpoints` checks the dates first; the validation of stored
    endpoints uses this after every other rule has passed.
    """
    surgery = df[schema.SURGERY_DATE].to_numpy()
    followup = _days_since(df, schema.LAST_FOLLOWUP_DATE, surgery)
    event_days = {c: _days_since(df, c, surgery) for c in schema.OPTIONAL_DATE_COLUMNS}
    out = {}
    for endpoint, (time_col, event_col) in schema.ENDPOINTS.items():
        # first observed event (fmin skips NaN); validation put every event <= follow-up
        first = reduce(np.fmin, (event_days[c] for c in schema.ENDPOINT_EVENTS[endpoint]))
        event = ~np.isnan(first)
        out[time_col] = np.where(event, first, followup) / schema.DAYS_PER_MONTH
        out[event_col] = event.astype(np.int64)
    return out
