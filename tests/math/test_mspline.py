"""M-spline baselines: the basis against Ramsay's recursion and quadrature, the closed-form
cumulative hazard against the integral of the hazard (past the last knot too), degree 0
against a hand-computed piecewise-constant hazard, rstanarm's knots, errors, random cases."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate

from bayes_sarcoma.math import mspline

RNG = np.random.default_rng(20260311)
KNOT_SETS = [
    np.array([0.0, 10.0]),
    np.array([0.0, 4.0, 11.0, 60.0]),
    np.array([0.0, 0.3, 2.0, 2.5, 9.0, 30.0, 31.0]),
]
DEGREES = [0, 1, 2, 3]
PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _quad(f, a, b, knots):
    """Integral of a piecewise-smooth f, split at the knots (quad's ``points``)."""
    inner = [k for k in knots if a < k < b]
    value, _ = integrate.quad(f, a, b, points=inner or None, epsabs=1e-14, epsrel=1e-12, limit=200)
    return value


def _ramsay(x, t, k, d):
    """Ramsay's (1988) recursion for M_k of degree d on the knot vector t, at a scalar x."""
    width = t[k + d + 1] - t[k]
    if width == 0:
        return 0.0
    if d == 0:
        last = t[k + 1] == t[-1]
        return float(t[k] <= x < t[k + 1] or (last and x == t[-1])) / width
    left = (x - t[k]) * _ramsay(x, t, k, d - 1)
    right = (t[k + d + 1] - x) * _ramsay(x, t, k + 1, d - 1)
    return (d + 1) * (left + right) / (d * width)


@pytest.mark.parametrize("degree", DEGREES)
@pytest.mark.parametrize("knots", KNOT_SETS)
def test_basis_matches_ramsays_recursion(knots, degree):
    t = np.concatenate([np.repeat(0.0, degree), knots, np.repeat(knots[-1], degree)])
    x = np.concatenate([np.linspace(0, knots[-1], 57), knots])
    got = mspline.basis(x, knots, degree)
    expected = [[_ramsay(xi, t, k, degree) for k in range(got.shape[-1])] for xi in x]
    assert got.shape == (x.size, mspline.n_basis(knots, degree))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("degree", DEGREES)
@pytest.mark.parametrize("knots", KNOT_SETS)
def test_each_basis_function_integrates_to_one(knots, degree):
    for k in range(mspline.n_basis(knots, degree)):
        area = _quad(lambda s, k=k: mspline.basis(s, knots, degree)[k], 0.0, knots[-1], knots)
        assert area == pytest.approx(1.0, rel=1e-10), k


@pytest.mark.parametrize("degree", DEGREES)
@pytest.mark.parametrize("knots", KNOT_SETS)
def test_integrated_basis_is_the_integral_of_the_basis_past_the_last_knot_too(knots, degree):
    b = knots[-1]
    t = np.concatenate([[0.0, 1e-3 * b], RNG.uniform(0, 2.5 * b, 25), knots, [b * 1.0001, 3 * b]])
    got = mspline.integrated_basis(t, knots, degree)
    for ti, row in zip(t, got, strict=True):
        expected = [
            _quad(lambda s, k=k: mspline.basis(s, knots, degree)[k], 0.0, ti, knots)
            for k in range(row.size)
        ]
        np.testing.assert_allclose(row, expected, rtol=1e-8, atol=1e-13)


@pytest.mark.parametrize("degree", DEGREES)
def test_integrated_basis_is_monotone_in_unit_interval_and_one_after_its_support(degree):
    knots = KNOT_SETS[2]
    b = knots[-1]
    t = np.linspace(0, b, 2001)
    ib = mspline.integrated_basis(t, knots, degree)
    assert (ib >= 0).all()
    assert (ib <= 1).all()
    assert (np.diff(ib, axis=0) >= 0).all()
    np.testing.assert_array_equal(ib[0], 0.0)
    np.testing.assert_allclose(ib[-1], 1.0, rtol=1e-14)
    clamped = np.concatenate([np.repeat(0.0, degree), knots, np.repeat(b, degree)])
    for k in range(ib.shape[1]):  # support of M_k ends at clamped[k + degree + 1]
        after = t >= clamped[k + degree + 1]
        np.testing.assert_array_equal(ib[after, k], 1.0)
        np.testing.assert_array_equal(ib[t <= clamped[k], k], 0.0)
        assert (ib[t < clamped[k + degree + 1], k] < 1).all()


@pytest.mark.parametrize("degree", DEGREES)
@pytest.mark.parametrize("knots", KNOT_SETS)
def test_basis_is_nonnegative_and_constant_coef_gives_a_constant_hazard(knots, degree):
    t = np.linspace(0, 2 * knots[-1], 301)
    m = mspline.basis(t, knots, degree)
    assert (m >= 0).all()
    p = mspline.constant_hazard_coef(knots, degree)
    assert p.sum() == pytest.approx(1.0, rel=1e-14)
    assert (p > 0).all()
    # B-splines sum to one, M_k = B_k / w_k: the weighted sum is 1 / b everywhere
    np.testing.assert_allclose(m @ p, 1 / knots[-1], rtol=1e-12)
    np.testing.assert_allclose(mspline.integrated_basis(t, knots, degree) @ p, t / knots[-1])


@pytest.mark.parametrize("degree", DEGREES)
@pytest.mark.parametrize("knots", KNOT_SETS[1:])
def test_cumulative_hazard_is_the_integral_of_the_hazard_past_the_last_knot_too(knots, degree):
    coef = 0.7 * RNG.dirichlet(np.ones(mspline.n_basis(knots, degree)))
    eta = -0.4
    for ti in [0.2, knots[-1] / 2, knots[-1], 1.5 * knots[-1], 4 * knots[-1]]:
        integral = _quad(
            lambda s: mspline.hazard(s, eta, coef, knots=knots, degree=degree), 0, ti, knots
        )
        got = mspline.cumulative_hazard(ti, eta, coef, knots=knots, degree=degree)
        assert got == pytest.approx(integral, rel=1e-8)


@pytest.mark.parametrize("degree", DEGREES)
def test_hazard_is_constant_past_the_last_knot_at_the_last_coefficients_value(degree):
    knots = KNOT_SETS[1]
    coef = np.array([0.1, 0.3, 0.2, 0.4, 0.05, 0.15])[: mspline.n_basis(knots, degree)]
    b, before_b = knots[-1], knots[-2]
    h = mspline.hazard([b, b + 1, 10 * b], 0.3, coef, knots=knots, degree=degree)
    expected = np.exp(0.3) * coef[-1] * (degree + 1) / (b - before_b)
    np.testing.assert_allclose(h, expected, rtol=1e-12)
    just_before = mspline.hazard(b * (1 - 1e-10), 0.3, coef, knots=knots, degree=degree)
    assert just_before == pytest.approx(expected, rel=1e-6)  # continuous at b


def test_degree_zero_is_the_hand_computed_piecewise_constant_hazard():
    knots = np.array([0.0, 3.0, 12.0, 30.0])
    rates = np.array([0.02, 0.05, 0.01])  # per month, in [0, 3), [3, 12), [12, 30] and after
    coef = rates * np.diff(knots)
    eta = 0.4
    t = np.array([0.0, 1.0, 3.0, 11.9, 12.0, 20.0, 30.0, 40.0])
    h = np.array([0.02, 0.02, 0.05, 0.05, 0.01, 0.01, 0.01, 0.01])
    H = np.array(
        [
            0.0,
            0.02,
            0.06,
            0.06 + 0.05 * 8.9,
            0.06 + 0.45,
            0.06 + 0.45 + 0.01 * 8,
            0.06 + 0.45 + 0.18,
            0.06 + 0.45 + 0.18 + 0.01 * 10,
        ]
    )
    kw = dict(knots=knots, degree=0)
    np.testing.assert_allclose(mspline.hazard(t, eta, coef, **kw), np.exp(eta) * h, rtol=1e-13)
    np.testing.assert_allclose(
        mspline.cumulative_hazard(t, eta, coef, **kw), np.exp(eta) * H, rtol=1e-13
    )
    np.testing.assert_allclose(mspline.survival(t, eta, coef, **kw), np.exp(-np.exp(eta) * H))


def test_default_knots_are_quantiles_of_event_times_with_boundaries_zero_and_last_follow_up():
    events = np.array([1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0])
    times = np.array([2.0, 2.5, 3, 5, 6, 8, 13, 21, 22, 34, 55, 90])
    event_times = times[events == 1]  # 2, 3, 5, 8, 13, 21, 34, 55
    got = mspline.default_knots(times, events)  # rstanarm: df = 6 cubic, two interior knots
    np.testing.assert_allclose(got, [0, *np.quantile(event_times, [1 / 3, 2 / 3]), 90])
    np.testing.assert_allclose(got[1:3], [5 + 3 * 1 / 3, 13 + 8 * 2 / 3])  # R type 7, by hand
    pw = mspline.default_knots(times, events.astype(bool), n_basis=4, degree=0)
    np.testing.assert_allclose(pw, [0, 4.5, 10.5, 24.25, 90])
    assert mspline.n_basis(pw, 0) == 4
    assert mspline.n_basis(mspline.default_knots(times, events, n_basis=9), 3) == 9
    np.testing.assert_array_equal(mspline.default_knots(times, events, n_basis=4), [0, 90])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(times=[1.0, -2.0], events=[1, 1]), "non-negative"),
        (dict(times=[1.0, np.nan], events=[1, 1]), "finite"),
        (dict(times=[1.0, 2.0], events=[1]), "same non-zero length"),
        (dict(times=[[1.0, 2.0]], events=[[1, 1]]), "1-D"),
        (dict(times=[1.0, 2.0], events=[1, 2]), "0/1"),
        (dict(times=[1.0, 2.0], events=[0, 0]), "no events"),
        (dict(times=[1.0, 2.0], events=[1, 1], n_basis=3), "at least degree \\+ 1 = 4"),
        (dict(times=[1.0, 2.0], events=[1, 1], n_basis=6.0), "n_basis must be an integer"),
        (dict(times=[1.0, 2.0], events=[1, 1], degree=-1), "degree"),
        (dict(times=[1.0, 1.0, 1.0, 5.0], events=[1, 1, 1, 0], n_basis=6), "tied knots"),
        (dict(times=[1.0, 2.0, 9.0, 9.0, 9.0], events=[1] * 5), "tied knots"),  # at b
    ],
)
def test_default_knots_reject_bad_input_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mspline.default_knots(**kwargs)


@pytest.mark.parametrize(
    ("t", "knots", "degree", "message"),
    [
        ([1.0], [1.0, 5.0], 3, "first .* knot must be 0"),
        ([1.0], [0.0, 5.0, 5.0, 9.0], 3, "strictly increasing"),
        ([1.0], [0.0, 5.0, 2.0], 3, "strictly increasing"),
        ([1.0], [0.0], 3, "at least the two boundary knots"),
        ([1.0], [[0.0, 5.0]], 3, "1-D"),
        ([1.0], [0.0, np.inf], 3, "finite"),
        ([1.0], [0.0, 5.0], 1.5, "non-negative integer"),
        ([1.0], [0.0, 5.0], True, "non-negative integer"),
        ([-1.0], [0.0, 5.0], 3, "times must be non-negative"),
    ],
)
def test_basis_rejects_bad_knots_degrees_and_times(t, knots, degree, message):
    for f in (mspline.basis, mspline.integrated_basis):
        with pytest.raises(ValueError, match=message):
            f(t, knots, degree)


def test_coefficients_must_be_nonnegative_with_one_per_basis_function():
    knots = KNOT_SETS[1]
    with pytest.raises(ValueError, match="non-negative"):
        mspline.hazard(1.0, 0.0, [0.1, -0.1, 0.2, 0.2, 0.3, 0.3], knots=knots)
    with pytest.raises(ValueError, match="6 basis functions on its last axis"):
        mspline.cumulative_hazard(1.0, 0.0, [0.5, 0.5], knots=knots)
    with pytest.raises(ValueError, match="last axis"):
        mspline.survival(1.0, 0.0, 0.5, knots=knots)


def test_broadcasts_over_draws_and_patients():
    knots = KNOT_SETS[1]
    draws, patients = 4, 7
    coef = RNG.dirichlet(np.ones(6), draws) * RNG.uniform(0.2, 2, (draws, 1))
    eta = RNG.normal(size=(draws, patients))
    t = RNG.uniform(0, 90, patients)
    for f in (mspline.hazard, mspline.cumulative_hazard, mspline.survival):
        got = f(t, eta, coef[:, None, :], knots=knots)
        assert got.shape == (draws, patients)
        loop = [
            [f(t[j], eta[i, j], coef[i], knots=knots) for j in range(patients)]
            for i in range(draws)
        ]
        np.testing.assert_allclose(got, loop, rtol=1e-14)
    assert mspline.basis(np.ones((3, 2)), knots).shape == (3, 2, 6)


@pytest.mark.parametrize("degree", [0, 3])
def test_log_likelihood_is_log_density_or_log_survival_and_density_integrates_to_one(degree):
    knots = KNOT_SETS[1]
    coef = 1.3 * RNG.dirichlet(np.ones(mspline.n_basis(knots, degree)))
    kw = dict(knots=knots, degree=degree)
    t = np.array([0.5, 7.0, 30.0, 60.0, 80.0])
    d = np.array([1, 0, 1, 1, 0])
    eta = np.array([0.2, -1.0, 0.0, 0.5, -0.3])
    log_s = np.log(mspline.survival(t, eta, coef, **kw))
    log_f = np.log(mspline.hazard(t, eta, coef, **kw)) + log_s
    np.testing.assert_allclose(
        mspline.log_likelihood(t, d, eta, coef, **kw), np.where(d == 1, log_f, log_s)
    )
    a = t / 3
    delayed = mspline.log_likelihood(t, d, eta, coef, entry=a, **kw)
    conditional = np.where(d == 1, log_f, log_s) - np.log(mspline.survival(a, eta, coef, **kw))
    np.testing.assert_allclose(delayed, conditional, rtol=1e-12)

    # a proper distribution: the constant hazard past the last knot makes S go to 0
    def density(s):
        return np.exp(mspline.log_likelihood(s, 1, 0.0, coef, **kw))

    total = _quad(density, 0, knots[-1], knots) + integrate.quad(density, knots[-1], np.inf)[0]
    assert total == pytest.approx(1.0, rel=1e-8)


def test_basis_matrices_as_data_give_the_same_log_likelihood_in_pytensor():
    import pytensor
    import pytensor.tensor as pt

    knots = KNOT_SETS[1]
    t = np.array([0.5, 7.0, 30.0, 60.0, 80.0])
    entry = np.array([0.0, 1.0, 0.0, 20.0, 0.0])
    d = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    eta = np.array([0.2, -1.0, 0.0, 0.5, -0.3])
    m, i, i_entry = (
        mspline.basis(t, knots),
        mspline.integrated_basis(t, knots),
        mspline.integrated_basis(entry, knots),
    )
    log_scale, simplex = pt.scalar("log_scale"), pt.vector("simplex")
    coef = pt.exp(log_scale) * simplex
    h0, big_h0 = pt.dot(pt.constant(m), coef), pt.dot(pt.constant(i) - i_entry, coef)
    loglik = d * (pt.log(h0) + eta) - pt.exp(eta) * big_h0
    f = pytensor.function([log_scale, simplex], loglik, mode="FAST_COMPILE")
    p = RNG.dirichlet(np.ones(6))
    expected = mspline.log_likelihood(t, d, eta, np.exp(-0.7) * p, knots=knots, entry=entry)
    np.testing.assert_allclose(f(-0.7, p), expected, rtol=1e-12)


@st.composite
def splines(draw):
    degree = draw(st.integers(0, 3))
    gaps = draw(st.lists(st.floats(0.05, 40.0), min_size=1, max_size=6))
    knots = np.concatenate([[0.0], np.cumsum(gaps)])
    k = mspline.n_basis(knots, degree)
    weights = draw(st.lists(st.floats(0.0, 1.0), min_size=k, max_size=k))
    coef = np.array(weights) + 1e-3
    coef = draw(st.floats(0.01, 5.0)) * coef / coef.sum()
    t = draw(st.floats(0.0, 3.0)) * knots[-1]
    return knots, degree, coef, t


@PROPERTY
@given(splines(), st.floats(-3.0, 3.0))
def test_random_splines_cumulative_hazard_integrates_hazard_and_survival_decreases(spline, eta):
    knots, degree, coef, t = spline
    kw = dict(knots=knots, degree=degree)
    integral = _quad(lambda s: mspline.hazard(s, eta, coef, **kw), 0.0, t, knots)
    big_h = mspline.cumulative_hazard(t, eta, coef, **kw)
    assert big_h == pytest.approx(integral, rel=1e-8, abs=1e-12)
    grid = np.linspace(0, 2 * knots[-1], 97)
    s = mspline.survival(grid, eta, coef, **kw)
    assert s[0] == 1.0
    assert (np.diff(s) <= 0).all()
    assert (mspline.hazard(grid, eta, coef, **kw) >= 0).all()
    ib = mspline.integrated_basis(grid, knots, degree)
    inside = grid <= knots[-1]
    assert (ib[inside] >= 0).all()
    assert (ib[inside] <= 1).all()
    np.testing.assert_allclose(ib[grid == knots[-1]], 1.0, rtol=1e-12)
    # H0 at the last knot is the sum of the coefficients (rstanarm's exp(gamma) * simplex)
    h0_b = mspline.cumulative_hazard(knots[-1], 0.0, coef, **kw)
    assert h0_b == pytest.approx(coef.sum(), rel=1e-12)
