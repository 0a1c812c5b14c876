"""The simulator's scenarios (rise_fall, waning_expert) and missing covariates, and their truths.

Each truth is checked against an independent computation: scipy's distributions, numerical
integration (``scipy.integrate.quad``), Monte Carlo and Cox/empirical hazards of large
simulated registries; tolerances are stated beside each check.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, special, stats

import bayes_sarcoma as bs
from bayes_sarcoma.data.endpoints import derive_endpoints
from bayes_sarcoma.simulate import missing as miss
from bayes_sarcoma.simulate import registry as simulate
from bayes_sarcoma.simulate import scenarios, truth

TIMES = (12, 36, 60, 96)
OLD_TRUTH_KEYS = ("intercept", "shape", "center_sd", "beta", "standardized", "exact")


def _large(n, cfg, random_seed):
    a = simulate._simulate_arrays(n, cfg, np.random.default_rng(random_seed))
    return a, derive_endpoints(simulate._frame(a))


# --------------------------------------------------------------------------- the default


@pytest.mark.parametrize(
    ("n", "random_seed", "kwargs", "table_sha", "truth_sha"),
    [
        (500, 7, {"pseudo_truth": False}, "9781be72c5639cbb", "89632855babb3cf9"),
        (3000, 1, {}, "c2906951281ae411", "27858f769b0d6291"),
    ],
)
def test_default_registry_unchanged_bit_for_bit(n, random_seed, kwargs, table_sha, truth_sha):
    """Hashes computed with the simulator before scenarios existed (commit 1858b39)."""
    df = simulate.simulate_registry(n, random_seed=random_seed, **kwargs)
    rows = pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes()
    assert hashlib.sha256(rows).hexdigest()[:16] == table_sha
    old = {e: {k: t[k] for k in OLD_TRUTH_KEYS} for e, t in df.attrs["truth"].items()}
    text = json.dumps(old, sort_keys=True).encode()
    assert hashlib.sha256(text).hexdigest()[:16] == truth_sha
    assert "scenario" not in df.attrs["simulation"]["config"]
    assert df.attrs["simulation"]["scenario"] == "weibull"
    assert "missing" not in df.attrs


def test_default_exact_hazard_ratios():
    df = simulate.simulate_registry(300, random_seed=1, pseudo_truth=False)
    tr, cfg = df.attrs["truth"], simulate.make_config()
    assert tr["OS"]["log_hazard_ratio"] == tr["OS"]["beta"]
    assert tr["OS"]["expert_hazard_ratio"] == {t: math.exp(-0.43) for t in (12, 24, 60)}
    # LRFS = local relapse or death: PH exactly in the terms whose coefficient both share
    lrfs = tr["LRFS"]["log_hazard_ratio"]
    shared = {
        t
        for t in truth.TERMS
        if len({cfg["causes"][k]["beta"][t] for k in ("local", "death")}) == 1
    }
    assert shared == {"tumor_size_cm", "depth[deep]"}
    assert {t for t, v in lrfs.items() if v is not None} == shared
    assert all(v is None for v in tr["RFS"]["expert_hazard_ratio"].values())
    # the truth of a seed equals itself (no NaN in the exact entries)
    again = simulate.simulate_registry(300, random_seed=1, pseudo_truth=False).attrs["truth"]
    assert {e: t["log_hazard_ratio"] for e, t in again.items()} == {
        e: t["log_hazard_ratio"] for e, t in tr.items()
    }


# --------------------------------------------------------------------------- rise_fall


def test_loglogistic_formulas_match_scipy():
    t = np.array([1e-3, 0.5, 6.0, 15.0, 60.0, 600.0])
    lam, kappa, eta = 15.0, 2.5, -1.3
    fisk = stats.fisk(c=kappa, scale=lam)  # the log-logistic distribution
    np.testing.assert_allclose(
        scenarios.loglogistic_cumulative_hazard(t, lam, kappa), -fisk.logsf(t), rtol=1e-12
    )
    # far in the tail (where scipy's logsf loses 6 digits): kappa log(t / lam) + log1p(...)
    far = np.array([1e6, 1e12])
    np.testing.assert_allclose(
        scenarios.loglogistic_cumulative_hazard(far, lam, kappa),
        kappa * np.log(far / lam) + np.log1p((far / lam) ** -kappa),
        rtol=1e-14,
    )
    np.testing.assert_allclose(
        scenarios.loglogistic_hazard(t, lam, kappa), fisk.pdf(t) / fisk.sf(t), rtol=1e-12
    )
    # T | eta is Burr XII with d = exp(eta): S(T) = exp(-E) <=> T = isf(exp(-E))
    e = np.array([1e-8, 1e-3, 0.1, 1.0, 5.0, 30.0])
    burr = stats.burr12(c=kappa, d=math.exp(eta), scale=lam)
    np.testing.assert_allclose(
        scenarios.loglogistic_times(e, eta, lam, kappa), burr.isf(np.exp(-e)), rtol=1e-9
    )


@pytest.mark.parametrize("cause", truth.CAUSES)
def test_rise_fall_hazard_rises_then_falls(cause):
    cfg = simulate.make_config(scenario="rise_fall")
    lam, kappa = cfg["causes"][cause]["scale"], cfg["causes"][cause]["shape"]
    peak = lam * (kappa - 1) ** (1 / kappa)
    found = optimize.minimize_scalar(
        lambda t: -scenarios.loglogistic_hazard(t, lam, kappa), bounds=(0.1, 200), method="bounded"
    )
    assert found.x == pytest.approx(peak, rel=1e-4)
    assert 10 <= peak <= 36  # relapses peak in the first three years, death later
    grid = np.linspace(0.01, 300, 3000)
    h = scenarios.loglogistic_hazard(grid, lam, kappa)
    assert np.all(np.diff(h[grid < peak]) > 0)
    assert np.all(np.diff(h[grid > peak]) < 0)


def test_rise_fall_empirical_hazard_rises_then_falls():
    """Events per person-month of the latent (uncensored) times of 100,000 patients."""
    cfg = simulate.make_config(scenario="rise_fall")
    a = simulate._simulate_arrays(100_000, cfg, np.random.default_rng(3))
    for k, cause in enumerate(truth.CAUSES):
        t = a["latent"][:, k]
        windows = (
            [(0, 3), (9, 27), (120, 240)] if cause != "death" else [(0, 6), (24, 48), (240, 480)]
        )
        rate = []
        for lo, hi in windows:
            events = np.sum((t >= lo) & (t < hi))
            rate.append(events / np.sum(np.clip(t, lo, hi) - lo))
        assert rate[1] > 1.5 * rate[0], (cause, rate)
        assert rate[1] > 1.5 * rate[2], (cause, rate)


def test_rise_fall_intercepts_match_the_default_at_60_months():
    rf, w = simulate.make_config(scenario="rise_fall"), simulate.make_config()
    assert rf["scenario"] == {"name": "rise_fall", "baseline": "loglogistic"}
    x = np.array([[1, 60, 1, 8, 0, 1, 1, 0, 0, 0], [0, 40, 0, 3, 1, 0, 0, 1, 0, 0]], float)
    margin = np.array([0, 1])
    h = {
        name: truth.cause_cumulative_hazards(
            truth.linear_predictors(x, margin, c), x[:, 0], [60.0], c
        )
        for name, c in (("rf", rf), ("w", w))
    }
    np.testing.assert_allclose(h["rf"], h["w"], rtol=6e-4)  # intercepts rounded to 3 decimals
    assert rf["causes"]["death"]["beta"] == w["causes"]["death"]["beta"]


def _monte_carlo(df, cfg, times, reps, rng, sampler=None):
    """Survival at ``times`` of each arm, each replicate patient at a new centre."""
    cov = {
        "age": df["age"].to_numpy(),
        "male": df["sex"].eq("male").to_numpy(),
        "size": df["tumor_size_cm"].to_numpy(),
        "grade": df["grade"].to_numpy(),
        "deep": df["depth"].eq("deep").to_numpy(),
        "margin": df["margin"].map({m: j for j, m in enumerate(truth.MARGINS)}).to_numpy(),
    }
    out = {}
    for arm, flag in (("expert", True), ("other", False)):
        x = simulate.design_matrix(np.full(len(df), flag), cov)
        eta = np.tile(truth.linear_predictors(x, cov["margin"], cfg), (reps, 1))
        eta = eta + rng.normal(0.0, cfg["center_sd"], size=(eta.shape[0], 1))
        latent = (sampler or truth.sample_latent_times)(rng, eta, np.full(len(eta), flag), cfg)
        for endpoint, causes in truth.ENDPOINT_CAUSES.items():
            t = latent[:, [truth.CAUSES.index(c) for c in causes]].min(axis=1)
            out.setdefault(endpoint, {})[arm] = {k: float(np.mean(t > k)) for k in times}
    return out, eta.shape[0]


def _burr_sampler(rng, eta, expert, cfg):
    """Latent times drawn by scipy's Burr XII sampler: independent of the inversion."""
    cols = []
    for k, cause in enumerate(truth.CAUSES):
        par = cfg["causes"][cause]
        dist = stats.burr12(c=par["shape"], d=np.exp(eta[:, k]), scale=par["scale"])
        cols.append(dist.rvs(random_state=rng))
    return np.column_stack(cols)


def _assert_close(truth_std, mc, n, z=4.5):
    for endpoint, arms in truth_std.items():
        for arm, values in arms.items():
            for k, s in values.items():
                se = math.sqrt(s * (1 - s) / n)
                assert abs(mc[endpoint][arm][k] - s) < z * se, (
                    endpoint,
                    arm,
                    k,
                    s,
                    mc[endpoint][arm][k],
                )


@pytest.mark.parametrize("sampler", [None, _burr_sampler], ids=["inversion", "scipy_burr12"])
def test_rise_fall_standardized_truth_matches_monte_carlo(sampler):
    df = simulate.simulate_registry(
        3000, random_seed=11, scenario="rise_fall", truth_times=TIMES, pseudo_truth=False
    )
    cfg = df.attrs["simulation"]["config"]
    mc, n = _monte_carlo(df, cfg, TIMES, 40, np.random.default_rng(12), sampler)
    _assert_close({e: t["standardized"] for e, t in df.attrs["truth"].items()}, mc, n)


def test_rise_fall_true_log_hazard_ratios_recovered_by_cox():
    """OS is PH with a log-logistic baseline: Cox (baseline-free) recovers every log HR."""
    lifelines = pytest.importorskip("lifelines")
    cfg = simulate.make_config(scenario="rise_fall")
    a, df = _large(20_000, cfg, 5)
    data = pd.DataFrame(a["x"], columns=list(truth.TERMS)).assign(
        u=a["u"], time=df["os_months"], event=df["os_event"]
    )
    fit = lifelines.CoxPHFitter().fit(data, "time", "event")
    exact = simulate.simulate_registry(10, scenario="rise_fall", pseudo_truth=False).attrs["truth"]
    beta = exact["OS"]["log_hazard_ratio"]
    z = {t: (fit.params_[t] - beta[t]) / fit.standard_errors_[t] for t in truth.TERMS}
    assert max(abs(v) for v in z.values()) < 4.0, z
    assert fit.params_["u"] == pytest.approx(1.0, abs=4 * fit.standard_errors_["u"])


def test_scenario_truth_structure_is_the_default_one():
    default = simulate.simulate_registry(200, random_seed=1, pseudo_truth=False).attrs["truth"]
    for scenario in ("rise_fall", "waning_expert"):
        df = simulate.simulate_registry(200, random_seed=1, scenario=scenario, pseudo_truth=False)
        tr = df.attrs["truth"]
        assert list(tr) == list(default)
        for e in tr:
            assert list(tr[e]) == list(default[e])
            assert tr[e]["exact"] is False
            assert list(tr[e]["standardized"]["expert"]) == [12, 24, 60]
        assert df.attrs["simulation"]["scenario"] == scenario
        # same seed, same centres and covariates: only the times change
        base = simulate.simulate_registry(200, random_seed=1, pseudo_truth=False)
        cols = [
            "patient_id",
            "center_id",
            "expert_center",
            "age",
            "grade",
            "margin",
            "surgery_date",
        ]
        pd.testing.assert_frame_equal(df[cols], base[cols])
        assert not df["os_months"].equals(base["os_months"])


def test_scenario_pseudo_truth_includes_os():
    df = simulate.simulate_registry(300, random_seed=2, scenario="rise_fall")
    tr = df.attrs["truth"]
    assert df.attrs["simulation"]["pseudo_truth"]["stored"] is False
    for e in tr:
        assert all(np.isfinite([tr[e]["intercept"], tr[e]["shape"], *tr[e]["beta"].values()]))
    # a Weibull fit to a log-logistic PH baseline is biased, but not far off in the betas
    assert tr["OS"]["beta"]["grade[3]"] == pytest.approx(
        tr["OS"]["log_hazard_ratio"]["grade[3]"], abs=0.2
    )


# --------------------------------------------------------------------------- waning_expert


@pytest.mark.parametrize(("beta", "shape"), [(-1.2, 0.85), (-0.9, 1.1), (0.7, 0.8), (-3.0, 1.5)])
def test_waning_integral_matches_quad(beta, shape):
    tau = 24.0
    for t in (1e-6, 0.5, 12.0, 36.0, 96.0, 1e4):
        exact, _ = integrate.quad(
            lambda s: shape * s ** (shape - 1) * math.exp(beta * math.exp(-s / tau)),
            0, t, epsabs=0, epsrel=1e-12, limit=200,
        )  # fmt: skip
        assert scenarios.waning_integral(t, beta, shape, tau) == pytest.approx(exact, rel=1e-10)


def test_waning_times_invert_the_cumulative_hazard():
    rng = np.random.default_rng(4)
    e, eta0 = rng.standard_exponential(5000), rng.normal(-6.0, 1.5, 5000)
    t = scenarios.waning_times(e, eta0, -1.2, 0.85, 24.0)
    np.testing.assert_allclose(
        np.exp(eta0) * scenarios.waning_integral(t, -1.2, 0.85, 24.0), e, rtol=1e-12
    )


def _thinning(rng, n, eta0, beta, shape, tau):
    """Times of h(t) = exp(eta0) shape t**(shape-1) exp(beta(t)), beta < 0, by thinning.

    Candidate points of the Weibull process (hazard without the expert effect, which bounds
    h) are accepted with probability exp(beta(t)) (Lewis and Shedler): independent of the
    inversion and of the series.
    """
    out = np.full(n, np.nan)
    cum = np.zeros(n)
    todo = np.arange(n)
    while todo.size:
        cum[todo] += rng.standard_exponential(todo.size)
        cand = (cum[todo] * math.exp(-eta0)) ** (1 / shape)
        accept = rng.random(todo.size) < np.exp(scenarios.waning_log_hazard_ratio(cand, beta, tau))
        out[todo[accept]] = cand[accept]
        todo = todo[~accept]
    return out


def test_waning_times_match_a_thinning_sampler():
    rng = np.random.default_rng(8)
    n, eta0, beta, shape, tau = 20_000, -3.5, -1.2, 0.85, 24.0
    inverted = scenarios.waning_times(
        rng.standard_exponential(n), np.full(n, eta0), beta, shape, tau
    )
    thinned = _thinning(rng, n, eta0, beta, shape, tau)
    assert stats.ks_2samp(inverted, thinned).pvalue > 0.001


def test_waning_expert_standardized_truth_matches_monte_carlo():
    df = simulate.simulate_registry(
        1500, random_seed=21, scenario="waning_expert", truth_times=TIMES, pseudo_truth=False
    )
    cfg = df.attrs["simulation"]["config"]
    mc, n = _monte_carlo(df, cfg, TIMES, 20, np.random.default_rng(22))
    _assert_close({e: t["standardized"] for e, t in df.attrs["truth"].items()}, mc, n)


def test_waning_expert_hazard_ratio_truth():
    df = simulate.simulate_registry(
        100, random_seed=1, scenario={"name": "waning_expert", "expert_waning_months": 12.0},
        truth_times=TIMES, pseudo_truth=False,
    )  # fmt: skip
    tr = df.attrs["truth"]
    assert tr["OS"]["expert_hazard_ratio"] == pytest.approx(
        {t: math.exp(-0.9 * math.exp(-t / 12)) for t in TIMES}
    )
    assert tr["OS"]["log_hazard_ratio"]["expert_center"] is None
    assert tr["OS"]["log_hazard_ratio"]["age"] == 0.035  # the other terms stay PH
    assert all(v is None for v in tr["LRFS"]["expert_hazard_ratio"].values())


def test_waning_expert_empirical_hazard_ratio_early_and_late():
    """Expert deaths in a window against the expected under no expert effect (O / E0).

    With each patient's true ``eta0 + u`` known, ``E0 = sum exp(eta0 + u) (H0(min(T, b)) -
    H0(a))`` over the experts at risk at ``a``; ``O / E0`` estimates the hazard ratio
    averaged over the window, within 4 Poisson sd (``sqrt(O) / E0``) plus 0.02 for the
    change of HR(t) inside the 4-month window. Latent (uncensored) death times.
    """
    cfg = simulate.make_config(scenario="waning_expert")
    a = simulate._simulate_arrays(100_000, cfg, np.random.default_rng(6))
    death, alpha = truth.CAUSES.index("death"), cfg["causes"]["death"]["shape"]
    beta = cfg["causes"]["death"]["beta"]["expert_center"]
    t, expert = a["latent"][:, death], a["expert"]
    rate0 = np.exp(a["eta"][:, death] + a["u"] - expert * beta)
    exact = simulate.simulate_registry(
        10, scenario="waning_expert", truth_times=(12, 60), pseudo_truth=False
    )
    hr_true = exact.attrs["truth"]["OS"]["expert_hazard_ratio"]
    ratios = {}
    for mid in (12, 60):
        lo, hi = mid - 2, mid + 2
        at_risk = t >= lo
        for group, flag in (("expert", True), ("other", False)):
            rows = at_risk & (expert == flag)
            observed = np.sum(rows & (t < hi))
            e0 = np.sum(rate0[rows] * (np.minimum(t[rows], hi) ** alpha - lo**alpha))
            ratios[group, mid] = observed / e0
            want = hr_true[mid] if flag else 1.0
            assert abs(observed / e0 - want) < 4 * math.sqrt(observed) / e0 + 0.02, (group, mid)
    assert ratios["expert", 12] < ratios["expert", 60] - 0.15  # the effect wanes


# --------------------------------------------------------------------------- missing


def _logistic_fit(y, x):
    """Maximum-likelihood logistic regression (intercept added); returns the coefficients."""
    z = np.column_stack([np.ones(len(y)), x])

    def nll(b):
        lin = z @ b
        return np.sum(np.logaddexp(0, lin) - y * lin), z.T @ (special.expit(lin) - y)

    return optimize.minimize(nll, np.zeros(z.shape[1]), jac=True, method="BFGS").x


def _std(v):
    v = np.asarray(v, float)
    return (v - v.mean()) / v.std()


@pytest.mark.parametrize("column", miss.MISSING_COLUMNS)
@pytest.mark.parametrize("mechanism", ["MAR", "MNAR"])
def test_missing_fraction_and_mechanism(column, mechanism):
    n = 20_000
    setting = dict(column=column, fraction=0.2, mechanism=mechanism)
    df = simulate.simulate_registry(n, random_seed=31, missing=setting, pseudo_truth=False)
    full = miss.complete_registry(df)
    gone = df[column].isna().to_numpy()
    assert abs(gone.mean() - 0.2) < 4 * math.sqrt(0.2 * 0.8 / n)
    own = miss.driver_values(full, column)  # the value itself (log size, deep, grade)
    age = full["age"].to_numpy()
    b = _logistic_fit(
        gone.astype(float), np.column_stack([_std(age), _std(own), full["expert_center"]])
    )
    # true model: logit p = a + 1 * z, z the standardized age (MAR) or value (MNAR)
    want = (1.0, 0.0) if mechanism == "MAR" else (0.0, 1.0)
    assert b[1] == pytest.approx(want[0], abs=0.12), b
    assert b[2] == pytest.approx(want[1], abs=0.12), b
    assert abs(b[3]) < 0.12  # nor on the expert flag, given age and the value


def test_missing_keeps_the_complete_registry_and_truth():
    settings = [
        dict(column="grade", fraction=0.2, mechanism="MNAR", strength=1.5),
        dict(column="tumor_size_cm", fraction=0.3, mechanism="MAR", depends_on="expert_center"),
        dict(column="depth", fraction=0.1, mechanism="MCAR"),
    ]
    df = simulate.simulate_registry(2000, random_seed=9, missing=settings, pseudo_truth=False)
    base = simulate.simulate_registry(2000, random_seed=9, pseudo_truth=False)
    pd.testing.assert_frame_equal(miss.complete_registry(df), base)
    assert json.dumps(df.attrs["truth"]) == json.dumps(base.attrs["truth"])  # NaN-aware
    assert df["grade"].dtype == "Int64"
    assert df[["grade", "depth", "tumor_size_cm"]].isna().any().all()
    other = [c for c in df.columns if c not in ("grade", "tumor_size_cm", "depth")]
    pd.testing.assert_frame_equal(df[other], base[other])
    rec = df.attrs["missing"]
    assert set(rec) == {"grade", "tumor_size_cm", "depth"}
    assert len(rec["grade"]["patient_id"]) == df["grade"].isna().sum()
    assert rec["grade"]["strength"] == 1.5
    assert rec["depth"]["depends_on"] is None
    json.dumps(rec, allow_nan=False)
    json.dumps(df.attrs["simulation"], allow_nan=False)


def test_missing_values_are_rejected_with_a_clear_error():
    setting = dict(column="grade", fraction=0.2, mechanism="MAR")
    df = simulate.simulate_registry(300, random_seed=3, missing=setting, pseudo_truth=False)
    n_gone = int(df["grade"].isna().sum())
    with pytest.raises(bs.RegistryError, match=rf"'grade'.*must not be missing.*{n_gone} rows"):
        bs.validate_registry(df)
    with pytest.raises(bs.RegistryError, match=rf"'grade'.*no missing values.*{n_gone} rows"):
        bs.HierarchicalWeibull("OS").fit(df, draws=5, tune=5, chains=1, progressbar=False)


# --------------------------------------------------------------------------- bad settings


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scenario": "lognormal"}, "unknown scenario"),
        (
            {"scenario": {"name": "waning_expert", "tau": 3}},
            "unknown simulation setting scenario.'tau'",
        ),
        (
            {"scenario": {"name": "waning_expert", "expert_waning_months": 0}},
            "expert_waning_months",
        ),
        ({"scenario": {"name": "weibull", "x": 1}}, "has no settings"),
        ({"scenario": {"name": "rise_fall", "baseline": "lognormal"}}, "loglogistic"),
        ({"scenario": "rise_fall", "causes": {"local": {"scale": -1.0}}}, "scale must be > 0"),
        ({"causes": {"local": {"scale": 2.0}}}, "unknown simulation setting"),
        ({"missing": dict(column="age", fraction=0.2, mechanism="MAR")}, "column must be one of"),
        ({"missing": dict(column="grade", fraction=1.2, mechanism="MAR")}, "fraction"),
        ({"missing": dict(column="grade", fraction=0.2, mechanism="NMAR")}, "mechanism"),
        (
            {"missing": dict(column="grade", fraction=0.2, mechanism="MNAR", depends_on="age")},
            "MAR only",
        ),
        (
            {"missing": dict(column="grade", fraction=0.2, mechanism="MAR", depends_on="grade")},
            "depends_on",
        ),
        ({"missing": [dict(column="grade", fraction=0.1, mechanism="MAR")] * 2}, "at most once"),
        ({"truth_times": (0, 12)}, "truth_times"),
    ],
)
def test_bad_scenario_and_missing_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate.simulate_registry(10, random_seed=1, pseudo_truth=False, **kwargs)


def test_rise_fall_overrides_merge_over_the_scenario():
    cfg = simulate.make_config(
        scenario="rise_fall", causes={"local": {"scale": 20.0}}, shapes={"death": 3.0}
    )
    assert cfg["causes"]["local"]["scale"] == 20.0
    assert cfg["causes"]["death"]["shape"] == 3.0
    assert cfg["causes"]["distant"]["scale"] == 10.0
    assert "scale" not in simulate.default_config()["causes"]["local"]
