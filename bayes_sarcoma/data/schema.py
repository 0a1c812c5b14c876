"""The registry data contract: column names, categories, endpoints and units.

Every module that reads a registry takes its column names from here, so that the
contract of DESIGN.md section 5 is written down exactly once.
"""

from __future__ import annotations

from types import MappingProxyType

#: Days in a month: times are in months, ``days / DAYS_PER_MONTH``.
DAYS_PER_MONTH = 30.4375
#: Days per time unit, for the units a table's time column can be in (a year is 12
#: months: 365.25 days, the Julian year that ``DAYS_PER_MONTH`` is a twelfth of).
DAYS_PER_UNIT = MappingProxyType(
    {"days": 1.0, "weeks": 7.0, "months": DAYS_PER_MONTH, "years": 12 * DAYS_PER_MONTH}
)

PATIENT_ID = "patient_id"
CENTER_ID = "center_id"
EXPERT = "expert_center"

#: Covariates of the registry, in the order of the default model terms.
CONTINUOUS_COVARIATES = ("age", "tumor_size_cm")
CATEGORICAL_COVARIATES = MappingProxyType(
    {
        "sex": ("female", "male"),
        "grade": (1, 2, 3),
        "depth": ("superficial", "deep"),
        "margin": ("R0", "R1", "R2", "Rx"),
    }
)
#: Reference (baseline) level of each categorical covariate: the first level.
REFERENCE_LEVELS = MappingProxyType({k: v[0] for k, v in CATEGORICAL_COVARIATES.items()})

SURGERY_DATE = "surgery_date"
LOCAL_RELAPSE_DATE = "local_relapse_date"
DISTANT_RELAPSE_DATE = "distant_relapse_date"
DEATH_DATE = "death_date"
LAST_FOLLOWUP_DATE = "last_followup_date"
DATE_COLUMNS = (
    SURGERY_DATE,
    LOCAL_RELAPSE_DATE,
    DISTANT_RELAPSE_DATE,
    DEATH_DATE,
    LAST_FOLLOWUP_DATE,
)
#: Event dates that may be missing (missing = the event was not observed).
OPTIONAL_DATE_COLUMNS = (LOCAL_RELAPSE_DATE, DISTANT_RELAPSE_DATE, DEATH_DATE)

#: Columns every registry must have.
REQUIRED_COLUMNS = (
    PATIENT_ID,
    CENTER_ID,
    EXPERT,
    "age",
    "sex",
    "tumor_size_cm",
    "grade",
    "depth",
    "margin",
    *DATE_COLUMNS,
)

#: Endpoint name -> (time column in months, event column 0/1) and the events that end it.
ENDPOINTS = MappingProxyType(
    {
        "LRFS": ("lrfs_months", "lrfs_event"),
        "RFS": ("rfs_months", "rfs_event"),
        "OS": ("os_months", "os_event"),
    }
)
ENDPOINT_EVENTS = MappingProxyType(
    {
        "LRFS": (LOCAL_RELAPSE_DATE, DEATH_DATE),
        "RFS": (LOCAL_RELAPSE_DATE, DISTANT_RELAPSE_DATE, DEATH_DATE),
        "OS": (DEATH_DATE,),
    }
)
DERIVED_COLUMNS = tuple(c for pair in ENDPOINTS.values() for c in pair)

#: The default model terms for a registry endpoint (DESIGN.md section 3).
DEFAULT_TERMS = ("expert_center", "age", "sex", "tumor_size_cm", "grade", "depth", "margin")

#: Published NETSARC figures the simulator is calibrated to (DESIGN.md section 1).
PUBLISHED = MappingProxyType(
    {
        "n_patients": 9594,
        "n_expert_centers": 26,
        "expert_share": 0.37,
        "median_months": {
            "LRFS": {"expert": 60.0, "other": 41.0},
            "RFS": {"expert": 25.0, "other": 21.0},
        },
        "os_hazard_ratio_expert": 0.63,
    }
)


def endpoint_columns(endpoint: str) -> tuple[str, str]:
    """Return the ``(time, event)`` column names of a registry endpoint.

    Parameters
    ----------
    endpoint : {"LRFS", "RFS", "OS"}
        The endpoint name (case-insensitive).

    Returns
    -------
    tuple of str
        The time column (months) and the event column (0/1).

    Examples
    --------
    >>> endpoint_columns("lrfs")
    ('lrfs_months', 'lrfs_event')
    """
    key = str(endpoint).upper()
    if key not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}: choose one of {', '.join(ENDPOINTS)}")
    return ENDPOINTS[key]
