"""Describe a registry the way the NETSARC papers did, next to the published figures.

:func:`calibration_table` gives a tidy table of the quantities a reader checks first:
crude Kaplan-Meier medians and log-rank tests by group (expert centres vs others), the
centre structure, and the patient mix (the confounding by indication). It works on any
registry with the columns of :mod:`bayes_sarcoma.data.schema` (the endpoints are derived from
the dates when absent); for a simulated registry it adds the true values it was drawn
from. :func:`format_calibration` prints it.

Examples
--------
>>> from bayes_sarcoma.simulate.registry import simulate_registry
>>> table = calibration_table(simulate_registry(3000, random_seed=1))
>>> list(table.columns)[:5]
['section', 'quantity', 'unit', 'expert', 'other']
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from bayes_sarcoma.data import schema
from bayes_sarcoma.data.endpoints import derive_endpoints

__all__ = ["calibration_table", "format_calibration", "km_median", "km_survival"]

COLUMNS = (
    "section",
    "quantity",
    "unit",
    "expert",
    "other",
    "overall",
    "published_expert",
    "published_other",
    "published_overall",
)
_NAN = float("nan")


def _ecdf(time: ArrayLike, event: ArrayLike):
    time = np.asarray(time, dtype=float)
    event = np.asarray(event).astype(bool)
    keep = ~np.isnan(time)
    if not keep.any():
        return None
    data = stats.CensoredData.right_censored(time[keep], ~event[keep])
    return stats.ecdf(data).sf


def km_median(time: ArrayLike, event: ArrayLike) -> float:
    """Return the Kaplan-Meier median: the first time at which ``S(t) <= 0.5``.

    Parameters
    ----------
    time : array_like
        Follow-up times.
    event : array_like
        Event flags (1 = event, 0 = censored).

    Returns
    -------
    float
        The median, or NaN if the curve never reaches 0.5 (or there are no times).

    Examples
    --------
    >>> km_median([1, 2, 3, 4, 5], [1, 0, 1, 1, 0])
    4.0
    """
    sf = _ecdf(time, event)
    if sf is None or not np.any(sf.probabilities <= 0.5):
        return _NAN
    return float(sf.quantiles[np.argmax(sf.probabilities <= 0.5)])


def km_survival(time: ArrayLike, event: ArrayLike, at: float) -> float:
    """Return the Kaplan-Meier survival at time ``at`` (NaN beyond the last time).

    Examples
    --------
    >>> km_survival([1, 2, 3, 4], [1, 1, 0, 0], 2.5)
    0.5
    """
    sf = _ecdf(time, event)
    if sf is None or at > sf.quantiles[-1]:
        return _NAN
    return float(sf.evaluate(at))


def _logrank(time, event, group) -> float:
    group = np.asarray(group, dtype=bool)
    time = np.asarray(time, dtype=float)
    event = np.asarray(event).astype(bool)
    if group.all() or not group.any():
        return _NAN
    x = stats.CensoredData.right_censored(time[group], ~event[group])
    y = stats.CensoredData.right_censored(time[~group], ~event[~group])
    return float(stats.logrank(x, y).pvalue)


def _row(section, quantity, unit, values=(_NAN, _NAN, _NAN), published=(_NAN, _NAN, _NAN)):
    return dict(zip(COLUMNS, (section, quantity, unit, *values, *published), strict=True))


def _by_group(df, expert, fn):
    """Apply ``fn(sub_frame)`` to the expert, other and whole registry."""
    return tuple(float(fn(sub)) if len(sub) else _NAN for sub in (df[expert], df[~expert], df))


def _share(series, level):
    s = series.dropna()
    return (s.astype(str) == str(level)).mean() if len(s) else _NAN


def _registry_rows(expert: np.ndarray, pub: dict) -> list[dict]:
    """Rows of the ``registry`` section: patients and their share by group."""
    n_e, n_o = int(expert.sum()), int((~expert).sum())
    share = pub.get("expert_share", _NAN)
    return [
        _row(
            "registry",
            "patients",
            "n",
            (n_e, n_o, n_e + n_o),
            (_NAN, _NAN, pub.get("n_patients", _NAN)),
        ),
        _row(
            "registry",
            "share of patients",
            "proportion",
            (n_e / expert.size, n_o / expert.size, 1.0),
            (share, 1 - share, _NAN),
        ),
    ]


def _outcome_rows(df: pd.DataFrame, expert: np.ndarray, pub: dict) -> list[dict]:
    """Rows of the ``outcome`` section: crude KM medians, log-rank tests, 5-year OS, follow-up."""
    masks = (expert, ~expert, np.ones_like(expert))
    pub_med = pub.get("median_months", {})
    rows = []
    for endpoint, (tcol, ecol) in schema.ENDPOINTS.items():
        t, e = df[tcol].to_numpy(float), df[ecol].to_numpy(float)
        p = pub_med.get(endpoint, {})
        rows.append(
            _row(
                "outcome",
                f"{endpoint} median (KM)",
                "months",
                tuple(km_median(t[m], e[m]) for m in masks),
                (p.get("expert", _NAN), p.get("other", _NAN), _NAN),
            )
        )
        rows.append(
            _row("outcome", f"{endpoint} log-rank p", "p", (_NAN, _NAN, _logrank(t, e, expert)))
        )
    t, e = df["os_months"].to_numpy(float), df["os_event"].to_numpy(float)
    rows.append(
        _row(
            "outcome",
            "5-year OS (KM)",
            "proportion",
            tuple(km_survival(t[m], e[m], 60.0) for m in masks),
        )
    )
    rows.append(
        _row(
            "outcome",
            "median follow-up (reverse KM)",
            "months",
            tuple(km_median(t[m], 1 - e[m]) for m in masks),
        )
    )
    return rows


def _centre_rows(df: pd.DataFrame, pub: dict) -> list[dict]:
    """Rows of the ``centres`` section: number of centres and the spread of their sizes."""
    sizes = df.groupby(schema.CENTER_ID, sort=False, observed=True).agg(
        n=(schema.EXPERT, "size"), expert=(schema.EXPERT, "max")
    )
    groups = (
        sizes["n"][sizes["expert"].astype(bool)],
        sizes["n"][~sizes["expert"].astype(bool)],
        sizes["n"],
    )
    rows = [
        _row(
            "centres",
            "centres",
            "n",
            tuple(len(g) for g in groups),
            (pub.get("n_expert_centers", _NAN), _NAN, _NAN),
        )
    ]
    for label, fn in (
        ("min", np.min),
        ("25%", lambda g: np.quantile(g, 0.25)),
        ("median", np.median),
        ("75%", lambda g: np.quantile(g, 0.75)),
        ("90%", lambda g: np.quantile(g, 0.9)),
        ("max", np.max),
    ):
        rows.append(
            _row(
                "centres",
                f"patients per centre: {label}",
                "n",
                tuple(float(fn(g)) if len(g) else _NAN for g in groups),
            )
        )
    rows.append(
        _row(
            "centres",
            "centres with 1-2 patients",
            "proportion",
            tuple(float(np.mean(g <= 2)) if len(g) else _NAN for g in groups),
        )
    )
    return rows


def _patient_rows(df: pd.DataFrame, expert: np.ndarray) -> list[dict]:
    """Rows of the ``patients`` section: the patient mix by group."""
    rows = [
        _row("patients", "mean age", "years", _by_group(df, expert, lambda s: s["age"].mean())),
        _row(
            "patients",
            "male",
            "proportion",
            _by_group(df, expert, lambda s: _share(s["sex"], "male")),
        ),
        _row(
            "patients",
            "median tumour size",
            "cm",
            _by_group(df, expert, lambda s: s["tumor_size_cm"].median()),
        ),
        _row(
            "patients",
            "tumour size > 10 cm",
            "proportion",
            _by_group(df, expert, lambda s: (s["tumor_size_cm"].dropna() > 10).mean()),
        ),
    ]
    for col, level in (
        ("grade", 3),
        ("depth", "deep"),
        ("margin", "R0"),
        ("margin", "R1"),
        ("margin", "R2"),
        ("margin", "Rx"),
    ):
        rows.append(
            _row(
                "patients",
                f"{col} {level}",
                "proportion",
                _by_group(df, expert, lambda s, c=col, lv=level: _share(s[c], lv)),
            )
        )
    return rows


def _truth_rows(truth: object, pub: dict) -> list[dict]:
    """Rows of the ``truth`` section of a simulated registry (none for another registry)."""
    if not (isinstance(truth, dict) and "OS" in truth):
        return []
    hr = math.exp(truth["OS"]["beta"]["expert_center"])
    rows = [
        _row(
            "truth",
            "OS hazard ratio, expert (conditional)",
            "HR",
            (_NAN, _NAN, hr),
            (_NAN, _NAN, pub.get("os_hazard_ratio_expert", _NAN)),
        )
    ]
    for endpoint, tr in truth.items():
        for t_ in sorted(tr["standardized"]["expert"]):
            rows.append(
                _row(
                    "truth",
                    f"{endpoint} standardized survival at {t_} months",
                    "proportion",
                    (tr["standardized"]["expert"][t_], tr["standardized"]["other"][t_], _NAN),
                )
            )
    return rows


def calibration_table(df: pd.DataFrame, *, published: bool = True) -> pd.DataFrame:
    """Return the registry's calibration table: outcomes, centres and patient mix by group.

    Parameters
    ----------
    df : pandas.DataFrame
        A registry with the columns of ``schema.REQUIRED_COLUMNS``; the endpoint columns
        are derived from the dates (:func:`bayes_sarcoma.data.endpoints.derive_endpoints`) when
        absent. A simulated registry (``attrs["truth"]``) also gets a ``truth`` section.
    published : bool
        Fill the ``published_*`` columns with the NETSARC figures of
        ``schema.PUBLISHED`` where there is one.

    Returns
    -------
    pandas.DataFrame
        One row per quantity, columns ``section`` (``registry``, ``outcome``, ``centres``,
        ``patients``, ``truth``), ``quantity``, ``unit`` (``n``, ``proportion``,
        ``months``, ``years``, ``cm``, ``p``, ``HR``), ``expert``, ``other``, ``overall``
        and ``published_expert``, ``published_other``, ``published_overall`` (NaN where
        there is no figure).
    """
    if not all(c in df.columns for c in schema.DERIVED_COLUMNS):
        df = derive_endpoints(df)
    expert = df[schema.EXPERT].astype(bool).to_numpy()
    pub = schema.PUBLISHED if published else {}
    rows = [
        *_registry_rows(expert, pub),
        *_outcome_rows(df, expert, pub),
        *_centre_rows(df, pub),
        *_patient_rows(df, expert),
        *_truth_rows(df.attrs.get("truth"), pub),
    ]
    out = pd.DataFrame(rows, columns=list(COLUMNS))
    for c in COLUMNS[3:]:
        out[c] = out[c].astype(float)
    return out


def _fmt(value: float, unit: str) -> str:
    if value is None or not np.isfinite(value):
        return ""
    if unit == "n":
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    if unit == "proportion":
        return f"{100 * value:.1f}%"
    if unit == "p":
        return "< 1e-16" if value < 1e-16 else f"{value:.2g}"
    if unit == "HR":
        return f"{value:.3f}"
    return f"{value:.1f}"


def format_calibration(data: pd.DataFrame, *, published: bool = True) -> str:
    """Return the calibration table as aligned text, one block per section.

    Parameters
    ----------
    data : pandas.DataFrame
        A registry, or a table from :func:`calibration_table`.
    published : bool
        Show the published figures (the columns appear only if some figure applies).

    Returns
    -------
    str
        The printable table.
    """
    table = data if "quantity" in data.columns else calibration_table(data, published=published)
    cols = ["expert", "other", "overall"]
    pub_cols = ["published_expert", "published_other", "published_overall"]
    if published and table[pub_cols].notna().any().any():
        cols += pub_cols
    header = {
        "expert": "expert",
        "other": "other",
        "overall": "overall",
        "published_expert": "pub. expert",
        "published_other": "pub. other",
        "published_overall": "pub. overall",
    }
    width = max(len(q) for q in table["quantity"]) + 2
    lines = []
    for section, block in table.groupby("section", sort=False):
        lines.append(f"[{section}]".ljust(width) + "".join(f"{header[c]:>13s}" for c in cols))
        for _, row in block.iterrows():
            cells = "".join(f"{_fmt(row[c], row['unit']):>13s}" for c in cols)
            lines.append(f"  {row['quantity']}".ljust(width) + cells)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
