"""Power-scaling sensitivity: the log prior (against PyMC's own model), psense verdicts."""

import json

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr
from conftest import FAST

import bayes_sarcoma as bs
from bayes_sarcoma.checks.power_scaling import (
    FAMILIES,
    TopLevelPriors,
    log_prior,
    power_scaling,
    scipy_distribution,
)
from bayes_sarcoma.data.design import Design
from bayes_sarcoma.model.posterior import user_scale_posterior
from bayes_sarcoma.model.priors import Prior
from bayes_sarcoma.model.specs import load_prior_set

EXAMPLES = {
    "Normal": (dict(mu=0.3, sigma=1.7), [-2.0, 0.1, 4.0]),
    "StudentT": (dict(nu=3.0, mu=-0.5, sigma=0.8), [-2.0, 0.1, 4.0]),
    "Cauchy": (dict(alpha=0.2, beta=1.5), [-2.0, 0.1, 4.0]),
    "Laplace": (dict(mu=0.1, b=0.7), [-2.0, 0.1, 4.0]),
    "Logistic": (dict(mu=-0.2, s=0.9), [-2.0, 0.1, 4.0]),
    "HalfNormal": (dict(sigma=0.5), [0.01, 0.4, 2.0]),
    "HalfStudentT": (dict(nu=4.0, sigma=0.6), [0.01, 0.4, 2.0]),
    "HalfCauchy": (dict(beta=1.2), [0.01, 0.4, 2.0]),
    "Exponential": (dict(lam=0.001), [0.01, 0.4, 2000.0]),
    "Gamma": (dict(alpha=0.001, beta=0.001), [1e-8, 0.4, 2.0]),
    "InverseGamma": (dict(alpha=2.5, beta=1.3), [0.01, 0.4, 2.0]),
    "LogNormal": (dict(mu=0.0, sigma=0.35), [0.2, 1.0, 3.0]),
    "Uniform": (dict(lower=-1.0, upper=3.0), [-0.5, 0.1, 2.9]),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_scipy_densities_match_pymc(family):
    params, values = EXAMPLES[family]
    ours = scipy_distribution(Prior(family, **params)).logpdf(np.array(values))
    theirs = pm.logp(getattr(pm, family).dist(**params), np.array(values)).eval()
    np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("family", ["HalfStudentT", "Gamma", "LogNormal", "StudentT"])
def test_scipy_draws_match_pymc_draws(family):
    from scipy import stats

    params, _ = EXAMPLES[family]
    if family == "Gamma":
        params = dict(alpha=2.0, beta=3.0)
    ours = scipy_distribution(Prior(family, **params)).rvs(size=4000, random_state=1)
    theirs = pm.draw(getattr(pm, family).dist(**params), draws=4000, random_seed=2)
    assert stats.ks_2samp(ours, theirs).pvalue > 1e-3


def _pymc_prior_logp(pm_model, dt, draw_index):
    """The PyMC model's own log prior of the top-level parameters at some draws.

    The test maps the user-scale draws back to the sampling variables itself (its own
    formulas, from the design and t_ref), then asks PyMC for the log density of each
    top-level free variable without Jacobians.
    """
    design = Design.from_dict(json.loads(dt.attrs["design"]))
    t_ref = float(dt.attrs["t_ref"])
    post = dt.posterior.dataset.stack(sample=("chain", "draw")).isel(sample=draw_index)
    top = [rv for rv in pm_model.free_RVs if rv.name != "center_raw"]
    fn = pm_model.compile_logp(vars=top, jacobian=False, sum=False)
    names = [rv.name for rv in top]
    out = []
    for k in range(len(draw_index)):
        beta = post["beta"].isel(sample=k).to_numpy()
        shape = float(post["shape"].isel(sample=k))
        sd = float(post["center_sd"].isel(sample=k))
        point = pm_model.initial_point()
        point["intercept_c"] = np.array(
            float(post["intercept"].isel(sample=k)) + shape * np.log(t_ref) + beta @ design.mean
        )
        point["beta_std_Normal"] = beta * design.scale
        point["shape_log__"] = np.array(np.log(shape))
        for name in point:
            if name.startswith("center_sd_precision"):
                point[name] = np.array(np.log(sd**-2))
            elif name.startswith("center_sd"):
                point[name] = np.array(np.log(sd))
        out.append(dict(zip(names, fn(point), strict=True)))
    return out


def _compare(ours, theirs, draw_index):
    flat = ours.stack(sample=("chain", "draw")).isel(sample=draw_index)
    for k, pymc_terms in enumerate(theirs):
        for name, value in pymc_terms.items():
            slot = {"intercept_c": "intercept", "beta_std_Normal": "beta"}.get(name, name)
            slot = "center_sd" if slot.startswith("center_sd") else slot
            np.testing.assert_allclose(
                flat[slot].isel(sample=k).to_numpy(), value, rtol=1e-7, atol=1e-8, err_msg=name
            )


def test_log_prior_equals_the_pymc_models_prior(os_model_and_fit, registry_small):
    model, dt = os_model_and_fit
    lp = log_prior(dt)
    assert set(lp.data_vars) == {"intercept", "shape", "beta", "center_sd"}  # no centre effects
    assert lp["beta"].dims == ("chain", "draw", "term")
    draws = [0, 17, 333]
    _compare(lp, _pymc_prior_logp(model.build_model(registry_small), dt, draws), draws)


def test_log_prior_of_vague_bugs_priors_uses_the_precision_scale(os_model_and_fit, registry_small):
    _, dt = os_model_and_fit
    vague = bs.HierarchicalWeibull("OS", priors=load_prior_set("vague").priors)
    fake = dt.copy()
    fake.attrs = {**dt.attrs, "model": json.dumps(vague.to_dict())}
    lp = log_prior(fake)
    pm_model = vague.build_model(registry_small)
    assert "center_sd_precision" in [rv.name for rv in pm_model.free_RVs]
    draws = [1, 250]
    _compare(lp, _pymc_prior_logp(pm_model, fake, draws), draws)


def test_draws_map_back_to_the_sampling_scale(os_model_and_fit):
    model, dt = os_model_and_fit
    top = TopLevelPriors.from_datatree(dt)
    internal = top.draw(50, np.random.default_rng(3), slots=["center_sd"])
    internal["center_raw"] = np.zeros((1, 50, len(model.prepared_.center_ids)))
    post = user_scale_posterior(internal, model.design, model.prepared_)
    ds = xr.Dataset(
        {
            "intercept": (("chain", "draw"), post["intercept"]),
            "shape": (("chain", "draw"), post["shape"]),
            "beta": (("chain", "draw", "term"), post["beta"]),
            "center_sd": (("chain", "draw"), post["center_sd"]),
        },
        coords={"term": model.design.labels},
    )
    back = top.sampling_scale(ds)
    np.testing.assert_allclose(back["intercept"], internal["intercept_c"], rtol=1e-10)
    np.testing.assert_allclose(back["beta"], internal["beta_std"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(back["shape"], internal["shape"])


# -- the power-scaling verdicts ----------------------------------------------------------------
def test_weak_default_priors_are_not_flagged(os_model_and_fit):
    _, dt = os_model_and_fit
    ps = power_scaling(dt, var_names=["beta", "shape"])
    table = ps.table
    assert "beta[expert_center]" in table.index
    assert np.isfinite(table[["prior", "likelihood"]].to_numpy()).all()
    assert table.loc["beta[expert_center]", "prior"] < 0.05
    assert "beta[expert_center]" not in ps.sensitive
    assert "Not prior-sensitive" in ps.statement()


def test_a_conflicting_expert_prior_is_flagged(registry_small, os_model_and_fit):
    strong = {"beta:expert_center": Prior("Normal", mu=1.0, sigma=0.05)}
    model = bs.HierarchicalWeibull("OS", priors=strong)
    dt = model.fit(registry_small, random_seed=4, **FAST)  # same structure: no compilation
    q = xr.Dataset({"log_hr_expert": dt.posterior["beta"].sel(term="expert_center", drop=True)})
    ps = power_scaling(dt, quantities=q)
    assert ps.sensitive == ["log_hr_expert"]
    assert ps.table.loc["log_hr_expert", "diagnosis"] == "potential prior-data conflict"
    assert "log_hr_expert: prior-sensitive" in ps.statement()
    # Scaling the expert prior alone moves the expert effect, not the age effect.
    alone = power_scaling(
        dt,
        var_names=["beta"],
        prior_var_names=["beta"],
        prior_coords={"term": ["expert_center"]},
    ).table
    assert alone.loc["beta[expert_center]", "prior"] > 5 * alone.loc["beta[age]", "prior"]
    # The weak default prior moves it far less.
    _, free = os_model_and_fit
    free_q = xr.Dataset(
        {"log_hr_expert": free.posterior["beta"].sel(term="expert_center", drop=True)}
    )
    weak = power_scaling(free, quantities=free_q).table.loc["log_hr_expert", "prior"]
    assert ps.table.loc["log_hr_expert", "prior"] > 3 * weak


def test_power_scaling_computes_a_log_likelihood_that_was_not_stored(os_model_and_fit):
    _, dt = os_model_and_fit
    without = dt.copy()
    del without["log_likelihood"]
    stored = power_scaling(dt, var_names=["center_sd", "shape"]).table
    computed = power_scaling(without, var_names=["center_sd", "shape"]).table
    pd.testing.assert_frame_equal(stored, computed)


# -- prior-data conflict on small data (DESIGN.md section 3.3) ---------------------------------
def _arm_sensitivity(dt, **kw):
    q = xr.Dataset({"log_hr_arm": dt.posterior["beta"].sel(term="arm", drop=True)})
    return power_scaling(dt, quantities=q, **kw).table.loc["log_hr_arm"]


def test_power_scaling_flags_a_conflicting_prior_on_small_data(small_binary_fits):
    """100 patients, 50 centres, true log HR -2: scaling the arm's own prior flags the
    sceptical Normal(0, 0.2) and the former default Normal(0, 1), not the new default."""
    _, fits = small_binary_fits
    alone = dict(prior_var_names=["beta"], prior_coords={"term": ["arm"]})
    sceptical = _arm_sensitivity(fits["sceptical"], **alone)
    old = _arm_sensitivity(fits["old default"], **alone)
    new = _arm_sensitivity(fits["default"], **alone)
    for row in (sceptical, old):
        assert row["prior_sensitive"]
        assert row["diagnosis"] == "potential prior-data conflict"
    assert not new["prior_sensitive"]
    assert sceptical["prior"] > old["prior"] > 2 * new["prior"]
    # All top-level priors scaled together: the default still moves it less than Normal(0, 1).
    assert (
        _arm_sensitivity(fits["default"])["prior"] < _arm_sensitivity(fits["old default"])["prior"]
    )
