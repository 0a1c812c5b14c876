"""The table ``bayes-sarcoma predict`` prints or writes: tidy, labelled, with its caveats.

One row per patient and quantity: the survival ``S(t)`` at each requested time, then the
median event-free time. Every row says what it is (``endpoint``, ``center``, ``ci_prob``,
the patient's id under the name of the table's id column) and whether it extrapolates
(``beyond_follow_up``: the time asked for, or the predicted median, lies beyond the
longest follow-up of the fit's data, where the curve is the parametric model's shape
and not the data's).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from bayes_sarcoma._defaults import CI_PROB
from bayes_sarcoma.data import schema
from bayes_sarcoma.predict.survival import (
    model_spec,
    predict_median,
    predict_survival,
    summarize,
    time_label,
)

#: Column order of the table (``<id>`` is the id column's name, or ``row``).
COLUMNS = (
    "endpoint",
    "center",
    "ci_prob",
    "<id>",
    "quantity",
    "time",
    "median",
    "lower",
    "upper",
    "beyond_follow_up",
)
CENTER_MEANING = {
    "new": "a centre not in the fit (averaged over the distribution of centre effects)",
    "known": "each patient's own centre (its posterior effect)",
    "typical": "a centre of median effect (centre effect 0)",
}


def last_follow_up(dt: xr.DataTree) -> float:
    """Return the longest follow-up time of the fit's data (``observed_data.time`` max)."""
    return float(dt["observed_data"]["time"].max())


def id_column(dt: xr.DataTree, patients: pd.DataFrame, given: str | None = None) -> str | None:
    """Return the column that names the patients.

    ``given``, else the fit's id column, else ``patient_id``; None when the table has none
    of them (rows are then numbered from 1).
    """
    if given is not None:
        if given not in patients.columns:
            raise ValueError(
                f"--id-column {given!r} is not a column of the patients' table "
                f"(it has {', '.join(map(str, patients.columns[:8]))})"
            )
        return given
    fitted = model_spec(dt).get("id_column")
    for name in (fitted, schema.PATIENT_ID):
        if name and name != "auto" and name in patients.columns:
            return name
    return None


def patient_labels(patients: pd.DataFrame, column: str | None) -> np.ndarray:
    """Return one label per patient (their ids, or row numbers 1..n); ids must be unique."""
    if column is None:
        return np.arange(1, len(patients) + 1)
    ids = patients[column]
    repeated = ids[ids.duplicated(keep=False)]
    if len(repeated):
        shown = ", ".join(map(str, pd.unique(repeated.to_numpy())[:5]))
        raise ValueError(
            f"column {column!r} names several patients alike ({shown}): ids must be unique"
        )
    return ids.to_numpy()


def prediction_table(
    dt: xr.DataTree,
    patients: pd.DataFrame,
    times: Sequence[float],
    *,
    center: str = "new",
    ci_prob: float = CI_PROB,
    id_col: str | None = None,
) -> pd.DataFrame:
    """Return the tidy prediction table (columns :data:`COLUMNS`) of ``patients``.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit.
    patients : pandas.DataFrame
        Patients with the model's term columns.
    times : sequence of float
        Times for ``S(t)``, in the fit's time unit.
    center : {"new", "known", "typical"}
        How the centre effect enters (:mod:`bayes_sarcoma.predict.survival`).
    ci_prob : float
        Probability of the equal-tailed intervals ``lower``-``upper``.
    id_col : str, optional
        The column naming the patients (default: :func:`id_column`).

    Returns
    -------
    pandas.DataFrame
        ``attrs`` hold ``ci_prob``, ``center``, ``endpoint``, ``last_follow_up`` and
        ``time_unit``.
    """
    spec = model_spec(dt)
    endpoint = spec.get("endpoint") or spec["event"]
    column = id_column(dt, patients, id_col)
    labels = patient_labels(patients, column)
    name = column or "row"
    follow_up = last_follow_up(dt)

    def tidy(da: xr.DataArray) -> pd.DataFrame:
        da = da.assign_coords(patient=np.arange(len(labels)))  # row order, then labels
        return summarize(da, ci_prob=ci_prob)

    surv = tidy(predict_survival(dt, patients, times, center=center))
    surv["quantity"] = "survival"
    surv["beyond_follow_up"] = surv["time"] > follow_up
    med = tidy(predict_median(dt, patients, center=center))
    med["quantity"] = "median_time"
    med["time"] = np.nan
    med["beyond_follow_up"] = med["median"] > follow_up
    table = pd.concat([surv, med], ignore_index=True)
    order = table["quantity"].map({"survival": 0, "median_time": 1})
    table = table.iloc[np.lexsort((order.to_numpy(), table["patient"].to_numpy()))]
    table = table.reset_index(drop=True)
    table[name] = labels[table.pop("patient").to_numpy()]
    table["endpoint"] = endpoint
    table["center"] = center
    table["ci_prob"] = ci_prob
    table = table[[name if c == "<id>" else c for c in COLUMNS]]
    table.attrs = {
        "endpoint": endpoint,
        "center": center,
        "ci_prob": ci_prob,
        "last_follow_up": follow_up,
        "time_unit": time_label(dt),
    }
    return table


def header(table: pd.DataFrame, *, n_draws: int) -> list[str]:
    """Return the lines that say what the table holds, printed above it."""
    a = table.attrs
    lines = [
        f"{a['endpoint']}: survival S(t) and median event-free time; time in {a['time_unit']}",
        f"centre: {a['center']}, {CENTER_MEANING[a['center']]}",
        f"posterior median and {a['ci_prob']:.0%} interval (ci_prob {a['ci_prob']:g}) over "
        f"{n_draws} draws",
        f"the fit's longest follow-up is {a['last_follow_up']:.1f}: a row with "
        "beyond_follow_up True extrapolates the model's curve beyond the data",
    ]
    if "row" in table.columns:
        lines.append("row: the patient's row in the table (1 = the first patient)")
    return lines


def format_table(table: pd.DataFrame) -> str:
    """Return the table as text: probabilities and times with 3 decimals, no index."""
    return table.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="")
