"""HierarchicalWeibull: the results contract, correctness against closed forms and MLE,
parameter recovery, samplers, compile-once, priors and input errors."""

import warnings

import arviz_stats as azs
import numpy as np
import pandas as pd
import pytest
from conftest import FAST
from registry_factory import clustered_table
from scipy import stats

import bayes_sarcoma as bs
from bayes_sarcoma.inference import sampling
from bayes_sarcoma.math import weibull
from bayes_sarcoma.model.posterior import (
    internal_parameters,
    pointwise_log_likelihood,
    user_scale_posterior,
)

REGISTRY_LABELS = [
    "expert_center",
    "age",
    "sex[male]",
    "tumor_size_cm",
    "grade[2]",
    "grade[3]",
    "depth[deep]",
    "margin[R1]",
    "margin[R2]",
    "margin[Rx]",
]


def inside(dt, var, truth, ci_prob=0.94, **sel):
    draws = dt.posterior[var].sel(**sel).to_numpy().ravel()
    lo, hi = np.quantile(draws, [(1 - ci_prob) / 2, (1 + ci_prob) / 2])
    return lo <= truth <= hi


# -- the results contract --------------------------------------------------------------
def test_datatree_contract(os_model_and_fit, registry_small):
    _, dt = os_model_and_fit
    for group in ("posterior", "sample_stats", "observed_data", "constant_data", "log_likelihood"):
        assert group in dt.children
    post = dt.posterior
    assert set(post.data_vars) == {
        "intercept",
        "shape",
        "beta",
        "hazard_ratio",
        "center_sd",
        "center_effect",
    }
    assert post["intercept"].dims == ("chain", "draw")
    assert post["beta"].dims == ("chain", "draw", "term")
    assert list(post["term"].values) == REGISTRY_LABELS
    assert post["center_effect"].dims == ("chain", "draw", "center")
    assert set(post["center"].values) == set(registry_small.center_id)
    np.testing.assert_allclose(post["hazard_ratio"], np.exp(post["beta"]))
    ll = dt.log_likelihood["time"]
    assert ll.dims == ("chain", "draw", "patient")
    assert list(ll["patient"].values) == list(registry_small.patient_id)
    assert np.isfinite(ll).all()
    np.testing.assert_array_equal(dt.constant_data["time"], registry_small.os_event)
    np.testing.assert_allclose(
        dt.observed_data["time"], registry_small.os_months.clip(lower=0.5 / 30.4375)
    )
    # ArviZ works on it without conversion.
    summary = azs.summary(dt, var_names=["beta"])
    assert len(summary) == len(REGISTRY_LABELS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Pareto k with only 600 draws
        loo = azs.loo(dt)
    assert np.isfinite(loo.elpd)


def test_pointwise_log_likelihood_matches_the_sampled_potential(registry_small):
    """The stored pointwise log-likelihood and the sampled engine's potential agree.

    (The integrated engine's potential is checked against numerical integration in
    test_engine.py.)
    """
    model = bs.HierarchicalWeibull("OS", engine="sampled")
    pm_model = model.build_model(registry_small)
    rng = np.random.default_rng(5)
    n_terms, n_centers = len(REGISTRY_LABELS), len(model.prepared_.center_ids)
    draws = {
        "intercept_c": rng.normal(-1, 0.3, (1, 3)),
        "shape": rng.uniform(0.7, 1.6, (1, 3)),
        "beta_std_Normal": rng.normal(0, 0.3, (1, 3, n_terms)),
        "center_sd": rng.uniform(0.1, 0.6, (1, 3)),
        "center_raw": rng.normal(0, 1, (1, 3, n_centers)),
    }
    plan = model._plan()
    internal = internal_parameters(draws, plan.beta_groups, n_terms)
    post = user_scale_posterior(internal, model.design, model.prepared_)
    ours = pointwise_log_likelihood(post, model.prepared_).sum(axis=-1)[0]
    potential = pm_model.compile_logp(vars=pm_model.potentials, jacobian=False)
    prep = model.prepared_
    for k in range(3):
        point = {
            "intercept_c": draws["intercept_c"][0, k],
            "shape_log__": np.log(draws["shape"][0, k]),
            "beta_std_Normal": draws["beta_std_Normal"][0, k],
            "center_sd_log__": np.log(draws["center_sd"][0, k]),
            "center_raw": draws["center_raw"][0, k],
        }
        # The sampler works on times / t_ref: its density differs by d * log(t_ref).
        expected = float(potential(point)) - prep.event.sum() * np.log(prep.t_ref)
        assert ours[k] == pytest.approx(expected, rel=1e-9)


def test_finite_gradient_at_the_initial_point(registry_small):
    pm_model = bs.HierarchicalWeibull("RFS").build_model(registry_small)
    point = pm_model.initial_point()
    grad = pm_model.compile_dlogp()(point)
    assert np.isfinite(grad).all()
    assert np.isfinite(pm_model.compile_logp()(point))


# -- recovery ----------------------------------------------------------------------------
def test_recovers_the_exact_os_truth(os_model_and_fit, registry_small):
    _, dt = os_model_and_fit
    truth = registry_small.attrs["truth"]["OS"]
    assert truth["exact"]
    assert inside(dt, "beta", truth["beta"]["expert_center"], term="expert_center")
    assert inside(dt, "shape", truth["shape"])
    assert inside(dt, "center_sd", truth["center_sd"])
    # Jointly: the posterior z-scores of the ten log hazard ratios are about standard
    # normal, so their sum of squares is about chi-square(10); a sign or scale error in any
    # term (z of 5 or more) fails this, one-in-a-thousand bad luck does not.
    z = {
        t: float(dt.posterior["beta"].sel(term=t).mean() - truth["beta"][t])
        / float(dt.posterior["beta"].sel(term=t).std())
        for t in REGISTRY_LABELS
    }
    assert sum(v * v for v in z.values()) < stats.chi2.ppf(0.999, len(z)), z


@pytest.mark.slow
def test_recovers_the_truth_at_netsarc_size():
    df = bs.simulate_registry(random_seed=2026)
    truth = df.attrs["truth"]["OS"]
    dt = bs.HierarchicalWeibull("OS").fit(df, random_seed=3, progressbar=False)
    assert inside(dt, "beta", truth["beta"]["expert_center"], term="expert_center")
    assert inside(dt, "shape", truth["shape"])
    assert inside(dt, "center_sd", truth["center_sd"])
    summary = azs.summary(dt, var_names=["intercept", "shape", "beta", "center_sd"])
    assert summary["r_hat"].max() < 1.01
    assert summary["ess_bulk"].min() >= 400


def test_user_table_with_its_own_column_names_and_delayed_entry():
    df = clustered_table(n=600, random_seed=4, entry=True)
    model = bs.HierarchicalWeibull(
        time="followup_years",
        event="died",
        cluster="site",
        terms=["dose_mg", "arm"],
        entry="enrolled",
        id_column="subject",
    )
    dt = model.fit(df, random_seed=4, **FAST)
    assert list(dt.posterior["term"].values) == ["dose_mg", "arm"]
    assert dt.posterior["center"].values[0] == "site-00"
    assert inside(dt, "beta", 0.03, term="dose_mg")
    assert inside(dt, "beta", -0.5, term="arm")
    assert inside(dt, "shape", 1.3)
    assert "entry" in dt.constant_data


def test_a_users_table_keeps_its_own_coding_of_registry_column_names(registry_small):
    """The registry's level rules hold for registry endpoints only (DESIGN.md section 5)."""
    df = clustered_table(n=200, random_seed=4).rename(columns={"arm": "sex"})
    model = bs.HierarchicalWeibull(
        time="followup_years", event="died", cluster="site", terms=["sex", "dose_mg"]
    )
    model.prepare(df, learn=True)
    assert list(model.design_.labels) == ["sex", "dose_mg"]  # binary 0/1, as coded
    registry = registry_small.assign(sex=(registry_small["sex"] == "male").astype(int))
    with pytest.raises(bs.RegistryError, match="column 'sex': values must be one of"):
        bs.HierarchicalWeibull("OS", terms=["sex"]).prepare(registry, learn=True)


def test_matches_lifelines_maximum_likelihood_without_clusters():
    lifelines = pytest.importorskip("lifelines")
    df = clustered_table(n=3000, sd=0.0, random_seed=9)
    model = bs.HierarchicalWeibull(
        time="followup_years",
        event="died",
        cluster=None,
        terms=["dose_mg", "arm"],
        id_column="subject",
    )
    dt = model.fit(df, random_seed=9, **FAST)
    assert "center_sd" not in dt.posterior
    aft = lifelines.WeibullAFTFitter().fit(
        df[["followup_years", "died", "dose_mg", "arm"]], "followup_years", "died"
    )
    lam = aft.params_["lambda_"]
    coef = np.array([lam["Intercept"], lam["dose_mg"], lam["arm"]])
    ph, shape = weibull.from_survreg(coef, np.exp(-aft.params_["rho_"]["Intercept"]))
    post = dt.posterior
    for value, var, sel in [
        (ph[0], "intercept", {}),
        (ph[1], "beta", {"term": "dose_mg"}),
        (ph[2], "beta", {"term": "arm"}),
        (shape, "shape", {}),
    ]:
        draws = post[var].sel(**sel)
        assert abs(float(draws.mean()) - value) < 0.25 * float(draws.std()), var


def test_exponential_baseline_has_no_shape():
    df = clustered_table(n=500, shape=1.0, random_seed=2)
    model = bs.HierarchicalWeibull(
        time="followup_years",
        event="died",
        cluster="site",
        terms=["dose_mg", "arm"],
        baseline="exponential",
    )
    dt = model.fit(df, random_seed=2, **FAST)
    assert "shape" not in dt.posterior
    assert inside(dt, "beta", -0.5, term="arm")


# -- samplers and compilation ------------------------------------------------------------
@pytest.mark.parametrize("sampler", ["pymc", "numpyro"])
def test_samplers_agree_with_nutpie(sampler):
    df = clustered_table(n=300, random_seed=1)
    kw = dict(time="followup_years", event="died", cluster="site", terms=["dose_mg", "arm"])
    ref = bs.HierarchicalWeibull(**kw).fit(
        df, random_seed=1, draws=500, tune=500, chains=2, progressbar=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # jax/numpyro internals
        other = bs.HierarchicalWeibull(**kw).fit(
            df, random_seed=1, draws=500, tune=500, chains=2, progressbar=False, sampler=sampler
        )
    assert other.attrs["sampler"] == sampler
    for var in ("intercept", "shape", "beta", "center_sd"):
        a, b = ref.posterior[var], other.posterior[var]
        sd = a.std(("chain", "draw"))
        diff = abs(a.mean(("chain", "draw")) - b.mean(("chain", "draw")))
        assert (diff < 0.3 * sd).all(), var


def test_refits_reuse_the_compiled_model(registry_small, os_model_and_fit, lrfs_model_and_fit):
    before = sampling.COMPILATIONS["nutpie"]
    # New data of the same structure (another endpoint, the same centres and terms) ...
    bs.HierarchicalWeibull("RFS").fit(registry_small, random_seed=3, **FAST)
    # ... and other prior hyperparameters of the same families.
    sceptical = {"beta:expert_center": bs.Prior("Normal", mu=0.0, sigma=0.1)}
    dt = bs.HierarchicalWeibull("OS", priors=sceptical).fit(registry_small, random_seed=3, **FAST)
    assert sampling.COMPILATIONS["nutpie"] == before
    # The new hyperparameters were used: the sceptical prior shrinks the effect to 0.
    _, free = os_model_and_fit
    shrunk = abs(float(dt.posterior["beta"].sel(term="expert_center").mean()))
    free_mean = abs(float(free.posterior["beta"].sel(term="expert_center").mean()))
    assert shrunk < free_mean
    # A new structure compiles once.
    bs.HierarchicalWeibull("OS", baseline="exponential").fit(registry_small, random_seed=3, **FAST)
    assert sampling.COMPILATIONS["nutpie"] == before + 1


def test_same_seed_same_posterior(registry_small, os_model_and_fit):
    _, dt = os_model_and_fit
    again = bs.HierarchicalWeibull("OS").fit(registry_small, random_seed=1, **FAST)
    np.testing.assert_array_equal(again.posterior["beta"], dt.posterior["beta"])


# -- priors --------------------------------------------------------------------------------
def test_prior_predictive_median_survival_is_plausible(registry_small):
    model = bs.HierarchicalWeibull("OS")
    prior = model.sample_prior(registry_small, draws=4000, random_seed=1)["prior"]
    mean_x = model.design.mean  # the average patient
    rng = np.random.default_rng(0)
    u_new = rng.normal(0, 1, 4000) * prior["center_sd"].to_numpy().ravel()
    eta = prior["intercept"].to_numpy().ravel() + prior["beta"].to_numpy()[0] @ mean_x + u_new
    med = weibull.median(eta, prior["shape"].to_numpy().ravel())
    lo, hi = np.quantile(med, [0.025, 0.975])
    week, century = 7 / 30.4375, 100 * 12
    assert week < lo < 12, lo
    assert 60 < hi < century, hi


def test_vague_bugs_priors_initialise_and_sample(registry_small):
    vague = {
        "intercept": bs.Prior("Normal", mu=0, sigma=100),
        "beta": bs.Prior("Normal", mu=0, sigma=100),
        "shape": bs.Prior("Exponential", lam=0.001),
        "center_sd": bs.Prior("Gamma", alpha=0.001, beta=0.001, on="precision"),
    }
    model = bs.HierarchicalWeibull("OS", priors=vague)
    pm_model = model.build_model(registry_small)
    point = pm_model.initial_point()
    assert np.isfinite(pm_model.compile_logp()(point))
    assert np.isfinite(pm_model.compile_dlogp()(point)).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplerWarning)
        dt = model.fit(registry_small, random_seed=5, **FAST)
    assert np.isfinite(dt.posterior["beta"]).all()
    assert 0.5 < float(dt.posterior["shape"].mean()) < 2


# -- input errors -----------------------------------------------------------------------
def test_missing_value_in_a_term_names_column_and_row(registry_small):
    df = registry_small.copy()
    df.loc[3, "age"] = np.nan
    with pytest.raises(bs.RegistryError, match=r"column 'age'.*P000004"):
        bs.HierarchicalWeibull("OS").fit(df, **FAST)


def test_expert_flag_varying_within_a_centre_is_an_error(registry_small):
    df = registry_small.copy()
    big = df.center_id.value_counts().index[0]
    row = df.index[df.center_id == big][0]
    df.loc[row, "expert_center"] = not df.loc[row, "expert_center"]
    with pytest.raises(bs.RegistryError, match=r"expert_center.*constant within"):
        bs.HierarchicalWeibull("OS").prepare(df, learn=True)


def test_zero_times_are_kept_with_a_warning_naming_them(registry_small):
    df = registry_small.copy()
    rows = [0, 5]  # die on the day of surgery, no relapse
    for col in ("local_relapse_date", "distant_relapse_date"):
        df.loc[rows, col] = pd.NaT
    df.loc[rows, "death_date"] = df.loc[rows, "surgery_date"]
    df.loc[rows, "last_followup_date"] = df.loc[rows, "surgery_date"]
    df = bs.derive_endpoints(df)
    assert (df.loc[rows, "os_months"] == 0).all()
    model = bs.HierarchicalWeibull("OS")
    with pytest.warns(bs.ZeroTimeWarning, match=r"2 patients.*P000001, P000006"):
        prepared = model.prepare(df, learn=True)
    assert prepared.time[0] == pytest.approx(0.5 / 30.4375)
    assert len(prepared.time) == len(df)
    with pytest.raises(bs.RegistryError, match="must be > 0"):
        bs.HierarchicalWeibull("OS", zero_time=None).prepare(df, learn=True)


def test_the_users_frame_is_not_modified(registry_small):
    df = registry_small.copy(deep=True)
    bs.HierarchicalWeibull("OS").prepare(df, learn=True)
    pd.testing.assert_frame_equal(df, registry_small)


def test_registry_without_endpoint_columns_is_derived_from_dates(registry_small):
    dates_only = registry_small.drop(
        columns=["os_months", "os_event", "lrfs_months", "lrfs_event", "rfs_months", "rfs_event"]
    )
    prepared = bs.HierarchicalWeibull("OS").prepare(dates_only, learn=True)
    np.testing.assert_allclose(prepared.event, registry_small.os_event)


def test_model_spec_round_trips():
    model = bs.HierarchicalWeibull(
        "LRFS",
        priors={"beta:expert_center": {"dist": "Normal", "mu": 0, "sigma": 0.3}},
        effect_modifier="margin",
    )
    again = bs.HierarchicalWeibull.from_dict(model.to_dict())
    assert again.to_dict() == model.to_dict()
    with pytest.raises(ValueError, match="unknown model specification keys"):
        bs.HierarchicalWeibull.from_dict({**model.to_dict(), "shapes": 2})


def test_from_datatree_restores_the_fitted_model(os_model_and_fit, registry_small):
    model, dt = os_model_and_fit
    again = bs.HierarchicalWeibull.from_datatree(dt)
    assert again.to_dict() == model.to_dict()
    assert again.design.to_dict() == model.design.to_dict()
    np.testing.assert_array_equal(again.fit_reference.center_ids, model.fit_reference.center_ids)
    ours = again.prepare(registry_small.head(50))
    theirs = model.prepare(registry_small.head(50))
    np.testing.assert_array_equal(ours.arrays["X"], theirs.arrays["X"])
    np.testing.assert_array_equal(ours.center_index, theirs.center_index)
    with pytest.raises(RuntimeError, match="not been fitted"):
        _ = bs.HierarchicalWeibull("OS").fit_reference


def test_a_fixed_reference_time_is_used_and_kept(registry_small):
    model = bs.HierarchicalWeibull("OS", t_ref=24.0)
    assert model.prepare(registry_small, learn=True).t_ref == 24.0
    assert bs.HierarchicalWeibull.from_dict(model.to_dict()).t_ref == 24.0
