"""A tiny, hand-made, valid registry for tests: 9 patients, 5 centres, every kind of event.

Event dates are written as days after surgery, so the expected endpoint times are
``days / 30.4375`` by inspection (see ``EXPECTED_DAYS``).

Usage: ``from registry_factory import tiny_registry`` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_sarcoma.data.endpoints import derive_endpoints

N = None  # event not observed

# fmt: off
# id, centre, expert, age, sex, size cm, grade, depth, margin, surgery,
#   local, distant, death, follow-up (days after surgery)
PATIENTS = [
    ("P01", "C01", True, 54, "female", 8.5, 3, "deep", "R0", "2011-03-01", N, N, N, 1826),
    ("P02", "C01", True, 67, "male", 12.0, 3, "deep", "R1", "2012-01-01", 400, N, 900, 900),
    ("P03", "C01", True, 45, "female", 5.0, 2, "superficial", "R0", "2012-06-15", N, 300, N, 1500),
    ("P04", "C01", True, 72, "male", 15.5, 3, "deep", "R2", "2013-02-10", 250, 250, N, 1000),
    ("P05", "C02", True, 38, "male", 3.2, 1, "superficial", "Rx", "2010-09-30", 700, N, 700, 700),
    ("P06", "C02", True, 81, "female", 22.0, 3, "deep", "R1", "2014-11-20", N, N, 0, 0),
    ("P07", "H101", False, 59, "female", 6.8, 2, "deep", "Rx", "2012-04-04", N, N, 1200, 1200),
    ("P08", "H102", False, 63, "male", 4.1, 1, "superficial", "R0", "2011-07-07", 600, N, N, 600),
    ("P09", "H103", False, 27, "female", 9.9, 2, "deep", "R2", "2014-01-02", 500, 200, N, 800),
]
# fmt: on

#: Hand-derived endpoints in days: patient -> {endpoint: (days, event)}.
EXPECTED_DAYS = {
    "P01": {"LRFS": (1826, 0), "RFS": (1826, 0), "OS": (1826, 0)},  # censored, no event
    "P02": {"LRFS": (400, 1), "RFS": (400, 1), "OS": (900, 1)},  # relapse, then death at FU
    "P03": {"LRFS": (1500, 0), "RFS": (300, 1), "OS": (1500, 0)},  # distant relapse only
    "P04": {"LRFS": (250, 1), "RFS": (250, 1), "OS": (1000, 0)},  # local = distant day
    "P05": {"LRFS": (700, 1), "RFS": (700, 1), "OS": (700, 1)},  # relapse on day of death
    "P06": {"LRFS": (0, 1), "RFS": (0, 1), "OS": (0, 1)},  # death on day of surgery
    "P07": {"LRFS": (1200, 1), "RFS": (1200, 1), "OS": (1200, 1)},  # death, no relapse
    "P08": {"LRFS": (600, 1), "RFS": (600, 1), "OS": (600, 0)},  # relapse on FU day
    "P09": {"LRFS": (500, 1), "RFS": (200, 1), "OS": (800, 0)},  # distant, then local
}

COLUMNS = [
    "patient_id", "center_id", "expert_center", "age", "sex", "tumor_size_cm", "grade",
    "depth", "margin", "surgery_date", "local_relapse_date", "distant_relapse_date",
    "death_date", "last_followup_date",
]  # fmt: skip


def _after(surgery: pd.Series, days: list) -> pd.Series:
    offsets = np.array([np.nan if d is None else d for d in days], dtype=float)
    return surgery + pd.to_timedelta(offsets, unit="D")


def tiny_registry(*, endpoints: bool = True) -> pd.DataFrame:
    """Return a fresh, valid 9-patient registry (with derived endpoints unless told not).

    Dtypes: ids and categories object (str), ``expert_center`` bool, ``age`` and
    ``grade`` int64, ``tumor_size_cm`` float64, dates datetime64[ns].
    """
    raw = pd.DataFrame([p[:10] for p in PATIENTS], columns=COLUMNS[:10])
    raw["surgery_date"] = pd.to_datetime(raw["surgery_date"], format="%Y-%m-%d")
    for i, column in enumerate(COLUMNS[10:], start=10):
        raw[column] = _after(raw["surgery_date"], [p[i] for p in PATIENTS])
    return derive_endpoints(raw) if endpoints else raw


def registries(max_patients: int = 12):
    """Hypothesis strategy: random valid registries (dates only ever in the past).

    Surgery in 2000-2013, follow-up up to 10 years; each event is absent or falls between
    surgery and follow-up, relapses never after death. Index is a RangeIndex and patient
    ``i`` is ``f"P{i}"``.
    """
    from hypothesis import strategies as st

    @st.composite
    def patient(draw):
        surgery = draw(st.integers(0, 5000))
        followup = draw(st.integers(0, 3650))
        death = draw(st.none() | st.integers(0, followup))
        last = followup if death is None else death
        local, distant = (draw(st.none() | st.integers(0, last)) for _ in range(2))
        centre = draw(st.sampled_from(["C1", "C2", "C3", "H1", "H2", "H3", "H4"]))
        covariates = (
            draw(st.integers(15, 109)),
            draw(st.sampled_from(["female", "male"])),
            draw(st.floats(0.1, 99.9)),
            draw(st.sampled_from([1, 2, 3])),
            draw(st.sampled_from(["superficial", "deep"])),
            draw(st.sampled_from(["R0", "R1", "R2", "Rx"])),
        )
        return (
            centre,
            centre.startswith("C"),
            *covariates,
            surgery,
            local,
            distant,
            death,
            followup,
        )

    def build(rows: list) -> pd.DataFrame:
        ids = [(f"P{i}",) for i in range(len(rows))]
        raw = pd.DataFrame([i + r for i, r in zip(ids, rows, strict=True)], columns=COLUMNS)
        raw = raw.astype({"age": "int64", "grade": "int64", "tumor_size_cm": "float64"})
        raw["expert_center"] = raw["expert_center"].astype(bool)
        origin = pd.Timestamp("2000-01-01")
        raw["surgery_date"] = origin + pd.to_timedelta(raw["surgery_date"].astype(float), unit="D")
        for column in COLUMNS[10:]:
            raw[column] = _after(raw["surgery_date"], list(raw[column]))
        return raw

    return st.lists(patient(), min_size=1, max_size=max_patients).map(build)


def survival_tables(max_rows: int = 15):
    """Hypothesis strategy: random valid clustered survival tables with their own names.

    Columns ``subject`` (unique str ids ``S<i>``), ``site`` (a few cluster ids),
    ``months`` (>= 0, some exactly 0: deaths on the day of the time origin), ``died``
    (0/1 int) and ``dose`` (float). Index is a RangeIndex.
    """
    from hypothesis import strategies as st

    row = st.tuples(
        st.sampled_from(["A", "B", "C", "D"]),
        st.one_of(st.just(0.0), st.floats(1e-3, 1e4, allow_nan=False, allow_infinity=False)),
        st.integers(0, 1),
        st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
    )

    def build(rows: list) -> pd.DataFrame:
        df = pd.DataFrame(rows, columns=["site", "months", "died", "dose"])
        df.insert(0, "subject", [f"S{i}" for i in range(len(df))])
        return df.astype({"months": "float64", "died": "int64", "dose": "float64"})

    return st.lists(row, min_size=1, max_size=max_rows).map(build)


def clustered_table(
    n: int = 400,
    n_clusters: int = 12,
    shape: float = 1.3,
    sd: float = 0.4,
    random_seed: int = 0,
    entry: bool = False,
    intercept: float = -4.0,
    censor: tuple[float, float] = (5.0, 60.0),
) -> pd.DataFrame:
    """A clustered survival table with its own column names, simulated from the model.

    Columns ``subject``, ``site`` (``n_clusters`` sites with Normal(0, ``sd``) effects),
    ``dose_mg`` (log HR 0.03), ``arm`` (log HR -0.5), ``followup_years`` (Weibull PH with
    ``shape`` and ``intercept``, censored uniformly on ``censor``) and ``died``; with
    ``entry``, ``enrolled`` (uniform delayed entry on 0-10, patients with an earlier exit
    left out, as a study would never have seen them).
    """
    from bayes_sarcoma.math import weibull

    rng = np.random.default_rng(random_seed)
    cl = rng.integers(0, n_clusters, n)
    u = rng.normal(0, sd, n_clusters)
    dose = rng.normal(50, 10, n)
    arm = rng.integers(0, 2, n)
    eta = intercept + 0.03 * dose - 0.5 * arm + u[cl]
    t = weibull.sample_times(rng, eta, shape)
    c = rng.uniform(*censor, n)
    df = pd.DataFrame(
        {
            "subject": [f"S{i:04d}" for i in range(n)],
            "site": [f"site-{k:02d}" for k in cl],
            "dose_mg": dose,
            "arm": arm,
            "followup_years": np.minimum(t, c),
            "died": (t <= c).astype(int),
        }
    )
    if entry:
        a = rng.uniform(0, 10, n)
        df["enrolled"] = a
        df = df[df.followup_years > a].reset_index(drop=True)
    return df


def small_binary_table(
    random_seed: int = 0,
    n: int = 100,
    n_clusters: int = 50,
    log_hr: float = -2.0,
    shape: float = 1.2,
    sd: float = 0.5,
    intercept: float = -3.5,
    censor: tuple[float, float] = (6.0, 30.0),
) -> pd.DataFrame:
    """A small clustered table with one strong patient-level binary effect (DESIGN.md 3.3).

    ``n`` patients in ``n_clusters`` equal clusters (``site``, Normal(0, ``sd``) effects on
    the log hazard), ``arm`` ~ Bernoulli(0.5) per patient (log HR ``log_hr``), Weibull PH
    times in months (``shape``, ``intercept``) censored uniformly on ``censor``. With the
    defaults about 30% of the patients have an event, 3 to 13 of them in the arm
    ``arm = 1``: a Cox estimate of about -2 with a standard error of 0.4 to 0.6.
    """
    from bayes_sarcoma.math import weibull

    rng = np.random.default_rng(random_seed)
    cl = np.repeat(np.arange(n_clusters), n // n_clusters)
    u = rng.normal(0, sd, n_clusters)
    arm = rng.integers(0, 2, n)
    t = weibull.sample_times(rng, intercept + log_hr * arm + u[cl], shape)
    c = rng.uniform(*censor, n)
    return pd.DataFrame(
        {
            "subject": [f"S{i:03d}" for i in range(n)],
            "site": [f"c{k:02d}" for k in cl],
            "arm": arm,
            "months": np.minimum(t, c),
            "died": (t <= c).astype(int),
        }
    )
