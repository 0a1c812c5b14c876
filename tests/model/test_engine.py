"""The integrated engine: its log-density, its agreement with the sampled engine, its draws."""

from __future__ import annotations

import warnings

import arviz_stats as azs
import numpy as np
import pytest
from conftest import FAST
from scipy import integrate

import bayes_sarcoma as bs
from bayes_sarcoma.checks.compare import loo
from bayes_sarcoma.checks.power_scaling import power_scaling
from bayes_sarcoma.inference.diagnose import diagnose
from bayes_sarcoma.math import weibull
from bayes_sarcoma.model import hierarchical
from bayes_sarcoma.model.hierarchical import SamplerWarning
from bayes_sarcoma.model.io import recompute_log_likelihood

GLOBALS = ["intercept", "shape", "center_sd", "beta"]


@pytest.fixture(scope="module")
def small_registry():
    return bs.simulate_registry(400, random_seed=3)


def _integrated_potential_by_quad(prepared, intercept, shape, beta, sd):
    """The integrated log-likelihood, centre by centre with scipy's quad (internal scale)."""
    arrays = prepared.arrays
    patient = [j for j in range(beta.size) if j not in prepared.center_terms]
    eta = arrays["X"][:, patient] @ beta[patient]
    mean = intercept + arrays["X_center"] @ beta[list(prepared.center_terms)]
    time = np.exp(arrays["log_t"])
    total = 0.0
    for c in range(len(prepared.center_ids)):
        rows = prepared.center_index == c

        def log_lik(u, rows=rows):
            return weibull.log_likelihood(time[rows], arrays["event"][rows], eta[rows] + u, shape)

        top = max(log_lik(mean[c] + sd * v).sum() - 0.5 * v * v for v in np.linspace(-6, 6, 49))

        def integrand(v, c=c, log_lik=log_lik, top=top):
            u = mean[c] + sd * v
            return np.exp(log_lik(u).sum() - top - 0.5 * v * v) / np.sqrt(2 * np.pi)

        value, _ = integrate.quad(integrand, -12, 12, epsabs=0, epsrel=1e-12, limit=200)
        total += np.log(value) + top
    return total


def test_integrated_log_density_equals_per_centre_numerical_integration(small_registry):
    model = bs.HierarchicalWeibull("OS")
    pm_model = model.build_model(small_registry)
    assert {rv.name for rv in pm_model.free_RVs} == {
        "intercept_c",
        "beta_std_Normal",
        "center_sd",
        "shape",
    }
    potential = pm_model.compile_logp(vars=pm_model.potentials, jacobian=False)
    rng = np.random.default_rng(4)
    n_terms = len(model.design.labels)
    for _ in range(2):
        intercept, shape = rng.normal(-1, 0.2), rng.uniform(0.8, 1.4)
        beta, sd = rng.normal(0, 0.3, n_terms), rng.uniform(0.05, 0.8)
        point = {
            "intercept_c": intercept,
            "shape_log__": np.log(shape),
            "beta_std_Normal": beta,
            "center_sd_log__": np.log(sd),
        }
        expected = _integrated_potential_by_quad(model.prepared_, intercept, shape, beta, sd)
        assert float(potential(point)) == pytest.approx(expected, abs=1e-7)


@pytest.fixture(scope="module")
def both_engines(small_registry):
    fits = {}
    for engine in ("integrated", "sampled"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SamplerWarning)
            fits[engine] = bs.HierarchicalWeibull("OS", engine=engine).fit(
                small_registry, random_seed=11, draws=600, tune=600, chains=2, progressbar=False
            )
    return fits


def test_engines_agree_on_every_global_parameter_within_monte_carlo_error(both_engines):
    a, b = both_engines["integrated"].posterior, both_engines["sampled"].posterior
    for name in GLOBALS:
        diff = a[name].mean(("chain", "draw")) - b[name].mean(("chain", "draw"))
        se = np.hypot(azs.mcse(a.dataset[[name]])[name], azs.mcse(b.dataset[[name]])[name])
        z = (diff / se).to_numpy().ravel()
        assert np.all(np.abs(z) < 4.5), (name, z)


def test_centre_effects_are_drawn_and_agree_with_the_sampled_engine(both_engines):
    a, b = both_engines["integrated"], both_engines["sampled"]
    ua = a.posterior["center_effect"].mean(("chain", "draw")).to_numpy()
    ub = b.posterior["center_effect"].mean(("chain", "draw")).to_numpy()
    assert a.posterior["center_effect"].dims == ("chain", "draw", "center")
    assert np.corrcoef(ua, ub)[0, 1] > 0.95
    sa = a.posterior["center_effect"].std(("chain", "draw")).to_numpy()
    sb = b.posterior["center_effect"].std(("chain", "draw")).to_numpy()
    assert np.median(sa / sb) == pytest.approx(1.0, abs=0.1)
    assert a.attrs["engine"] == "integrated"
    assert b.attrs["engine"] == "sampled"
    assert a.attrs["quadrature_error"] < 1e-8


def test_centre_effect_draws_are_reproducible_from_the_seed(small_registry):
    model = bs.HierarchicalWeibull("OS")
    kwargs = dict(random_seed=5, draws=100, tune=100, chains=2, progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplerWarning)
        first = model.fit(small_registry, **kwargs)
        second = model.fit(small_registry, **kwargs)
    np.testing.assert_array_equal(
        first.posterior["center_effect"].to_numpy(), second.posterior["center_effect"].to_numpy()
    )


def test_the_engine_is_checked_and_travels_with_the_specification():
    with pytest.raises(ValueError, match="engine='laplace'"):
        bs.HierarchicalWeibull("OS", engine="laplace")
    with pytest.raises(ValueError, match="quadrature_nodes=0"):
        bs.HierarchicalWeibull("OS", quadrature_nodes=0)
    spec = bs.HierarchicalWeibull("OS", engine="sampled", quadrature_nodes=21).to_dict()
    again = bs.HierarchicalWeibull.from_dict(spec)
    assert (again.engine, again.quadrature_nodes) == ("sampled", 21)


def test_the_1500_patient_registry_is_reliable_with_default_settings():
    """The issue's case: seed 21, OS, 4 x 1000 draws; the sampled engine diverged here."""
    data = bs.simulate_registry(1500, random_seed=21)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SamplerWarning)
        dt = bs.HierarchicalWeibull("OS").fit(data, random_seed=1, progressbar=False)
    assert int(dt.sample_stats["diverging"].sum()) == 0
    assert diagnose(dt).ok
    assert float(dt.sample_stats["n_steps"].mean()) < 12


def test_expert_by_margin_and_delayed_entry_run_integrated(small_registry):
    data = small_registry.assign(entry=np.minimum(2.0, small_registry["os_months"] / 2))
    model = bs.HierarchicalWeibull("OS", effect_modifier="margin", entry="entry")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplerWarning)
        dt = model.fit(data, random_seed=3, **FAST)
    assert model.structure_.integrated
    assert model.structure_.has_entry
    assert "treatment_hazard_ratio" in dt.posterior
    assert np.isfinite(dt.posterior["center_effect"]).all()
    assert np.isfinite(dt.log_likelihood["time"]).all()


def test_a_log_likelihood_too_large_for_the_budget_is_left_to_be_computed(
    small_registry, monkeypatch
):
    model = bs.HierarchicalWeibull("OS")
    with pytest.raises(ValueError, match="log_likelihood='yes'"):
        model.fit(small_registry, log_likelihood="yes")
    monkeypatch.setattr(hierarchical, "LOG_LIKELIHOOD_BUDGET", 1000.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplerWarning)
        dt = model.fit(small_registry, random_seed=2, **FAST)
    assert "log_likelihood" not in dt.children
    assert dt.attrs["log_likelihood"] == "on demand"
    ll = recompute_log_likelihood(dt)["time"]
    assert ll.shape == (2, 300, len(small_registry))
    assert np.isfinite(loo(dt).elpd)
    assert len(power_scaling(dt, var_names=["center_sd"]).table) == 1
