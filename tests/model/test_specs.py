"""Named prior sets and model specifications: files, lookup, round trips and errors."""

import math

import pytest
from scipy import stats

import bayes_sarcoma as bs
from bayes_sarcoma.model.priors import DEFAULT_PRIORS, Prior
from bayes_sarcoma.model.specs import (
    ENV_VAR,
    ModelSpec,
    PriorSet,
    SpecError,
    available_model_specs,
    available_prior_sets,
    load_model_spec,
    load_prior_set,
    model_dirs,
)

SHIPPED_PRIOR_SETS = {
    "weakly_informative",
    "vague",
    "sceptical",
    "enthusiastic",
    "center_sd_tight",
    "center_sd_loose",
}
SHIPPED_MODELS = {
    "netsarc_weibull",
    "netsarc_exponential",
    "netsarc_margin_interaction",
    "netsarc_no_center",
}


# -- the shipped files ----------------------------------------------------------------------
def test_the_shipped_files_are_found():
    assert set(available_prior_sets()) >= SHIPPED_PRIOR_SETS
    assert set(available_model_specs()) >= SHIPPED_MODELS
    assert model_dirs()[-1] == model_dirs()[-1].parents[0] / "models"


def test_weakly_informative_file_equals_the_package_defaults():
    ps = load_prior_set("weakly_informative")
    assert dict(ps.priors) == dict(DEFAULT_PRIORS)
    assert ps.merged == dict(DEFAULT_PRIORS)


@pytest.mark.parametrize("name", sorted(SHIPPED_PRIOR_SETS))
def test_every_shipped_prior_set_is_valid_described_and_round_trips(name):
    ps = load_prior_set(name)
    assert ps.name == name
    assert len(ps.description) > 40
    assert PriorSet.from_dict(ps.to_dict()) == ps
    # Every set builds a model (slots and families are valid for it).
    model = bs.HierarchicalWeibull("OS", priors=ps.priors)
    assert model.priors == ps.merged


def test_sceptical_makes_the_published_benefit_a_priori_unlikely():
    prior = load_prior_set("sceptical").merged["beta:expert_center"]
    assert prior.distribution == "Normal"
    assert prior.parameters["mu"] == 0.0
    p_large_benefit = stats.norm.cdf(math.log(0.63), 0.0, prior.parameters["sigma"])
    assert 0.005 < p_large_benefit < 0.02  # about 1%, as the file says


def test_enthusiastic_is_centred_on_the_published_benefit():
    prior = load_prior_set("enthusiastic").merged["beta:expert_center"]
    assert math.log(0.63) <= prior.parameters["mu"] <= math.log(0.70)
    p_no_benefit = stats.norm.sf(0.0, prior.parameters["mu"], prior.parameters["sigma"])
    assert p_no_benefit < 0.05


def test_vague_is_bugs_style_and_centre_sd_sets_bracket_the_default():
    vague = load_prior_set("vague").merged
    assert vague["beta"] == Prior("Normal", mu=0, sigma=100)
    assert vague["intercept"] == Prior("Normal", mu=0, sigma=100)
    assert vague["shape"] == Prior("Exponential", lam=0.001)
    assert vague["center_sd"] == Prior("Gamma", alpha=0.001, beta=0.001, on="precision")
    tight = load_prior_set("center_sd_tight").merged["center_sd"]
    loose = load_prior_set("center_sd_loose").merged["center_sd"]
    default = DEFAULT_PRIORS["center_sd"]
    assert tight.distribution == default.distribution == loose.distribution  # no recompile
    assert tight.parameters["sigma"] < default.parameters["sigma"] < loose.parameters["sigma"]


@pytest.mark.parametrize("name", sorted(SHIPPED_MODELS))
def test_every_shipped_model_spec_builds_and_round_trips(name):
    spec = load_model_spec(name)
    assert spec.description
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    model = spec.build("LRFS")
    assert model.endpoint == "LRFS"
    assert model.treatment == "expert_center"
    assert model.priors == dict(DEFAULT_PRIORS)  # priors = "weakly_informative"


def test_model_specs_set_what_their_names_say():
    assert load_model_spec("netsarc_exponential").build("OS").baseline == "exponential"
    assert load_model_spec("netsarc_no_center").build("OS").cluster is None
    assert load_model_spec("netsarc_margin_interaction").build("OS").effect_modifier == "margin"
    default = load_model_spec("netsarc_weibull").build("OS")
    assert default.to_dict() == bs.HierarchicalWeibull("OS").to_dict()


def test_a_grid_prior_set_replaces_the_specs_priors():
    spec = load_model_spec("netsarc_weibull")
    model = spec.build("OS", priors="sceptical")
    assert model.priors["beta:expert_center"] == Prior("Normal", mu=0, sigma=0.2)
    assert model.priors["center_sd"] == DEFAULT_PRIORS["center_sd"]


def test_a_fitted_models_to_dict_is_a_model_spec():
    model = bs.HierarchicalWeibull(
        "RFS", priors={"beta:age": Prior("Normal", mu=0, sigma=0.1)}, effect_modifier="margin"
    )
    spec = ModelSpec.from_dict(model.to_dict(), name="mine")
    assert spec.build().to_dict() == model.to_dict()
    assert ModelSpec.from_dict(spec.to_dict()) == spec


# -- lookup ---------------------------------------------------------------------------------
def test_load_by_path_and_by_models_dir(tmp_path):
    (tmp_path / "priors").mkdir()
    (tmp_path / "priors" / "narrow.toml").write_text(
        'description = "narrow"\n[priors]\nbeta = { dist = "Normal", mu = 0.0, sigma = 0.5 }\n'
    )
    (tmp_path / "mine.toml").write_text(
        'description = "mine"\nterms = ["expert_center", "age"]\npriors = "narrow"\n'
    )
    by_path = load_prior_set(tmp_path / "priors" / "narrow.toml")
    assert by_path.name == "narrow"
    assert load_prior_set("narrow", models_dir=tmp_path) == by_path
    spec = load_model_spec(tmp_path / "mine.toml")  # its prior set is found next to it
    assert spec.build("OS").priors["beta"] == Prior("Normal", mu=0, sigma=0.5)
    assert spec.build("OS").terms == ("expert_center", "age")


def test_the_environment_variable_adds_model_directories(tmp_path, monkeypatch):
    (tmp_path / "priors").mkdir()
    (tmp_path / "priors" / "site_specific.toml").write_text(
        '[priors]\ncenter_sd = { dist = "HalfNormal", sigma = 0.3 }\n'
    )
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert "site_specific" in available_prior_sets()
    assert load_prior_set("site_specific").merged["center_sd"] == Prior("HalfNormal", sigma=0.3)
    assert "sceptical" in available_prior_sets()  # the checkout's files still count


# -- errors ---------------------------------------------------------------------------------
def _write(tmp_path, text, name="bad.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_unknown_prior_set_lists_the_known_ones():
    with pytest.raises(SpecError, match=r"no prior set named 'scepticall'; known: .*sceptical"):
        load_prior_set("scepticall")


def test_unknown_keys_in_a_prior_set_file_are_named(tmp_path):
    path = _write(tmp_path, 'description = "x"\nprior = {}\n')
    with pytest.raises(SpecError, match=r"bad\.toml: .*unknown prior-set keys \['prior'\]"):
        load_prior_set(path)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('shape = { dist = "Weibul", alpha = 1.0 }', r"shape: .*unknown distribution 'Weibul'"),
        ('center_sd = { dist = "HalfNormal", sigma = -1.0 }', r"sigma=-1.0 must be > 0"),
        ('center_sd = { dist = "Normal", mu = 0.0, sigma = 1.0 }', r"center_sd: .*real support"),
        ('beta = { dist = "Normal", mu = 0.0 }', r"missing \['sigma'\]"),
        ('betas = { dist = "Normal", mu = 0.0, sigma = 1.0 }', r"unknown prior slot 'betas'"),
        ("shape = { mu = 0.0, sigma = 1.0 }", r"needs a 'dist' key"),
    ],
)
def test_bad_distributions_are_reported_with_the_file_and_slot(tmp_path, entry, message):
    path = _write(tmp_path, f"[priors]\n{entry}\n")
    with pytest.raises(SpecError, match=message) as err:
        load_prior_set(path)
    assert "bad.toml" in str(err.value)


def test_invalid_toml_is_reported(tmp_path):
    path = _write(tmp_path, "[priors\n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_prior_set(path)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(SpecError, match="does not exist"):
        load_prior_set(tmp_path / "nope.toml")


def test_unknown_model_spec_keys_are_named(tmp_path):
    path = _write(tmp_path, 'terms = ["age"]\nbaselne = "weibull"\n')
    with pytest.raises(SpecError, match=r"unknown model specification keys \['baselne'\]"):
        load_model_spec(path)


def test_a_model_spec_naming_a_missing_prior_set_fails_on_load(tmp_path):
    path = _write(tmp_path, 'terms = ["age"]\npriors = "nonexistent"\n')
    with pytest.raises(SpecError, match=r"bad\.toml: .*no prior set named 'nonexistent'"):
        load_model_spec(path)


def test_a_model_spec_with_bad_inline_priors_fails(tmp_path):
    path = _write(tmp_path, 'terms = ["age"]\n[priors]\nshape = { dist = "Gamma", alpha = 1.0 }\n')
    with pytest.raises(SpecError, match=r"Gamma takes parameters"):
        load_model_spec(path)
