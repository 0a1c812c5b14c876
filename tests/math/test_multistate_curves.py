"""The multi-state model's derived curves against scipy's adaptive quadrature."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

from bayes_sarcoma.math import multistate as ms

#: Weibull transitions with different shapes (shape < 1: infinite hazard at 0).
SHAPES = {"local_relapse": 0.7, "distant_relapse": 1.3, "death": 1.1, "death_after_relapse": 0.9}
SCALES = {
    "local_relapse": 0.02,
    "distant_relapse": 0.004,
    "death": 0.002,
    "death_after_relapse": 0.05,
}


def cumhaz(t, k, scale=1.0):
    return scale * SCALES[k] * np.asarray(t, dtype=float) ** SHAPES[k]


def hazard(t, k):
    return SCALES[k] * SHAPES[k] * t ** (SHAPES[k] - 1.0)


def cumulative_hazards(t):
    return {k: cumhaz(t, k) for k in ms.TRANSITIONS}


def reference(t, clock):
    """Every curve by scipy.integrate.quad, from the model's definitions."""
    lam = {k: (lambda s, k=k: cumhaz(s, k)) for k in ms.TRANSITIONS}

    def s_rfs(s):
        return np.exp(-(lam["local_relapse"](s) + lam["distant_relapse"](s) + lam["death"](s)))

    def stay_r(s):
        if clock == "forward":
            return np.exp(-(lam["death_after_relapse"](t) - lam["death_after_relapse"](s)))
        return np.exp(-lam["death_after_relapse"](t - s))

    def p_d_integrand(s):
        stay_l = np.exp(-(lam["local_relapse"](t) - lam["local_relapse"](s)))
        return s_rfs(s) * hazard(s, "distant_relapse") * stay_l * stay_r(s)

    def p_r_integrand(s):
        rate = hazard(s, "local_relapse") + hazard(s, "distant_relapse")
        return s_rfs(s) * rate * stay_r(s)

    kw = dict(limit=200, epsabs=1e-12, epsrel=1e-10)
    p_d = integrate.quad(p_d_integrand, 0, t, **kw)[0]
    p_r = integrate.quad(p_r_integrand, 0, t, **kw)[0]
    return {"RFS": s_rfs(t), "LRFS": s_rfs(t) + p_d, "OS": s_rfs(t) + p_r}


@pytest.mark.parametrize("clock", ms.CLOCKS)
def test_derived_curves_match_scipy_quadrature(clock):
    times = np.array([3.0, 12.0, 36.0, 60.0, 120.0])
    out = ms.derived_survival(times, cumulative_hazards, clock=clock)
    for j, t in enumerate(times):
        ref = reference(t, clock)
        for endpoint in ("RFS", "LRFS", "OS"):
            assert out[endpoint][j] == pytest.approx(ref[endpoint], abs=1e-5), (endpoint, t)


def test_constant_hazards_are_exact_on_any_grid():
    """Proportional cumulative hazards make the forward recursion exact."""
    rates = {
        "local_relapse": 0.01,
        "distant_relapse": 0.02,
        "death": 0.005,
        "death_after_relapse": 0.03,
    }
    out = ms.derived_survival([50.0], lambda t: {k: r * t for k, r in rates.items()}, n_steps=4)
    t, a = 50.0, rates["local_relapse"] + rates["distant_relapse"] + rates["death"]
    r = rates["death_after_relapse"]
    # P_R(t) = (λL + λD) e^{-r t} ∫ e^{-(a - r) s} ds
    p_r = (
        (rates["local_relapse"] + rates["distant_relapse"])
        * np.exp(-r * t)
        * (-np.expm1(-(a - r) * t) / (a - r))
    )
    assert out["OS"][0] == pytest.approx(np.exp(-a * t) + p_r, rel=1e-12)


def test_curves_are_ordered_and_occupation_sums_to_one_for_every_draw():
    rng = np.random.default_rng(3)
    scale = {k: rng.lognormal(0.0, 1.0, (50, 1)) for k in ms.TRANSITIONS}
    out = ms.derived_survival(
        np.linspace(0.0, 150.0, 31),
        lambda t: {k: cumhaz(t, k, scale[k]) for k in ms.TRANSITIONS},
        n_steps=100,
    )
    assert out["RFS"].shape == (50, 31)
    assert np.all(out["RFS"] <= out["LRFS"] + 1e-15)
    assert np.all(out["LRFS"] <= out["OS"] + 1e-15)
    occ = out["occupation"]
    assert np.all(occ >= -1e-15)
    np.testing.assert_allclose(occ.sum(axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(out["OS"], 1.0 - occ[..., -1], atol=1e-12)


def test_time_zero_is_everyone_operated_and_alive():
    out = ms.derived_survival([0.0, 1.0], cumulative_hazards)
    assert out["OS"][0] == out["LRFS"][0] == out["RFS"][0] == 1.0
    np.testing.assert_array_equal(out["occupation"][0], [1.0, 0.0, 0.0, 0.0])


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="clock='wall'"):
        ms.derived_survival([1.0], cumulative_hazards, clock="wall")
    with pytest.raises(ValueError, match=">= 0"):
        ms.derived_survival([-1.0], cumulative_hazards)
    with pytest.raises(ValueError, match="lack the transitions"):
        ms.derived_survival([1.0], lambda t: {"death": t})
    with pytest.raises(ValueError, match="decreases"):
        ms.derived_survival([1.0], lambda t: {k: -t for k in ms.TRANSITIONS})


def test_phi_is_continuous_at_zero():
    x = np.array([-1e-9, 0.0, 1e-9, 1e-3, -2.0])
    expected = [1.0 + 5e-10, 1.0, 1.0 - 5e-10, -np.expm1(-1e-3) / 1e-3, np.expm1(2.0) / 2.0]
    np.testing.assert_allclose(ms.phi(x), expected, rtol=1e-12)
