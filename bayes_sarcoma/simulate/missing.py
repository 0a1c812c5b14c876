"""Covariates missing completely at random (MCAR), at random (MAR) or not at random (MNAR).

``simulate_registry(missing=dict(column="grade", fraction=0.2, mechanism="MAR"))`` (or a
list of such dicts, one per column) removes values of ``grade``, ``tumor_size_cm`` or
``depth`` (:data:`MISSING_COLUMNS`). Patient ``i``'s value is removed with probability

    ``p_i = expit(a + strength * z_i)``

where ``z_i`` is a driver standardized over the registry (mean 0, sd 1):

- ``"MCAR"``: ``z = 0``, the same probability for everyone;
- ``"MAR"``: a column that is always observed, ``depends_on`` (default ``"age"``; also
  ``"expert_center"`` or ``"sex"``): the probability depends on observed values only, never
  on the outcome;
- ``"MNAR"``: the removed value itself (grade 1/2/3, log tumour size, deep = 1).

``strength`` (default 1) is the log odds ratio per sd of the driver, and ``a`` is solved
(``scipy.optimize.brentq``) so that the ``p_i`` average to ``fraction`` over the registry:
the expected share missing is ``fraction``, the realised one binomial around it.

The values are removed after everything else is drawn, with the same generator: the rest
of the table, and ``df.attrs["truth"]`` (computed from the complete covariates; missingness
changes no parameter), are those of the same seed without ``missing``. The removed values
are kept in ``df.attrs["missing"]`` (per column ``patient_id`` and ``value``, with the
mechanism and ``a``), and :func:`complete_registry` puts them back. A missing ``grade`` is
``pandas.NA`` in a nullable ``Int64`` column, a missing size ``NaN``, a missing depth
``None``: ``validate_registry`` and the model's fit reject such a table, naming the column
and the rows (the package has no missing-data model yet).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, special

#: Columns the simulator can make partly missing.
MISSING_COLUMNS = ("grade", "tumor_size_cm", "depth")
#: Missingness mechanisms.
MECHANISMS = ("MCAR", "MAR", "MNAR")
#: Always-observed columns a MAR mechanism may depend on.
DRIVERS = ("age", "expert_center", "sex")
_KEYS = ("column", "fraction", "mechanism", "depends_on", "strength")
#: The complete columns' dtypes, as the simulator writes them.
_DTYPES = {"grade": "int64", "tumor_size_cm": "float64", "depth": object}


def missing_settings(missing: dict | list[dict] | None) -> list[dict]:
    """Return the checked settings of ``simulate_registry(missing=...)``, defaults filled in.

    Parameters
    ----------
    missing : dict, list of dict or None
        Each with ``column``, ``fraction`` (in (0, 1)) and ``mechanism``, optionally
        ``depends_on`` (MAR) and ``strength``.

    Returns
    -------
    list of dict
        One per column, with every key of the module docstring.

    Examples
    --------
    >>> missing_settings(dict(column="grade", fraction=0.2, mechanism="MAR"))
    [{'column': 'grade', 'fraction': 0.2, 'mechanism': 'MAR', 'depends_on': 'age', 'strength': 1.0}]
    """
    if missing is None:
        return []
    items = [missing] if isinstance(missing, dict) else list(missing)
    out = [_setting(dict(m)) for m in items]
    columns = [m["column"] for m in out]
    if len(set(columns)) < len(columns):
        raise ValueError(f"missing: each column at most once, got {columns}")
    return out


def _setting(m: dict) -> dict:
    unknown = set(m) - set(_KEYS)
    if unknown:
        raise ValueError(
            f"missing: unknown setting(s) {sorted(unknown)}; known: {', '.join(_KEYS)}"
        )
    column, mechanism = m.get("column"), str(m.get("mechanism", "")).upper()
    if column not in MISSING_COLUMNS:
        raise ValueError(
            f"missing: column must be one of {', '.join(MISSING_COLUMNS)}, got {column!r}"
        )
    if mechanism not in MECHANISMS:
        raise ValueError(
            f"missing: mechanism must be one of {', '.join(MECHANISMS)}, got {m.get('mechanism')!r}"
        )
    fraction = float(m.get("fraction", np.nan))
    if not 0 < fraction < 1:
        raise ValueError(f"missing: fraction must be in (0, 1), got {m.get('fraction')!r}")
    depends_on = m.get("depends_on", "age" if mechanism == "MAR" else None)
    if mechanism == "MAR" and depends_on not in DRIVERS:
        raise ValueError(
            f"missing: MAR depends_on must be one of {', '.join(DRIVERS)}, got {depends_on!r}"
        )
    if mechanism != "MAR" and depends_on is not None:
        raise ValueError(
            f"missing: depends_on is for MAR only, got {depends_on!r} with {mechanism}"
        )
    strength = float(m.get("strength", 1.0))
    if not np.isfinite(strength):
        raise ValueError(f"missing: strength must be finite, got {m.get('strength')!r}")
    return dict(
        column=column,
        fraction=fraction,
        mechanism=mechanism,
        depends_on=depends_on,
        strength=strength,
    )


def driver_values(data: pd.DataFrame, column: str) -> np.ndarray:
    """Return a column as numbers: grade 1-3, log tumour size, deep/expert/male as 0/1, age."""
    s = data[column]
    if column == "tumor_size_cm":
        return np.log(s.to_numpy(dtype=float))
    if column in ("depth", "sex"):
        return s.eq("deep" if column == "depth" else "male").to_numpy(dtype=float)
    return s.to_numpy(dtype=float)


def missingness_probability(data: pd.DataFrame, setting: dict) -> tuple[np.ndarray, float]:
    """Return each patient's probability of a missing value, and the intercept ``a``.

    Parameters
    ----------
    data : pandas.DataFrame
        The complete registry.
    setting : dict
        One item of :func:`missing_settings`.

    Returns
    -------
    p : numpy.ndarray
        ``expit(a + strength * z)`` (module docstring).
    a : float
        The intercept, solved so that ``p.mean() == fraction``.
    """
    mechanism, n = setting["mechanism"], len(data)
    z = np.zeros(n)
    if mechanism != "MCAR":
        v = driver_values(data, setting["depends_on"] if mechanism == "MAR" else setting["column"])
        z = (v - v.mean()) / v.std() if v.std() > 0 else z
    lin = setting["strength"] * z
    a = optimize.brentq(
        lambda a: special.expit(a + lin).mean() - setting["fraction"], -50.0, 50.0, xtol=1e-13
    )
    return special.expit(a + lin), float(a)


def apply_missing(
    data: pd.DataFrame, settings: list[dict], rng: np.random.Generator
) -> tuple[pd.DataFrame, dict]:
    """Remove values as ``settings`` say; return the table and the record of what was removed.

    Every probability is computed on the complete table first, then one ``rng.random(n)``
    per setting, in order, decides the rows.

    Parameters
    ----------
    data : pandas.DataFrame
        The complete registry (not modified).
    settings : list of dict
        From :func:`missing_settings`.
    rng : numpy.random.Generator
        The random generator.

    Returns
    -------
    data : pandas.DataFrame
        A copy with the values removed (see the module docstring for how they show).
    record : dict
        ``{column: setting | {"intercept": a, "patient_id": [...], "value": [...]}}``.
    """
    probs = [missingness_probability(data, m) for m in settings]
    out, record = data.copy(), {}
    for m, (p, a) in zip(settings, probs, strict=True):
        col = m["column"]
        gone = rng.random(len(data)) < p
        values = data.loc[gone, col].tolist()
        record[col] = m | {
            "intercept": a,
            "patient_id": data.loc[gone, "patient_id"].tolist(),
            "value": [v.item() if isinstance(v, np.generic) else v for v in values],
        }
        if col == "grade":
            out[col] = out[col].astype("Int64").mask(gone)
        elif col == "depth":
            out[col] = out[col].astype(object).where(~gone, None)
        else:
            out[col] = out[col].mask(gone)
    return out, record


def complete_registry(data: pd.DataFrame) -> pd.DataFrame:
    """Return a simulated registry with its removed values put back (``attrs["missing"]``).

    Parameters
    ----------
    data : pandas.DataFrame
        A registry of ``simulate_registry(missing=...)``.

    Returns
    -------
    pandas.DataFrame
        A copy with every column as it was before values were removed (``grade`` back to
        ``int64``); the same table as the seed gives without ``missing``.

    Examples
    --------
    >>> from bayes_sarcoma.simulate.registry import simulate_registry
    >>> df = simulate_registry(300, random_seed=1, pseudo_truth=False,
    ...                        missing=dict(column="grade", fraction=0.2, mechanism="MNAR"))
    >>> bool(df["grade"].isna().any()), bool(complete_registry(df)["grade"].isna().any())
    (True, False)
    """
    out = data.copy()
    rows = pd.Index(data["patient_id"])
    for col, rec in data.attrs.get("missing", {}).items():
        at = rows.get_indexer(rec["patient_id"])
        if np.any(at < 0):
            raise ValueError(
                f"complete_registry: patients of attrs['missing'][{col!r}] not in the table"
            )
        values = out[col].astype(object).to_numpy()
        values[at] = rec["value"]
        out[col] = pd.Series(values, index=out.index).astype(_DTYPES[col])
    return out
