"""The headline's cells, one computation for the HTML report and the demo's ``headline.txt``.

:func:`hazard_ratio_cells` and :func:`contrast_cells` format the expert-centre hazard ratio
and the standardized contrasts the same way wherever they are shown, from the same
functions (:func:`~bayes_sarcoma.predict.effects.hazard_ratios`,
:func:`~bayes_sarcoma.predict.standardize.standardized_summary` over all draws by
default), so that the report and the demo's headline agree to the last digit.
"""

from __future__ import annotations

import pandas as pd
import xarray as xr

from bayes_sarcoma._defaults import CI_PROB
from bayes_sarcoma.predict import effects
from bayes_sarcoma.predict.standardize import arm_labels
from bayes_sarcoma.predict.survival import model_spec

__all__ = ["contrast_cells", "cri", "effect_name", "format_interval", "hazard_ratio_cells"]


def effect_name(treatment: str | None) -> str:
    """Return the name of a treatment's effect in the tables: "expert" or the term's name.

    Examples
    --------
    >>> effect_name("expert_center"), effect_name("arm")
    ('expert', 'arm')
    """
    return "expert" if treatment in (None, "expert_center") else treatment


def cri(ci_prob: float = CI_PROB) -> str:
    """Return the interval's label of every table, e.g. ``"median (95% CrI)"``.

    Examples
    --------
    >>> cri(0.9)
    'median (90% CrI)'
    """
    return f"median ({ci_prob:.0%} CrI)"


def format_interval(median: float, lower: float, upper: float, digits: int = 2) -> str:
    """Return ``"0.60 (0.54 to 0.70)"``: a posterior median and its interval.

    Examples
    --------
    >>> format_interval(0.6, 0.541, 0.702)
    '0.60 (0.54 to 0.70)'
    """
    return f"{median:.{digits}f} ({lower:.{digits}f} to {upper:.{digits}f})"


def hazard_ratio_cells(dt: xr.DataTree, *, ci_prob: float = CI_PROB) -> dict[str, str]:
    """Return the treatment's hazard ratio cells: ``expert HR, median (95% CrI)`` and P(HR < 1).

    Parameters
    ----------
    dt : xarray.DataTree
        A fit with a treatment term (``expert_center``; another one is named by its term,
        ``arm HR``).
    ci_prob : float
        Probability of the interval.

    Returns
    -------
    dict
        Row label -> formatted cell.

    Examples
    --------
    >>> hazard_ratio_cells(dt)  # doctest: +SKIP
    {'expert HR, median (95% CrI)': '0.60 (0.55 to 0.65)', 'P(HR < 1)': '1.000'}
    """
    treatment = model_spec(dt).get("treatment") or "expert_center"
    hr = effects.hazard_ratios(dt, ci_prob=ci_prob).loc[treatment]
    return {
        f"{effect_name(treatment)} HR, {cri(ci_prob)}": format_interval(
            hr["median"], hr["lower"], hr["upper"]
        ),
        "P(HR < 1)": f"{hr['prob_lt_1']:.3f}",
    }


def contrast_cells(
    summary: pd.DataFrame, *, landmark: float, horizon: float, ci_prob: float = CI_PROB
) -> dict[str, str]:
    """Return the standardized contrasts' cells: survival, differences in pp and months.

    Parameters
    ----------
    summary : pandas.DataFrame
        :func:`~bayes_sarcoma.predict.standardize.standardized_summary` of a
        :func:`~bayes_sarcoma.predict.standardize.standardized_survival` whose times
        include ``landmark`` and whose RMST horizon is ``horizon``.
    landmark, horizon : float
        Months of the survival contrast and of the RMST. The arms are named after
        ``summary.attrs["treatment"]`` ("expert" and "other" for ``expert_center``).
    ci_prob : float
        Probability of the intervals (only for the labels: ``summary`` holds them).

    Returns
    -------
    dict
        Row label -> formatted cell.

    Examples
    --------
    >>> contrast_cells(standardized_summary(std), landmark=60, horizon=60)  # doctest: +SKIP
    """
    treatment = summary.attrs.get("treatment")
    expert = effect_name(treatment) == "expert"
    treated, control = ("expert", "other") if expert else arm_labels(treatment)
    at = summary[summary.time == landmark].set_index("quantity")
    rest = summary[summary.time.isna()].set_index("quantity")

    def interval(frame: pd.DataFrame, name: str, scale: float = 1.0) -> str:
        return format_interval(*(scale * frame.loc[name, ["median", "lower", "upper"]]), 1)

    return {
        f"survival at {landmark:g} months, {treated}": f"{100 * at.loc['treated', 'median']:.1f}%",
        f"survival at {landmark:g} months, {control}": f"{100 * at.loc['control', 'median']:.1f}%",
        f"difference at {landmark:g} months, {cri(ci_prob)}": interval(at, "difference", 100)
        + " pp",
        f"difference in median survival time, {cri(ci_prob)}": interval(rest, "median_difference")
        + " months",
        f"difference in RMST to {horizon:g} months, {cri(ci_prob)}": interval(
            rest, "rmst_difference"
        )
        + " months",
    }
