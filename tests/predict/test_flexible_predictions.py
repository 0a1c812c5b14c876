"""Predictions of a flexible-baseline fit against independent computations from its draws
(math/mspline's hazard and survival, NumPy's Gauss-Hermite rule, scipy's quad), and the
same predictions after a save/load round trip."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

import bayes_sarcoma as bs
from bayes_sarcoma.math import mspline
from bayes_sarcoma.model.baselines import Baseline
from bayes_sarcoma.predict import centers, effects, standardize
from bayes_sarcoma.predict import survival as sv

TIMES = [0.0, 6.0, 30.0, 80.0, 150.0]  # 150 is past the last knot
NUM = 40  # draws used


@pytest.fixture(scope="module")
def fit(mspline_model_and_fit, mspline_table):
    _, dt = mspline_model_and_fit
    post = sv.draws(dt, num_draws=NUM)
    flat = {k: post[k].to_numpy().reshape(-1, *post[k].shape[2:]) for k in post.data_vars}
    x = mspline_table.head(4)
    eta = flat["intercept"][:, None] + flat["beta"] @ np.column_stack([x.treated, x.age]).T
    return dt, x, flat, eta, Baseline.from_fit(dt)


def _gh(sd, h):
    """E_u[exp(-exp(u) h)], u ~ Normal(0, sd), by NumPy's 60-node Hermite rule."""
    z, w = np.polynomial.hermite_e.hermegauss(60)
    return np.exp(-np.exp(sd[..., None] * z) * h[..., None]) @ (w / w.sum())


def test_typical_centre_survival_and_hazard_are_the_msplines(fit):
    dt, x, flat, eta, b = fit
    coef = flat["baseline_coef"][:, None, :]
    s = sv.predict_survival(dt, x, TIMES, center="typical", num_draws=NUM)
    h = sv.predict_hazard(dt, x, TIMES[1:], center="typical", num_draws=NUM)
    for j, t in enumerate(TIMES):
        expected = mspline.survival(t, eta, coef, knots=b.knots)
        np.testing.assert_allclose(
            s.isel(time=j).stack(s=("chain", "draw")).T, expected, rtol=1e-10
        )
    for j, t in enumerate(TIMES[1:]):
        expected = mspline.hazard(t, eta, coef, knots=b.knots)
        np.testing.assert_allclose(
            h.isel(time=j).stack(s=("chain", "draw")).T, expected, rtol=1e-10
        )


def test_new_centre_survival_integrates_the_centre_effect(fit):
    dt, x, flat, eta, b = fit
    s = sv.predict_survival(dt, x, TIMES, num_draws=NUM).stack(s=("chain", "draw"))
    for j, t in enumerate(TIMES):
        cum = mspline.cumulative_hazard(t, eta, flat["baseline_coef"][:, None, :], knots=b.knots)
        expected = _gh(np.broadcast_to(flat["center_sd"][:, None], cum.shape), cum)
        np.testing.assert_allclose(s.isel(time=j).T, expected, rtol=1e-9, atol=1e-12)


def test_quantiles_solve_the_survival_equation_inside_and_past_the_knots(fit):
    dt, x, flat, eta, b = fit
    levels = [0.05, 0.5, 0.9]
    coef, sd = flat["baseline_coef"][:, None, :], flat["center_sd"][:, None]
    for center in ("typical", "new"):
        q = sv.predict_quantile(dt, x, levels, center=center, num_draws=NUM)
        tq = q.stack(s=("chain", "draw")).transpose("s", "patient", "quantile").to_numpy()
        for k, level in enumerate(levels):
            cum = mspline.cumulative_hazard(tq[..., k], eta, coef, knots=b.knots)
            surv = np.exp(-cum) if center == "typical" else _gh(np.broadcast_to(sd, cum.shape), cum)
            np.testing.assert_allclose(surv, 1 - level, atol=1e-9)
    assert (tq[..., -1] > b.upper).any()  # some 90% quantiles lie past the last knot


def test_rmst_is_the_integral_of_the_survival(fit):
    dt, x, flat, eta, b = fit
    rmst = sv.predict_rmst(dt, x, [20.0, 150.0], num_draws=NUM).stack(s=("chain", "draw"))
    for d in (0, 7):
        for i in (0, 3):
            sd = flat["center_sd"][d]

            def surv(t, d=d, i=i, sd=sd):
                cum = mspline.cumulative_hazard(
                    t, eta[d, i], flat["baseline_coef"][d], knots=b.knots
                )
                return float(_gh(np.asarray(sd), np.asarray(cum)))

            for k, tau in enumerate([20.0, 150.0]):
                cuts = [kn for kn in b.knots if 0 < kn < tau]
                value, _ = integrate.quad(surv, 0, tau, points=cuts, epsabs=0, epsrel=1e-11)
                assert float(rmst.isel(patient=i, horizon=k, s=d)) == pytest.approx(value, rel=1e-8)


def test_conditional_survival_is_a_ratio_of_survivals(fit):
    dt, x, *_ = fit
    cond = sv.predict_conditional_survival(dt, x, [10.0, 60.0], landmark=24.0, num_draws=NUM)
    s = sv.predict_survival(dt, x, [24.0, 60.0], num_draws=NUM)
    np.testing.assert_allclose(cond.sel(time=10.0), 1.0)
    np.testing.assert_allclose(cond.sel(time=60.0), s.sel(time=60.0) / s.sel(time=24.0), rtol=1e-12)


def test_standardized_survival_is_the_mean_of_the_patients_curves(fit, mspline_table):
    dt = fit[0]
    data = mspline_table.iloc[:60]
    std = standardize.standardized_survival(dt, data, [12.0, 50.0], horizon=90.0, num_draws=NUM)
    for arm, value in (("treated", 1.0), ("control", 0.0)):
        arm_data = data.assign(treated=value)
        direct = sv.predict_survival(dt, arm_data, [12.0, 50.0], num_draws=NUM).mean("patient")
        np.testing.assert_allclose(std[arm], direct, rtol=1e-9, atol=1e-11)
        rmst = sv.predict_rmst(dt, arm_data, 90.0, num_draws=NUM).mean("patient")
        np.testing.assert_allclose(std[f"rmst_{arm}"], rmst, rtol=1e-8)
        at_median = [
            sv.predict_survival(dt, arm_data, [float(m)], num_draws=NUM)
            .mean("patient")
            .stack(s=("chain", "draw"))
            .isel(s=k, time=0)
            for k, m in enumerate(std[f"median_{arm}"].stack(s=("chain", "draw")).to_numpy()[:3])
        ]
        np.testing.assert_allclose([float(v) for v in at_median], 0.5, atol=1e-8)


def test_expected_events_sum_the_cumulative_hazards(fit, mspline_table):
    dt, _, _, _, b = fit
    post = sv.draws(dt)
    flat = {k: post[k].to_numpy().reshape(-1, *post[k].shape[2:]) for k in post.data_vars}
    x = np.column_stack([mspline_table.treated, mspline_table.age])
    eta = flat["intercept"][:, None] + flat["beta"] @ x.T
    cum = mspline.cumulative_hazard(
        mspline_table["time"].to_numpy(), eta, flat["baseline_coef"][:, None, :], knots=b.knots
    )
    np.testing.assert_allclose(centers.expected_events(dt), cum.mean(axis=0), rtol=1e-10)


def test_time_ratios_are_refused_for_a_flexible_baseline(fit):
    with pytest.raises(ValueError, match="time ratios exist for the Weibull"):
        effects.time_ratios(fit[0])
    assert len(effects.hazard_ratios(fit[0])) == 2


def test_a_saved_fit_predicts_identically_after_load(fit, mspline_table, tmp_path):
    dt, x, *_ = fit
    loaded = bs.load(bs.save(dt, tmp_path / "mspline.zarr"), data=mspline_table)
    for f in (sv.predict_survival, sv.predict_hazard):
        np.testing.assert_array_equal(
            f(loaded, x, TIMES, num_draws=NUM), f(dt, x, TIMES, num_draws=NUM)
        )
    a = standardize.standardized_survival(loaded, mspline_table, [12.0, 60.0], num_draws=NUM)
    b = standardize.standardized_survival(dt, mspline_table, [12.0, 60.0], num_draws=NUM)
    np.testing.assert_array_equal(a["difference"], b["difference"])
    np.testing.assert_array_equal(
        sv.predict_median(loaded, x, num_draws=NUM), sv.predict_median(dt, x, num_draws=NUM)
    )
