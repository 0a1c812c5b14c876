"""Tests of the registry simulator, its truth and the calibration table."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from bayes_sarcoma.data import schema
from bayes_sarcoma.data.endpoints import derive_endpoints
from bayes_sarcoma.math import weibull
from bayes_sarcoma.simulate import registry as simulate
from bayes_sarcoma.simulate import truth
from bayes_sarcoma.simulate.calibration import calibration_table, format_calibration, km_median

PUB = schema.PUBLISHED["median_months"]


@pytest.fixture(scope="module")
def registry() -> pd.DataFrame:
    return simulate.simulate_registry(random_seed=2026)


def _group_medians(df):
    out = {}
    for endpoint in ("LRFS", "RFS"):
        tcol, ecol = schema.endpoint_columns(endpoint)
        for group, flag in (("expert", True), ("other", False)):
            sub = df[df[schema.EXPERT] == flag]
            out[endpoint, group] = km_median(sub[tcol], sub[ecol])
    return out


# --------------------------------------------------------------------------- structure


def test_columns_and_dtypes(registry):
    df = registry
    assert list(df.columns) == [*schema.REQUIRED_COLUMNS, *schema.DERIVED_COLUMNS]
    assert len(df) == 9594
    assert df["patient_id"].is_unique
    assert df["patient_id"].str.fullmatch(r"P\d{6}").all()
    assert df["patient_id"].iloc[0] == "P000001"
    assert df["center_id"].str.fullmatch(r"E\d{2}|H\d{4}").all()
    assert df["expert_center"].dtype == bool
    assert (df["center_id"].str[0] == "E").eq(df["expert_center"]).all()
    assert df.groupby("center_id")["expert_center"].nunique().eq(1).all()
    assert df["age"].dtype == float
    assert (df["age"] >= 15).all()
    assert set(df["sex"]) == {"female", "male"}
    assert df["tumor_size_cm"].dtype == float
    assert (df["tumor_size_cm"] > 0).all()
    assert df["grade"].dtype == np.int64
    assert set(df["grade"]) == {1, 2, 3}
    assert set(df["depth"]) == {"superficial", "deep"}
    assert set(df["margin"]) == {"R0", "R1", "R2", "Rx"}
    for col in schema.DATE_COLUMNS:
        assert df[col].dtype == "datetime64[ns]"
        dates = df[col].dropna()
        assert (dates == dates.dt.normalize()).all(), col
    assert df["surgery_date"].between("2010-01-01", "2014-12-31").all()
    assert df["last_followup_date"].le("2019-12-31").all()
    assert (df["last_followup_date"] > df["surgery_date"]).all()
    for time_col, event_col in schema.ENDPOINTS.values():
        assert df[time_col].dtype == float
        assert (df[time_col] > 0).all()
        assert set(df[event_col]) == {0, 1}


def test_dates_follow_the_mechanism(registry):
    df = registry
    assert df["os_event"].eq(df["death_date"].notna()).all()
    died = df["death_date"].notna()
    assert (df.loc[died, "death_date"] == df.loc[died, "last_followup_date"]).all()
    for col in ("local_relapse_date", "distant_relapse_date"):
        seen = df[col].notna()
        assert (df.loc[seen, col] <= df.loc[seen, "last_followup_date"]).all()
        assert (df.loc[seen & died, col] <= df.loc[seen & died, "death_date"]).all()
    # some relapses, deaths and censoring of each kind
    assert 0.2 < df["local_relapse_date"].notna().mean() < 0.6
    assert 0.2 < df["distant_relapse_date"].notna().mean() < 0.7
    assert 0.2 < df["os_event"].mean() < 0.6
    lost = ~died & (df["last_followup_date"] < pd.Timestamp("2019-12-31"))
    assert 0.01 < lost.mean() < 0.2


def test_endpoint_ordering(registry):
    df = registry
    assert (df["rfs_months"] <= df["lrfs_months"]).all()
    assert (df["lrfs_months"] <= df["os_months"]).all()
    assert (df["rfs_event"] >= df["lrfs_event"]).all()
    assert (df["lrfs_event"] >= df["os_event"]).all()


def test_seed_reproducible_and_seeds_differ():
    a = simulate.simulate_registry(500, random_seed=7, pseudo_truth=False)
    b = simulate.simulate_registry(500, random_seed=7, pseudo_truth=False)
    c = simulate.simulate_registry(500, random_seed=8, pseudo_truth=False)
    pd.testing.assert_frame_equal(a, b)
    assert not a["os_months"].equals(c["os_months"])
    assert a.attrs["simulation"]["random_seed"] == 7
    # random_seed=None draws fresh entropy, recorded so the registry can be rebuilt
    d = simulate.simulate_registry(300, pseudo_truth=False)
    e = simulate.simulate_registry(
        300, random_seed=d.attrs["simulation"]["random_seed"], pseudo_truth=False
    )
    pd.testing.assert_frame_equal(d, e)
    g = simulate.simulate_registry(300, random_seed=np.random.default_rng(7), pseudo_truth=False)
    assert g.attrs["simulation"]["random_seed"] is None


@pytest.mark.parametrize("n", [1, 2, 30, 200])
def test_small_registries(n):
    df = simulate.simulate_registry(n, random_seed=3, pseudo_truth=False)
    assert len(df) == n
    assert df["patient_id"].is_unique
    assert (df["rfs_months"] <= df["os_months"]).all()


def test_derive_endpoints_agrees(registry):
    again = derive_endpoints(registry[list(schema.REQUIRED_COLUMNS)])
    for col in schema.DERIVED_COLUMNS:
        np.testing.assert_array_equal(again[col].to_numpy(), registry[col].to_numpy())


# --------------------------------------------------------------------------- calibration


def test_centre_structure(registry):
    df = registry
    sizes = df.groupby("center_id").agg(n=("expert_center", "size"), e=("expert_center", "max"))
    expert, other = sizes.loc[sizes["e"], "n"], sizes.loc[~sizes["e"], "n"]
    assert len(expert) == 26
    assert abs(df["expert_center"].mean() - 0.37) <= 0.03
    assert 1 <= other.median() <= 2
    assert len(other) > 1000
    assert expert.max() > 200  # varied expert centre sizes
    assert expert.min() < 60


@pytest.mark.parametrize("random_seed", [2026, 1, 2])
def test_crude_medians_match_published(random_seed, registry):
    df = registry if random_seed == 2026 else simulate.simulate_registry(random_seed=random_seed)
    for (endpoint, group), median in _group_medians(df).items():
        target = PUB[endpoint][group]
        assert abs(median / target - 1) <= 0.10, (endpoint, group, median, target)


def test_os_plausible_and_expert_hr(registry):
    hr = math.exp(registry.attrs["truth"]["OS"]["beta"]["expert_center"])
    assert 0.63 <= hr <= 0.70
    t, e = registry["os_months"], registry["os_event"]
    sf = stats.ecdf(stats.CensoredData.right_censored(t, e == 0)).sf
    assert 0.60 <= sf.evaluate(60.0) <= 0.75


def test_log_rank_significant(registry):
    table = calibration_table(registry).set_index("quantity")
    assert table.loc["LRFS log-rank p", "overall"] < 0.001
    assert table.loc["RFS log-rank p", "overall"] < 0.01


def test_confounding_directions(registry):
    df = registry
    e, o = df[df["expert_center"]], df[~df["expert_center"]]
    assert e["age"].mean() > o["age"].mean() + 2
    assert e["tumor_size_cm"].median() > o["tumor_size_cm"].median() + 1
    assert (e["grade"] == 3).mean() > (o["grade"] == 3).mean() + 0.05
    assert (e["depth"] == "deep").mean() > (o["depth"] == "deep").mean() + 0.05
    assert (e["margin"] == "R0").mean() > (o["margin"] == "R0").mean() + 0.1


def test_print_calibration_table(registry, capsys):
    text = format_calibration(registry)
    with capsys.disabled():
        print("\n" + text)
    assert "LRFS median (KM)" in text
    assert "pub. expert" in text


def test_calibration_table_on_any_registry(registry):
    own = registry[list(schema.REQUIRED_COLUMNS)].copy()
    own.attrs = {}
    table = calibration_table(own, published=False)
    assert list(table.columns) == [
        "section", "quantity", "unit", "expert", "other", "overall",
        "published_expert", "published_other", "published_overall",
    ]  # fmt: skip
    assert "truth" not in set(table["section"])
    assert table[["published_expert", "published_other", "published_overall"]].isna().all().all()
    assert "pub." not in format_calibration(table)
    full = calibration_table(registry).set_index("quantity")
    assert full.loc["RFS median (KM)", "published_expert"] == 25.0
    for col in ("expert", "other", "overall"):
        np.testing.assert_allclose(
            table.set_index("quantity")[col], full[col].loc[table["quantity"]]
        )


def test_km_median_agrees_with_lifelines(registry):
    lifelines = pytest.importorskip("lifelines")
    kmf = lifelines.KaplanMeierFitter().fit(registry["rfs_months"], registry["rfs_event"])
    assert km_median(registry["rfs_months"], registry["rfs_event"]) == pytest.approx(
        kmf.median_survival_time_
    )


# --------------------------------------------------------------------------- truth


def test_truth_structure(registry):
    tr = registry.attrs["truth"]
    assert list(tr) == ["LRFS", "RFS", "OS"]
    for endpoint, t in tr.items():
        assert {"intercept", "shape", "center_sd", "beta", "standardized", "exact"} <= set(t)
        assert t["exact"] is (endpoint == "OS")
        assert list(t["beta"]) == list(truth.TERMS)
        assert list(truth.TERMS) == [
            "expert_center", "age", "sex[male]", "tumor_size_cm", "grade[2]", "grade[3]",
            "depth[deep]", "margin[R1]", "margin[R2]", "margin[Rx]",
        ]  # fmt: skip
        assert all(np.isfinite(v) for v in [t["intercept"], t["shape"], *t["beta"].values()])
        assert t["center_sd"] == 0.15
        std = t["standardized"]
        assert set(std) == {"expert", "other"}
        for arm in std.values():
            assert list(arm) == [12, 24, 60]
            assert 0 < arm[60] < arm[24] < arm[12] < 1
        assert all(std["expert"][k] > std["other"][k] for k in (12, 24, 60))
    for k in (12, 24, 60):
        for arm in ("expert", "other"):
            s = {e: tr[e]["standardized"][arm][k] for e in tr}
            assert s["RFS"] < s["LRFS"] < s["OS"]
    cfg = simulate.default_config()
    assert tr["OS"]["beta"] == cfg["causes"]["death"]["beta"]
    assert tr["OS"]["intercept"] == cfg["causes"]["death"]["intercept"]
    stored = json.loads(truth.PSEUDO_TRUTH_PATH.read_text())
    assert tr["LRFS"]["beta"] == stored["endpoints"]["LRFS"]["beta"]
    assert registry.attrs["simulation"]["pseudo_truth"]["stored"] is True
    json.dumps(registry.attrs["simulation"], allow_nan=False)
    assert registry.attrs["simulation"]["config"] == simulate.make_config()


def _monte_carlo_standardized(df, cfg, reps, rng):
    """Survival at 12/24/60 months for new centres, every patient expert (or not)."""
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
        eta = truth.linear_predictors(x, cov["margin"], cfg)
        eta = np.tile(eta, (reps, 1))
        u = rng.normal(0.0, cfg["center_sd"], size=(eta.shape[0], 1))  # one new centre each
        latent = weibull.sample_times(rng, eta + u, truth.shapes(cfg))
        for endpoint, causes in truth.ENDPOINT_CAUSES.items():
            t = latent[:, [truth.CAUSES.index(c) for c in causes]].min(axis=1)
            out.setdefault(endpoint, {})[arm] = {k: float(np.mean(t > k)) for k in (12, 24, 60)}
    return out, eta.shape[0]


@pytest.mark.parametrize("margin_effects", [None, {"R1": 0.4, "Rx": -0.3}])
def test_standardized_truth_matches_monte_carlo(margin_effects):
    df = simulate.simulate_registry(
        4000, random_seed=11, expert_effect_by_margin=margin_effects, pseudo_truth=False
    )
    cfg = df.attrs["simulation"]["config"]
    mc, n = _monte_carlo_standardized(df, cfg, reps=50, rng=np.random.default_rng(12))
    for endpoint, arms in df.attrs["truth"].items():
        for arm, values in arms["standardized"].items():
            for k, s in values.items():
                se = math.sqrt(s * (1 - s) / n)
                assert abs(mc[endpoint][arm][k] - s) < 4.5 * se, (endpoint, arm, k)


def test_marginal_survival_quadrature():
    sd = 0.4
    for h in (0.01, 0.5, 3.0):
        exact, _ = integrate.quad(
            lambda u, h=h: math.exp(-h * math.exp(u)) * stats.norm.pdf(u, 0, sd), -10, 10
        )
        assert truth.marginal_survival(h, sd) == pytest.approx(exact, abs=1e-10)


def _fit_os(df_arrays, by_margin=False):
    a, df = df_arrays
    return truth.fit_endpoint(
        df["os_months"].to_numpy(), df["os_event"].to_numpy(), a["x"], a["u"], by_margin=by_margin
    )


def _large(n, cfg, random_seed):
    a = simulate._simulate_arrays(n, cfg, np.random.default_rng(random_seed))
    return a, derive_endpoints(simulate._frame(a))


def test_os_truth_recovered_by_mle_with_offset():
    """OS is exactly the model: the ML fit with known centre effects recovers the truth."""
    cfg = simulate.make_config()
    fit = _fit_os(_large(300_000, cfg, 5))
    death = cfg["causes"]["death"]
    truth_values = {"intercept": death["intercept"], "shape": death["shape"], **death["beta"]}
    fitted = {"intercept": fit["intercept"], "shape": fit["shape"], **fit["beta"]}
    z = {k: (fitted[k] - v) / fit["se"][k] for k, v in truth_values.items()}
    assert max(abs(v) for v in z.values()) < 4.0, z
    assert fit["se"]["expert_center"] < 0.01


def test_weibull_ph_mle_rejects_bad_input():
    with pytest.raises(ValueError, match="> 0"):
        truth.weibull_ph_mle([0.0, 1.0], [1, 1], [[0.0], [1.0]])
    with pytest.raises(ValueError, match="constant"):
        truth.weibull_ph_mle([1.0, 2.0], [1, 1], [[1.0], [1.0]])


def test_margin_dependent_expert_effect():
    extra = {"R1": 0.4, "Rx": -0.3}
    df = simulate.simulate_registry(3000, random_seed=4, expert_effect_by_margin=extra)
    base = simulate.simulate_registry(3000, random_seed=4)
    tr, tr0 = df.attrs["truth"], base.attrs["truth"]
    b = tr0["OS"]["beta"]["expert_center"]
    assert tr["OS"]["beta_expert_by_margin"] == pytest.approx(
        {"R0": b, "R1": b + 0.4, "R2": b, "Rx": b - 0.3}
    )
    assert tr["OS"]["beta"]["expert_center"] == b  # the effect at the reference margin R0
    assert "beta_expert_by_margin" not in tr0["OS"]
    # The whole endpoint hazard of an expert R1 patient is multiplied by exp(0.4), so the
    # pseudo-true expert effects by margin of LRFS and RFS move by about the cause-level
    # extras. (They are not equal across margins even without extras: the expert effect on
    # a composite endpoint depends on its mix of causes, which depends on the margin.)
    zero = simulate.compute_pseudo_truth(simulate.make_config(expert_effect_by_margin={"R1": 0}))
    for endpoint in ("LRFS", "RFS"):
        by_m, by_m0 = tr[endpoint]["beta_expert_by_margin"], zero[endpoint]["beta_expert_by_margin"]
        shift = {m: by_m[m] - by_m0[m] for m in truth.MARGINS}
        assert shift == pytest.approx({"R0": 0.0, "R1": 0.4, "R2": 0.0, "Rx": -0.3}, abs=0.02)
    assert df.attrs["simulation"]["pseudo_truth"]["stored"] is False
    # worse expert effect in R1 patients: a smaller standardized expert advantage
    gain = {k: t["standardized"]["expert"][60] - t["standardized"]["other"][60]
            for k, t in (("by_margin", tr["OS"]), ("default", tr0["OS"]))}  # fmt: skip
    assert gain["by_margin"] < gain["default"]
    # the simulated data follow it: the OS fit with interactions recovers the truth
    cfg = df.attrs["simulation"]["config"]
    fit = _fit_os(_large(200_000, cfg, 9), by_margin=True)
    for m, v in tr["OS"]["beta_expert_by_margin"].items():
        assert fit["beta_expert_by_margin"][m] == pytest.approx(v, abs=0.06), m


def test_overrides_merge_without_mutating_defaults():
    before = simulate.default_config()
    df = simulate.simulate_registry(
        200,
        random_seed=1,
        causes={"death": {"beta": {"expert_center": -0.2}}},
        shapes={"local": 0.7},
        center_sd=0.3,
        pseudo_truth=False,
    )
    tr = df.attrs["truth"]
    assert tr["OS"]["beta"]["expert_center"] == -0.2
    assert tr["OS"]["beta"]["age"] == before["causes"]["death"]["beta"]["age"]
    assert tr["OS"]["center_sd"] == 0.3
    assert math.isnan(tr["LRFS"]["intercept"])
    assert df.attrs["simulation"]["config"]["causes"]["local"]["shape"] == 0.7
    assert simulate.default_config() == before
    with pytest.raises(ValueError, match="unknown simulation setting"):
        simulate.simulate_registry(10, causes={"death": {"beta": {"expert": -0.2}}})
    with pytest.raises(ValueError, match="unknown margin"):
        simulate.simulate_registry(10, expert_effect_by_margin={"R3": 0.1})
    with pytest.raises(ValueError, match="expert_share"):
        simulate.simulate_registry(10, expert_share=1.5)
    with pytest.raises(ValueError, match="cutoff"):
        simulate.simulate_registry(10, followup={"cutoff": "2013-01-01"})


def test_centre_options():
    df = simulate.simulate_registry(
        5000, random_seed=2, n_expert_centers=10, expert_share=0.5, hospital_size_exponent=3.0,
        pseudo_truth=False,
    )  # fmt: skip
    sizes = df.groupby("center_id").size()
    assert df.loc[df["expert_center"], "center_id"].nunique() == 10
    assert df["expert_center"].mean() == pytest.approx(0.5, abs=0.001)
    hospitals = sizes[sizes.index.str.startswith("H")]
    assert (hospitals == 1).mean() > 0.75  # 1 / zeta(3) = 0.83 (0.67 at the default 2.2)


# --------------------------------------------------------------------------- pseudo-truth


def test_stored_pseudo_truth_belongs_to_the_defaults():
    """Changing the defaults needs `python scripts/compute_pseudo_truth.py`."""
    stored = truth.stored_pseudo_truth()
    assert stored is not None
    part = simulate.pseudo_truth_config(simulate.make_config())
    assert stored["config"] == part
    assert stored["config_hash"] == truth.config_hash(part)
    assert stored["n_patients"] >= 500_000
    assert set(stored["endpoints"]) == {"LRFS", "RFS"}


@pytest.mark.slow
def test_stored_pseudo_truth_recomputes():
    stored = truth.stored_pseudo_truth()
    fresh = simulate.compute_pseudo_truth(
        simulate.make_config(), stored["n_patients"], stored["random_seed"]
    )
    for endpoint, v in stored["endpoints"].items():
        assert fresh[endpoint]["intercept"] == pytest.approx(v["intercept"], abs=1e-6)
        assert fresh[endpoint]["shape"] == pytest.approx(v["shape"], abs=1e-6)
        assert fresh[endpoint]["beta"] == pytest.approx(v["beta"], abs=1e-6)
