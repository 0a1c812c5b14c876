"""The Prior spec: validation, merging over defaults, slots and the compiled layout."""

import numpy as np
import pytest
from conftest import SMALL_PRIORS, fit_small
from registry_factory import small_binary_table

import bayes_sarcoma as bs
from bayes_sarcoma.model.priors import DEFAULT_PRIORS, PriorError, merge_priors, plan_priors


def test_prior_round_trips_and_checks_parameters():
    p = bs.Prior("StudentT", nu=3, mu=0, sigma=2.5)
    assert bs.Prior.from_dict(p.to_dict()) == p
    assert bs.Prior.from_dict({"dist": "Normal", "kwargs": {"mu": 1, "sigma": 2}}) == bs.Prior(
        "Normal", mu=1, sigma=2
    )
    with pytest.raises(PriorError, match="unknown distribution 'Norml'"):
        bs.Prior("Norml", mu=0, sigma=1)
    with pytest.raises(PriorError, match=r"missing \['sigma'\]"):
        bs.Prior("Normal", mu=0)
    with pytest.raises(PriorError, match="must be > 0"):
        bs.Prior("HalfNormal", sigma=-1)
    with pytest.raises(PriorError, match="numbers"):
        bs.Prior("Normal", mu="zero", sigma=1)


def test_merge_keeps_defaults_and_never_mutates_them():
    before = dict(DEFAULT_PRIORS)
    merged = merge_priors({"beta:expert_center": {"dist": "Normal", "mu": 0, "sigma": 0.2}})
    assert merged["beta:expert_center"] == bs.Prior("Normal", mu=0, sigma=0.2)
    assert merged["shape"] == DEFAULT_PRIORS["shape"]
    assert dict(DEFAULT_PRIORS) == before


@pytest.mark.parametrize(
    ("slot", "prior", "message"),
    [
        ("shapes", bs.Prior("Normal", mu=0, sigma=1), "unknown prior slot"),
        ("shape", bs.Prior("Normal", mu=0, sigma=1), "real support"),
        ("beta", bs.Prior("HalfNormal", sigma=1), "positive support"),
        ("beta", bs.Prior("Uniform", lower=-1, upper=1), "interval support"),
        ("intercept", bs.Prior("Normal", mu=0, sigma=1, on="precision"), "only for center_sd"),
    ],
)
def test_bad_slots_and_families_are_clear_errors(slot, prior, message):
    with pytest.raises(PriorError, match=message):
        merge_priors({slot: prior})


def test_pymc_extras_style_objects_are_accepted():
    class ExtrasPrior:  # the attributes pymc-extras' Prior exposes
        def __init__(self):
            self.distribution = "Normal"
            self.parameters = {"mu": 0.0, "sigma": 0.5}

    merged = merge_priors({"beta": ExtrasPrior()})
    assert merged["beta"] == bs.Prior("Normal", mu=0.0, sigma=0.5)


def test_term_priors_are_on_the_users_scale():
    priors = merge_priors({"beta:age": bs.Prior("Normal", mu=0.02, sigma=0.01)})
    plan = plan_priors(priors, ["expert_center", "age"], np.array([1.0, 15.0]))
    # age's coefficient is sampled per SD (15 years): its prior is rescaled exactly.
    np.testing.assert_allclose(plan.values["prior_beta_Normal_mu"], [0.0, 0.3])
    np.testing.assert_allclose(plan.values["prior_beta_Normal_sigma"], [2.5, 0.15])
    with pytest.raises(PriorError, match="unknown terms"):
        plan_priors(
            merge_priors({"beta:size": bs.Prior("Normal", mu=0, sigma=1)}), ["age"], np.ones(1)
        )


def test_families_decide_the_structure_values_do_not():
    labels, scales = ["a", "b"], np.ones(2)
    one = plan_priors(merge_priors({"beta:a": bs.Prior("Normal", mu=0, sigma=0.1)}), labels, scales)
    two = plan_priors(merge_priors({"beta:a": bs.Prior("Normal", mu=1, sigma=2)}), labels, scales)
    three = plan_priors(
        merge_priors({"beta:a": bs.Prior("StudentT", nu=3, mu=0, sigma=1)}), labels, scales
    )
    assert one.structure == two.structure
    assert one.structure != three.structure
    assert [fam for fam, _ in three.beta_groups] == ["Normal", "StudentT"]


def test_priors_pickle_for_dask_processes():
    import pickle

    p = bs.Prior("Gamma", alpha=0.001, beta=0.001, on="precision")
    assert pickle.loads(pickle.dumps(p)) == p


# -- small data speak (DESIGN.md section 3.3) ---------------------------------------------------
def test_defaults_are_rstanarms_autoscaled_normal():
    """Normal(0, 2.5) per SD of a continuous term and per unit of a binary or dummy term."""
    assert DEFAULT_PRIORS["beta"] == bs.Prior("Normal", mu=0, sigma=2.5)
    plan = plan_priors(merge_priors(None), ["arm", "age", "margin[R1]"], np.array([1, 15.7, 1]))
    np.testing.assert_allclose(plan.values["prior_beta_Normal_sigma"], [2.5, 2.5, 2.5])


def _gap(fits, name):
    """|posterior mean of the arm's log HR under ``name`` - under vague| / |under vague|."""
    mean = {k: float(dt.posterior["beta"].sel(term="arm").mean()) for k, dt in fits.items()}
    return abs(mean[name] - mean["vague"]) / abs(mean["vague"])


def test_small_data_speak_through_the_default_priors(small_binary_fits):
    """100 patients, 50 centres, true log HR -2: the default posterior mean is within 15% of
    the vague-prior one; the former Normal(0, 1) default was not (seed 0 is simply the first;
    the slow test below runs 20)."""
    data, fits = small_binary_fits
    assert data["site"].nunique() == 50
    assert len(data) == 100
    vague = float(fits["vague"].posterior["beta"].sel(term="arm").mean())
    assert -3.5 < vague < -1.5  # the likelihood's estimate, roughly -2
    assert _gap(fits, "default") <= 0.15
    assert _gap(fits, "old default") > 0.15


@pytest.mark.slow
def test_small_data_speak_on_twenty_data_sets():
    """Seeds 0-19, 4 chains: how often the default (and the former default) is within 15%.

    Measured: the default 17 of 20 (median gap 9.5%), Normal(0, 1) 2 of 20 (median 23.5%).
    The three misses are data sets where the vague precision prior puts the centre SD near
    1.4 (the truth is 0.5), which makes the vague log HR larger.
    """
    rows = []
    for seed in range(20):
        data = small_binary_table(random_seed=seed)
        fits = {
            name: fit_small(data, SMALL_PRIORS[name], chains=4)
            for name in ("default", "old default", "vague")
        }
        rows.append((seed, _gap(fits, "default"), _gap(fits, "old default")))
    new = np.array([r[1] for r in rows])
    old = np.array([r[2] for r in rows])
    table = "\n".join(f"seed {s}: default {a:.3f}, Normal(0, 1) {b:.3f}" for s, a, b in rows)
    print(table)
    print(
        f"within 15%: default {(new <= 0.15).sum()}/20 (median {np.median(new):.3f}), "
        f"Normal(0, 1) {(old <= 0.15).sum()}/20 (median {np.median(old):.3f})"
    )
    assert (new <= 0.15).sum() >= 15, table
    assert (old <= 0.15).sum() <= 5, table
    assert (new < old).all(), table
