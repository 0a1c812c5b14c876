"""Patient-level predictions: survival, hazard, quantiles, RMST and conditional survival,
checked against closed forms, numerical integration and Monte Carlo."""

import numpy as np
import pytest
import xarray as xr
from scipy import integrate, stats

import bayes_sarcoma as bs
from bayes_sarcoma.math import weibull
from bayes_sarcoma.predict import survival as predict
from bayes_sarcoma.predict.survival import Predictor

CENTERS = ("new", "known", "typical")
TIMES = np.array([0.0, 1.0, 6.0, 12.0, 24.0, 60.0, 120.0, 240.0])


@pytest.fixture(scope="module")
def fit(os_model_and_fit):
    return os_model_and_fit[1]


@pytest.fixture(scope="module")
def patients(registry_small):
    """Eight patients of varied risk, from expert and other centres."""
    df = registry_small
    return df.loc[df.index[[0, 1, 2, 3]].tolist() + df.index[df.expert_center][:4].tolist()]


def parameters(dt, data, center, num_draws=None):
    p = Predictor.from_fit(dt, data, center=center, num_draws=num_draws)
    return p, p.eta(), p.shape()


def marginal_by_quad(h0, sd):
    """E_u[exp(-exp(u) h0)], u ~ Normal(0, sd), by adaptive quadrature."""
    f = lambda u: np.exp(-np.exp(u) * h0) * stats.norm.pdf(u, 0, sd)  # noqa: E731
    return integrate.quad(f, -12 * sd, 12 * sd, epsabs=1e-13, epsrel=1e-12, limit=200)[0]


# -- contract and the shape of survival curves ---------------------------------------------
@pytest.mark.parametrize("center", CENTERS)
def test_survival_curves_are_survival_functions(fit, patients, center):
    s = predict.predict_survival(fit, patients, TIMES, center=center, num_draws=200)
    assert s.dims == ("chain", "draw", "patient", "time")
    assert list(s["patient"].values) == list(patients.patient_id)
    np.testing.assert_allclose(s.sel(time=0.0), 1.0, atol=1e-14)
    values = s.to_numpy()
    assert np.all((values >= 0) & (values <= 1))
    assert np.all(np.diff(values, axis=-1) <= 1e-15)
    assert s.attrs["center"] == center


def test_known_and_typical_match_the_weibull_closed_form(fit, patients):
    for center in ("known", "typical"):
        s = predict.predict_survival(fit, patients, TIMES, center=center, num_draws=100)
        _, eta, shape = parameters(fit, patients, center, num_draws=100)
        expected = weibull.survival(TIMES, eta[..., None], shape[:, None, None])
        np.testing.assert_allclose(s.to_numpy().reshape(expected.shape), expected, rtol=1e-12)
    # "known" adds the patient's own centre effect to the typical linear predictor.
    _, eta_known, _ = parameters(fit, patients, "known", num_draws=100)
    _, eta_typical, _ = parameters(fit, patients, "typical", num_draws=100)
    post = predict.draws(fit, num_draws=100)
    u = post["center_effect"].sel(center=xr.DataArray(patients.center_id.to_numpy()))
    np.testing.assert_allclose(eta_known - eta_typical, u.to_numpy().reshape(eta_known.shape))


def test_new_centre_integral_matches_quadrature_and_monte_carlo(fit, patients):
    s = predict.predict_survival(fit, patients, [12.0, 60.0], center="new", num_draws=20)
    _, eta, shape = parameters(fit, patients, "typical", num_draws=20)
    sd = predict.draws(fit, num_draws=20)["center_sd"].to_numpy().ravel()
    rng = np.random.default_rng(0)
    flat = s.to_numpy().reshape(len(sd), len(patients), 2)
    for d, i, k in [(0, 0, 1), (5, 3, 0), (19, 7, 1)]:
        h0 = weibull.cumulative_hazard([12.0, 60.0][k], eta[d, i], shape[d])
        assert flat[d, i, k] == pytest.approx(marginal_by_quad(h0, sd[d]), abs=1e-10)
        u = rng.normal(0, sd[d], 400_000)
        mc = np.exp(-np.exp(u) * h0)
        assert abs(flat[d, i, k] - mc.mean()) < 4 * mc.std() / np.sqrt(u.size)


@pytest.mark.parametrize("sd", [0.15, 0.5, 1.0])
def test_automatic_node_count_is_accurate(sd):
    z, w = predict.quadrature(predict.nodes_for(sd))
    for h0 in np.logspace(-5, 2, 15):
        approx = np.exp(-np.exp(sd * z) * h0) @ w
        assert approx == pytest.approx(marginal_by_quad(h0, sd), abs=2e-10)


def test_new_lies_between_the_extremes_of_known_centres(fit, registry_small):
    row = registry_small.iloc[[10]]
    centres = fit.posterior["center"].to_numpy()
    at_each = row.loc[row.index.repeat(len(centres))].assign(
        center_id=centres, patient_id=[f"at-{c}" for c in centres]
    )
    times = [6.0, 24.0, 60.0, 120.0]
    known = predict.predict_survival(fit, at_each, times, center="known", num_draws=200)
    known = known.mean(("chain", "draw"))
    new = predict.predict_survival(fit, row, times, center="new", num_draws=200)
    new = new.mean(("chain", "draw")).isel(patient=0)
    assert (known.min("patient") < new).all()
    assert (new < known.max("patient")).all()
    # Frailty selection: the marginal hazard is h0(t) E[exp(u) | T > t], and the mean
    # frailty of the survivors falls with time, in every draw.
    times = np.geomspace(1, 2000, 12)
    ratio = predict.predict_hazard(fit, row, times, num_draws=50) / predict.predict_hazard(
        fit, row, times, center="typical", num_draws=50
    )
    assert (ratio.diff("time") < 0).all()


def test_an_unknown_centre_is_a_clear_error(fit, patients):
    other = patients.assign(center_id=["NOWHERE", *list(patients.center_id[1:])])
    with pytest.raises(ValueError, match=r"'NOWHERE'.*center='new'.*center='typical'"):
        predict.predict_survival(fit, other, [12.0], center="known")
    # "new" and "typical" do not need the centre at all.
    predict.predict_survival(fit, other.drop(columns="center_id"), [12.0], num_draws=10)
    with pytest.raises(ValueError, match="center="):
        predict.predict_survival(fit, patients, [12.0], center="own")


# -- hazard, cumulative hazard, quantiles, RMST, conditional survival ---------------------
@pytest.mark.parametrize("center", CENTERS)
def test_hazard_is_minus_the_derivative_of_log_survival(fit, patients, center):
    t = np.array([3.0, 20.0, 70.0])
    eps = 1e-5 * t
    kw = dict(center=center, num_draws=30)
    cum = predict.predict_cumulative_hazard(fit, patients, np.concatenate([t - eps, t + eps]), **kw)
    s = predict.predict_survival(fit, patients, t, **kw)
    np.testing.assert_allclose(
        predict.predict_cumulative_hazard(fit, patients, t, **kw), -np.log(s), rtol=1e-12
    )
    slope = (cum.to_numpy()[..., 3:] - cum.to_numpy()[..., :3]) / (2 * eps)
    hazard = predict.predict_hazard(fit, patients, t, **kw).to_numpy()
    np.testing.assert_allclose(hazard, slope, rtol=1e-6)


@pytest.mark.parametrize("center", CENTERS)
def test_median_and_quantiles_solve_the_survival_equation(fit, patients, center):
    kw = dict(center=center, num_draws=40)
    med = predict.predict_median(fit, patients, **kw)
    assert med.dims == ("chain", "draw", "patient")
    q = predict.predict_quantile(fit, patients, [0.1, 0.5, 0.9], **kw)
    np.testing.assert_allclose(q.sel(quantile=0.5), med, rtol=1e-12)
    p, eta, shape = parameters(fit, patients, "typical" if center == "new" else center, 40)
    values = q.to_numpy().reshape(len(shape), len(patients), 3)
    if center == "new":
        sd = p.params["center_sd"]
        for d, i in [(0, 0), (17, 4), (39, 7)]:
            for k, ci_prob in enumerate([0.1, 0.5, 0.9]):
                h0 = weibull.cumulative_hazard(values[d, i, k], eta[d, i], shape[d])
                assert marginal_by_quad(h0, sd[d]) == pytest.approx(1 - ci_prob, abs=1e-9)
    else:  # the closed form S(t) = exp(-t^a exp(eta)) at the median is exactly 1/2
        s = weibull.survival(values, eta[..., None], shape[:, None, None])
        np.testing.assert_allclose(s, np.broadcast_to([0.9, 0.5, 0.1], s.shape), rtol=1e-10)
        np.testing.assert_allclose(values[..., 1], weibull.median(eta, shape[:, None]), rtol=1e-12)


@pytest.mark.parametrize("center", CENTERS)
def test_rmst_equals_the_integral_of_the_survival_curve(fit, patients, center):
    rmst = predict.predict_rmst(fit, patients, 60.0, center=center, num_draws=10)
    assert rmst.dims == ("chain", "draw", "patient")
    both = predict.predict_rmst(fit, patients, [24.0, 60.0], center=center, num_draws=10)
    np.testing.assert_allclose(both.sel(horizon=60.0), rmst)
    p, eta, shape = parameters(fit, patients, center, num_draws=10)
    _z, w = p.nodes()
    off = p.offsets()
    flat = rmst.to_numpy().reshape(len(shape), len(patients))
    for d, i in [(0, 0), (4, 5), (9, 7)]:

        def s(t, d=d, i=i):
            return np.exp(-np.exp(off[d] + eta[d, i]) * t ** shape[d]) @ w

        area = integrate.quad(s, 0, 60.0, epsabs=1e-12, epsrel=1e-12, limit=200)[0]
        assert flat[d, i] == pytest.approx(area, rel=1e-10)


def test_conditional_survival_is_a_ratio_of_survivals(fit, patients):
    times = [12.0, 24.0, 36.0, 60.0]
    cond = predict.predict_conditional_survival(fit, patients, times, landmark=24.0, num_draws=30)
    s = predict.predict_survival(fit, patients, times, num_draws=30)
    np.testing.assert_allclose(cond.sel(time=[12.0, 24.0]), 1.0)
    np.testing.assert_allclose(cond.sel(time=60.0), s.sel(time=60.0) / s.sel(time=24.0))
    assert (cond.sel(time=60.0) >= s.sel(time=60.0)).all()


# -- other models, other groups, thinning, the methods -------------------------------------
def without(dt, names):
    tree = dt.copy()
    tree["posterior"] = dt["posterior"].to_dataset().drop_vars(names)
    return tree


def test_without_centre_effects_the_three_choices_agree(fit, patients):
    tree = without(fit, ["center_sd", "center_effect"])
    curves = [
        predict.predict_survival(tree, patients, TIMES, center=c, num_draws=20) for c in CENTERS
    ]
    for other in curves[1:]:
        xr.testing.assert_allclose(curves[0].drop_attrs(), other.drop_attrs())


def test_exponential_fit_without_shape_uses_shape_one(fit, patients):
    tree = without(fit, ["shape"])
    s = predict.predict_survival(tree, patients, TIMES, center="typical", num_draws=20)
    _, eta, _ = parameters(tree, patients, "typical", num_draws=20)
    np.testing.assert_allclose(
        s.to_numpy().reshape(*eta.shape, -1), np.exp(-TIMES * np.exp(eta[..., None]))
    )


def test_prior_draws_and_thinning(os_model_and_fit, registry_small, patients):
    model, dt = os_model_and_fit
    s = predict.predict_survival(dt, patients, [12.0], num_draws=100)
    assert s.sizes["chain"] * s.sizes["draw"] <= 100
    np.testing.assert_array_equal(s["draw"], dt.posterior["draw"][::6])
    prior = model.sample_prior(registry_small, draws=50, random_seed=1)
    sp = predict.predict_survival(prior, patients, [12.0, 60.0], group="prior")
    assert sp.sizes["draw"] == 50
    assert np.isfinite(sp).all()


def test_the_verbs_are_free_functions_of_the_fit(os_model_and_fit, patients):
    _model, dt = os_model_and_fit
    assert bs.predict_survival is predict.predict_survival
    assert not hasattr(bs.HierarchicalWeibull, "predict_survival")  # one way to do it
    m = bs.predict_median(dt, patients, num_draws=20)
    assert m.dims == ("chain", "draw", "patient")


def test_summarize_is_a_tidy_table(fit, patients):
    s = predict.predict_survival(fit, patients.head(2), [12.0, 60.0], num_draws=100)
    table = predict.summarize(s, ci_prob=0.9)
    assert list(table.columns) == ["patient", "time", "mean", "median", "lower", "upper"]
    assert len(table) == 4
    assert (table["lower"] <= table["median"]).all()
    assert (table["median"] <= table["upper"]).all()
    draws = s.sel(time=60.0).isel(patient=0).to_numpy().ravel()
    row = table[(table.time == 60.0)].iloc[0]
    assert row["lower"] == pytest.approx(np.quantile(draws, 0.05))
