"""A treatment that varies within centres: a randomised multi-centre trial.

The trial is simulated with a known truth (treatment randomised 1:1 within each centre, a
log hazard ratio of -0.5, Weibull baseline, a normal random intercept per centre). The fit
must recover the treatment's log-HR, standardized survival by arm must cover the exact
truth (computed here by numerical integration over the centre-effect distribution), the
integrated engine's log-density must equal per-centre numerical integration with the
treatment inside every ``eta_i``, an ``effect_modifier`` fit must work, and centre profiles
must not take the treatment for a centre attribute. A term declared centre-level is still
refused when it varies within a centre.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import FAST
from scipy import integrate, stats

import bayes_sarcoma as bs
from bayes_sarcoma.math import weibull
from bayes_sarcoma.predict import centers, effects, standardize
from bayes_sarcoma.predict import survival as predict

#: The trial's truth: months, Weibull PH, log hazard ratios per unit of each term.
TRUTH = {
    "intercept": -4.8,  # median about 30 months for a control patient aged 60, stage I
    "shape": 1.3,
    "center_sd": 0.5,
    "beta": {"arm": -0.5, "age": 0.02, "stage[II]": 0.3, "stage[III]": 0.7},
}
TERMS = ["arm", "age", "stage"]
TIMES = [6.0, 18.0, 36.0]
CI = 0.94


def simulate_trial(n_centers: int = 30, per_center: int = 20, random_seed: int = 0):
    """Return a randomised multi-centre trial (1:1 within every centre) and its centre effects.

    Event times are drawn exactly from the Weibull PH model with the centre's effect;
    censoring is administrative, uniform between 12 and 60 months of follow-up.
    """
    rng = np.random.default_rng(random_seed)
    n = n_centers * per_center
    center = np.repeat(np.arange(n_centers), per_center)
    arm = np.concatenate([rng.permutation(np.arange(per_center) % 2) for _ in range(n_centers)])
    age = rng.normal(60.0, 10.0, n).round(1)
    stage = rng.choice(["I", "II", "III"], n, p=[0.4, 0.35, 0.25])
    u = rng.normal(0.0, TRUTH["center_sd"], n_centers)
    eta = TRUTH["intercept"] + linear_terms(arm, age, stage) + u[center]
    t_event = (rng.exponential(1.0, n) * np.exp(-eta)) ** (1.0 / TRUTH["shape"])
    follow_up = rng.uniform(12.0, 60.0, n)
    df = pd.DataFrame(
        {
            "subject": [f"T{i:04d}" for i in range(n)],
            "site": [f"site-{c:02d}" for c in center],
            "arm": arm,
            "age": age,
            "stage": stage,
            "months": np.minimum(t_event, follow_up),
            "died": (t_event <= follow_up).astype(int),
        }
    )
    return df, u


def linear_terms(arm, age, stage) -> np.ndarray:
    """Return ``x_i . beta`` of the true model (without intercept and centre)."""
    b = TRUTH["beta"]
    stage = np.asarray(stage)
    return (
        b["arm"] * np.asarray(arm)
        + b["age"] * np.asarray(age)
        + b["stage[II]"] * (stage == "II")
        + b["stage[III]"] * (stage == "III")
    )


def true_standardized(df: pd.DataFrame, times, arm: int) -> np.ndarray:
    """Return the exact standardized survival of ``df`` with every patient in ``arm``.

    ``mean_i E_u[S(t | x_i, arm, u)]`` over a new centre's ``u ~ Normal(0, center_sd)``,
    integrated with scipy's adaptive quadrature (independent of the package's
    Gauss-Hermite rule and Taylor-binned patient mixture).
    """
    eta = TRUTH["intercept"] + linear_terms(np.full(len(df), arm), df["age"], df["stage"])
    t = np.asarray(times, dtype=float)
    sd = TRUTH["center_sd"]

    def integrand(u):
        h = np.exp(eta[:, None] + u) * t[None, :] ** TRUTH["shape"]
        return np.exp(-h).mean(axis=0) * stats.norm.pdf(u, 0.0, sd)

    value, _ = integrate.quad_vec(integrand, -12 * sd, 12 * sd, epsabs=1e-12, epsrel=1e-10)
    return value


MODEL = dict(
    time="months",
    event="died",
    cluster="site",
    terms=TERMS,
    id_column="subject",
    treatment="arm",
    reference={"stage": "I"},
)


@pytest.fixture(scope="module")
def trial():
    return simulate_trial()[0]


@pytest.fixture(scope="module")
def trial_fit(trial):
    model = bs.HierarchicalWeibull(**MODEL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplerWarning)
        dt = model.fit(trial, random_seed=3, **FAST)
    return model, dt


@pytest.fixture(scope="module")
def modifier_fit(trial):
    model = bs.HierarchicalWeibull(**MODEL, effect_modifier="stage")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplerWarning)
        dt = model.fit(trial, random_seed=4, **FAST)
    return model, dt


def test_the_simulated_trial_is_randomised_within_every_centre(trial):
    by_site = trial.groupby("site")["arm"].agg(["mean", "nunique"])
    assert (by_site["nunique"] == 2).all()
    np.testing.assert_array_equal(by_site["mean"], 0.5)


def test_a_treatment_varying_within_centres_is_a_patient_level_term(trial):
    model = bs.HierarchicalWeibull(**MODEL)
    assert model.center_level == ()  # nothing declared: no check refuses the trial
    prepared = model.prepare(trial, learn=True)
    arm = model.design.labels.index("arm")
    assert arm not in prepared.center_terms
    assert prepared.center_terms == ()  # age and stage vary within centres too


def _integrated_log_likelihood_by_quad(prepared, intercept, shape, beta, sd):
    """The integrated log-likelihood by scipy's quad, every term on the patient side.

    Independent of the model's split into patient- and centre-level terms: ``eta_i`` holds
    all of ``x_i . beta`` and the centre effect is ``Normal(intercept, sd)``.
    """
    arrays = prepared.arrays
    eta = arrays["X"] @ beta
    time = np.exp(arrays["log_t"])
    total = 0.0
    for c in range(len(prepared.center_ids)):
        rows = prepared.center_index == c

        def log_lik(u, rows=rows):
            return weibull.log_likelihood(time[rows], arrays["event"][rows], eta[rows] + u, shape)

        grid = np.linspace(-6, 6, 49)
        top = max(log_lik(intercept + sd * v).sum() - 0.5 * v * v for v in grid)

        def integrand(v, log_lik=log_lik, top=top):
            return np.exp(log_lik(intercept + sd * v).sum() - top - 0.5 * v * v) / np.sqrt(
                2 * np.pi
            )

        value, _ = integrate.quad(integrand, -12, 12, epsabs=0, epsrel=1e-12, limit=200)
        total += np.log(value) + top
    return total


def test_the_integrated_engine_sums_the_treatment_into_each_centres_hazard(trial):
    """``A_c`` holds ``exp(eta_i)`` with the patient-level treatment in ``eta_i``."""
    model = bs.HierarchicalWeibull(**MODEL)
    pm_model = model.build_model(trial)
    potential = pm_model.compile_logp(vars=pm_model.potentials, jacobian=False)
    rng = np.random.default_rng(8)
    n_terms = len(model.design.labels)
    beta_name = next(rv.name for rv in pm_model.free_RVs if rv.name.startswith("beta_std"))
    for _ in range(2):
        intercept, shape = rng.normal(-0.5, 0.2), rng.uniform(0.9, 1.5)
        beta, sd = rng.normal(0, 0.4, n_terms), rng.uniform(0.1, 0.8)
        beta[model.design.labels.index("arm")] = -0.9  # a large treatment effect
        point = {
            "intercept_c": intercept,
            "shape_log__": np.log(shape),
            beta_name: beta,
            "center_sd_log__": np.log(sd),
        }
        expected = _integrated_log_likelihood_by_quad(model.prepared_, intercept, shape, beta, sd)
        assert float(potential(point)) == pytest.approx(expected, abs=1e-7)


def test_the_fit_recovers_the_treatment_log_hazard_ratio(trial_fit):
    _, dt = trial_fit
    assert dt.attrs["engine"] == "integrated"
    hr = effects.hazard_ratios(dt, ci_prob=CI)
    for term in ("arm", "age", "stage[II]", "stage[III]"):
        lo, hi = np.log(hr.loc[term, ["lower", "upper"]].astype(float))
        assert lo <= TRUTH["beta"][term] <= hi, (term, lo, hi)
    arm = np.log(hr.loc["arm", ["lower", "upper"]].astype(float))
    assert arm.iloc[1] < 0  # the trial shows a benefit
    sd = dt.posterior["center_sd"].to_numpy().ravel()
    assert np.quantile(sd, (1 - CI) / 2) <= TRUTH["center_sd"] <= np.quantile(sd, (1 + CI) / 2)


def test_standardized_survival_by_arm_covers_the_exact_truth(trial_fit, trial):
    _, dt = trial_fit
    std = standardize.standardized_survival(dt, trial, TIMES)
    assert std.attrs["treatment"] == "arm"
    lo_q, hi_q = (1 - CI) / 2, (1 + CI) / 2
    for name, arm in (("treated", 1), ("control", 0)):
        truth = true_standardized(trial, TIMES, arm)
        lo, hi = std[name].quantile([lo_q, hi_q], dim=("chain", "draw")).to_numpy()
        assert np.all((lo <= truth) & (truth <= hi)), (name, lo, truth, hi)
    diff = true_standardized(trial, TIMES, 1) - true_standardized(trial, TIMES, 0)
    lo, hi = std["difference"].quantile([lo_q, hi_q], dim=("chain", "draw")).to_numpy()
    assert np.all((lo <= diff) & (diff <= hi))
    assert np.all(diff > 0.02)  # the truth differs between arms, so the check has teeth


def test_the_truth_by_quadrature_matches_monte_carlo(trial):
    """The independent truth, checked itself: a big Monte Carlo over centres agrees."""
    rng = np.random.default_rng(0)
    u = rng.normal(0.0, TRUTH["center_sd"], 20_000)
    eta = TRUTH["intercept"] + linear_terms(np.ones(len(trial)), trial["age"], trial["stage"])
    h = np.exp(eta[:, None] + u[None, :]) * TIMES[1] ** TRUTH["shape"]
    mc = np.exp(-h).mean()
    assert true_standardized(trial, [TIMES[1]], 1)[0] == pytest.approx(mc, abs=3e-3)


def test_an_effect_modifier_of_a_patient_level_treatment(modifier_fit, trial):
    _, dt = modifier_fit
    by = effects.effect_by_modifier(dt, ci_prob=CI)
    assert list(by.index) == ["I", "II", "III", "common"]
    levels = ["I", "II", "III"]
    assert (by.loc[levels, "n_treated"] == trial.groupby("stage")["arm"].sum()[levels]).all()
    log_hr = np.log(by[["lower", "upper"]].astype(float))
    truth = TRUTH["beta"]["arm"]  # no true interaction: every level has the same effect
    assert ((log_hr["lower"] <= truth) & (truth <= log_hr["upper"])).all(), log_hr
    # Standardization switches the interaction with the treatment: the brute-force mean
    # of every patient's marginal survival with arm set to 1 (and 0) is the same.
    std = standardize.standardized_survival(dt, trial, TIMES, num_draws=60)
    for name, arm in (("treated", 1), ("control", 0)):
        curves = predict.predict_survival(dt, trial.assign(arm=arm), TIMES, num_draws=60)
        np.testing.assert_allclose(std[name], curves.mean("patient"), atol=1e-9)


def test_centre_profiles_treat_the_trial_arm_as_case_mix(trial_fit, trial):
    _, dt = trial_fit
    assert centers.center_level_treatment(dt) is None
    profile = centers.center_profile(dt, ci_prob=CI)
    assert profile.attrs["treatment"] is None
    assert "arm" not in profile.columns  # no centre is "treated"
    assert len(profile) == trial["site"].nunique()
    # E_c includes the treatment: the expected events use every patient's own arm.
    with_arm = centers.expected_events(dt)
    without = centers.expected_events(dt, without=["arm"])
    treated = trial["arm"].to_numpy() == 1
    assert np.all(with_arm[treated] < without[treated])
    np.testing.assert_allclose(with_arm[~treated], without[~treated])
    with pytest.raises(ValueError, match=r"arm varies within centres.*effect='center'"):
        centers.center_profile(dt, effect="total")
    centers.plot_caterpillar(profile)
    centers.plot_funnel(profile)


def test_a_declared_centre_level_term_that_varies_within_a_centre_is_refused(trial):
    with pytest.raises(bs.RegistryError) as err:
        bs.HierarchicalWeibull(**MODEL, center_level=["arm"]).prepare(trial, learn=True)
    text = str(err.value)
    assert "arm is a property of the site and must be constant within each one" in text
    assert "it varies within 30 of them" in text
    assert "center_level" in text  # the hint says how to declare it patient-level
    with pytest.raises(ValueError, match=r"center_level=\['dose'\] must be among the terms"):
        bs.HierarchicalWeibull(**MODEL, center_level=["dose"])


def test_the_registry_expert_flag_stays_declared_centre_level(os_model_and_fit):
    model, dt = os_model_and_fit
    assert model.center_level == ("expert_center",)
    assert centers.center_level_treatment(dt) == "expert_center"
    spec = model.to_dict()
    del spec["center_level"]  # a specification saved before center_level existed
    assert bs.HierarchicalWeibull.from_dict(spec).center_level == ("expert_center",)
