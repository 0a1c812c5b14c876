"""The integrated centre likelihood: quadrature, gradient, rule table and conditional draws."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import integrate, special, stats

from bayes_sarcoma.math import aghq

#: Centres of 1, 2, 30 and 2000 patients, 0 to all events, sds 0.01 to 3, several means.
CASES = [
    (n, events, sd, mu)
    for n, events, sd, mu in itertools.product(
        (1, 2, 30, 2000), (0, 1, 5, 2000), (0.01, 0.1, 0.5, 1.0, 3.0), (-3.0, 0.0, 2.0)
    )
    if events <= n
]


def _log_h(u, a, d, mu, sd):
    return d * u - a * np.exp(u) + stats.norm.logpdf(u, mu, sd)


def _mode(a, d, mu, sd):
    r, c = aghq.mode_and_curvature(a, d, mu, sd)
    return mu + r, c


def quad_log_integral(a, d, mu, sd):
    """``log I`` by scipy's adaptive quadrature, the integrand scaled at its mode."""
    m, c = _mode(a, d, mu, sd)
    s = c**-0.5
    top = _log_h(m, a, d, mu, sd)
    value, _ = integrate.quad(
        lambda u: np.exp(_log_h(u, a, d, mu, sd) - top),
        m - 40 * s - 10 * sd,
        m + 40 * s,
        points=[m],
        epsabs=0,
        epsrel=1e-13,
        limit=500,
    )
    return np.log(value) + top


def _a_for(n, seed):
    return n * np.random.default_rng(seed).uniform(0.05, 2.0)


@pytest.mark.parametrize(("n", "events", "sd", "mu"), CASES)
def test_log_integral_equals_scipy_quad_and_high_order_quadrature(n, events, sd, mu):
    a = _a_for(n, hash((n, events)) % 1000)
    value = aghq.log_integrals([a], [events], [mu], sd)[0][0]
    reference = aghq.log_integrals([a], [events], [mu], sd, aghq.REFERENCE_NODES)[0][0]
    # An absolute error in log I is the relative error of I.
    assert abs(value - quad_log_integral(a, events, mu, sd)) < 1e-8
    assert abs(value - reference) < 1e-8


def test_mode_is_lambert_w_closed_form_and_solves_the_mode_equation():
    rng = np.random.default_rng(3)
    for a, d, mu, sd in zip(
        rng.uniform(1e-3, 500, 200),
        rng.integers(0, 50, 200),
        rng.normal(0, 2, 200),
        rng.uniform(0.01, 3, 200),
        strict=True,
    ):
        m, c = _mode(a, d, mu, sd)
        x = sd**2 * a * np.exp(mu + sd**2 * d)
        if np.isfinite(x):
            assert m == pytest.approx(mu + sd**2 * d - special.lambertw(x).real, abs=1e-9)
        assert abs(d - a * np.exp(m) - (m - mu) / sd**2) < 1e-7 * max(1.0, d, a)
        assert c == pytest.approx(a * np.exp(m) + sd**-2)


@pytest.mark.parametrize(("n", "events", "sd", "mu"), CASES[::3])
def test_gradient_equals_finite_differences_of_what_is_evaluated(n, events, sd, mu):
    a = _a_for(n, 7)
    _, g_a, g_mu, g_sd, _ = aghq.log_integrals([a], [events], [mu], sd)

    def f(a_, mu_, sd_):
        return aghq.log_integrals([a_], [events], [mu_], sd_)[0][0]

    for grad, bump in ((g_a, (a * 1e-6, 0, 0)), (g_mu, (0, 1e-6, 0)), (g_sd, (0, 0, sd * 1e-6))):
        h = max(bump)
        plus = f(a + bump[0], mu + bump[1], sd + bump[2])
        minus = f(a - bump[0], mu - bump[1], sd - bump[2])
        fd = (plus - minus) / (2 * h)
        assert grad[0] == pytest.approx(fd, rel=1e-5, abs=1e-6 * max(1.0, abs(fd)))


def test_the_gradient_includes_the_moving_nodes():
    # With too few nodes for a skewed integrand, the rule's own derivative differs from the
    # integral's; the kernel must return the derivative of what it evaluates.
    a, d, mu, sd = 0.3, 0.0, 0.0, 2.0
    _, g_a, *_ = aghq.log_integrals([a], [d], [mu], sd, 5)
    fd = (
        aghq.log_integrals([a + 1e-7], [d], [mu], sd, 5)[0][0]
        - aghq.log_integrals([a - 1e-7], [d], [mu], sd, 5)[0][0]
    ) / 2e-7
    exact = aghq.log_integrals([a], [d], [mu], sd, aghq.REFERENCE_NODES)[1][0]
    assert g_a[0] == pytest.approx(fd, rel=1e-6)
    assert abs(g_a[0] - exact) > 1e-4


def test_the_rule_table_holds_on_a_fresh_grid():
    # Random (rho, s) inside each bin's limits: every rule meets the tolerance.
    rng = np.random.default_rng(11)
    z_ref, lw_ref = aghq.rule(aghq.REFERENCE_NODES)
    edges = np.asarray(aghq.RHO_EDGES)
    for n, limits in aghq.S_LIMITS:
        z, lw = aghq.rule(n)
        for b in range(len(limits)):
            rho = rng.uniform(edges[b], edges[b + 1], 40)
            s = np.exp(rng.uniform(np.log(1e-3), np.log(limits[b]), 40))

            def logq(z, lw, rho=rho, s=s):
                x = s[:, None] * z
                g = -(rho[:, None] / s[:, None] ** 2) * (np.expm1(x) - x)
                return special.logsumexp(g - (1 - rho[:, None]) * z**2 / 2 + lw, axis=1)

            assert np.max(np.abs(logq(z, lw) - logq(z_ref, lw_ref))) < aghq.TOLERANCE


def test_small_centres_with_a_small_sd_use_few_nodes():
    rng = np.random.default_rng(2)
    a = rng.uniform(0.1, 3, 500)
    d = rng.integers(0, 3, 500).astype(float)
    nodes = aghq.log_integrals(a, d, np.zeros(500), 0.15)[4]
    assert np.median(nodes) <= 9


@pytest.mark.parametrize(("a", "d", "mu", "sd"), [(0.2, 0.0, 0.0, 1.5), (40.0, 35.0, -0.2, 0.3)])
def test_conditional_draws_follow_the_exact_conditional(a, d, mu, sd):
    n = 20_000
    u = (
        aghq.draw_conditional_effects(
            np.full((n, 1), a), [d], np.full((n, 1), mu), np.full(n, sd), random_seed=5
        )[:, 0]
        + mu
    )
    log_i = quad_log_integral(a, d, mu, sd)

    def cdf(x):
        return np.array(
            [
                integrate.quad(lambda v: np.exp(_log_h(v, a, d, mu, sd) - log_i), -np.inf, t)[0]
                for t in np.atleast_1d(x)
            ]
        )

    grid = np.quantile(u, np.linspace(0.01, 0.99, 25))
    assert np.max(np.abs(cdf(grid) - np.linspace(0.01, 0.99, 25))) < 0.015
    again = (
        aghq.draw_conditional_effects(
            np.full((n, 1), a), [d], np.full((n, 1), mu), np.full(n, sd), random_seed=5
        )[:, 0]
        + mu
    )
    np.testing.assert_array_equal(u, again)


def test_a_tiny_sd_keeps_the_nodes_apart():
    # With sd 1e-17 the centre's effect is its mean: log I = D mu - A e^mu exactly.
    for mu in (-1.0, 0.5):
        value = aghq.log_integrals([3.0], [2.0], [mu], 1e-17)[0][0]
        assert value == pytest.approx(2.0 * mu - 3.0 * np.exp(mu), abs=1e-12)
        r = aghq.draw_conditional_effects(
            np.full((50, 1), 3.0), [2.0], np.full((50, 1), mu), np.full(50, 1e-17), 1
        )
        assert np.all(np.abs(r) < 1e-15)
