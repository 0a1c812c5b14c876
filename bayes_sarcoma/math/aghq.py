"""A centre's effect integrated out: adaptive Gauss-Hermite quadrature (DESIGN.md 3.2).

Centre c's likelihood depends on its effect ``u`` only through ``D_c`` (its events) and
``A_c`` (its patients' cumulative hazards at ``u = 0``)::

    log I_c = log Integral exp(D u - A e^u) Normal(u | mu, sigma) du

The integrand is log-concave with its mode in closed form (Lambert W),
``u* = mu + sigma^2 D - W(sigma^2 A exp(mu + sigma^2 D))``, and curvature
``c = A e^u* + 1 / sigma^2``. Adaptive Gauss-Hermite quadrature puts the rule's nodes at
``u* + z_k / sqrt(c)``. The integrands lie between a normal density (few nodes are exact)
and a skewed log-gamma-like one (many are needed), so each centre gets the smallest rule
whose error stays below :data:`TOLERANCE` for its shape (see :data:`S_LIMITS`).

The gradient is exact for the quadrature sum, the nodes' movement with the mode and the
curvature included (implicit differentiation of the mode equation), so NUTS sees the
derivative of exactly what the log-density evaluates.

After sampling, :func:`draw_conditional_effects` draws each centre's effect from its exact
conditional ``p(u | A, D, mu, sigma)`` (one-dimensional, log-concave) by rejection from a
piecewise-exponential envelope of three tangents (Gilks & Wild 1992), per draw.

Why hand-written: no library integrates a log-gamma-times-normal integrand per centre
with its gradient inside a compiled log-density (scipy's quadrature is per call in Python,
and ``scipy.special.lambertw`` is not callable from numba).
"""

from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Nodes of the reference rule (tests and the run-time accuracy check compare with it).
REFERENCE_NODES = 301
#: Centres per worker below which :func:`log_integrals` stays on one thread.
PARALLEL_MIN = 50_000
#: The absolute error in ``log I_c`` that the automatic rule choice aims at.
TOLERANCE = 1e-9
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)

# The automatic rule. In the standardised variable v = (u - u*) * sqrt(c) the integrand is
#     exp(-(rho / s^2) (e^(s v) - 1 - s v) - (1 - rho) v^2 / 2),
# rho = A e^u* / c the data's share of the curvature, s = c^(-1/2). Its quadrature error is a
# function of (rho, s) only: near 0 for small s (nearly normal) and growing with s (a
# log-gamma-like skew). For each rho bin, a rule of n nodes is used while s stays below
# S_LIMITS[n][bin]: 0.9 times the smallest s at which that rule's error in log I exceeds
# TOLERANCE on a grid of 1001 rho x 300 log-spaced s in [1e-3, 3] (3.0: no failure seen
# below 3) against 301 nodes; tests/math/test_aghq.py checks the table on a fresh grid. Beyond
# the last limit (an sd near 3 and a centre with next to no data) the largest rule is used.
RHO_EDGES = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.97, 1.0)
# fmt: off
S_LIMITS = (
    (5, (0.236, 0.099, 0.059, 0.037, 0.029, 0.026, 0.020, 0.013, 0.011, 0.011)),
    (7, (0.490, 0.335, 0.212, 0.153, 0.145, 0.087, 0.068, 0.068, 0.061, 0.055)),
    (9, (0.697, 0.592, 0.384, 0.345, 0.195, 0.123, 0.089, 0.068, 0.064, 0.061)),
    (11, (0.842, 0.716, 0.532, 0.384, 0.293, 0.236, 0.175, 0.123, 0.110, 0.108)),
    (15, (1.046, 0.842, 0.716, 0.609, 0.464, 0.364, 0.335, 0.236, 0.206, 0.195)),
    (21, (1.198, 1.046, 0.889, 0.736, 0.697, 0.517, 0.490, 0.364, 0.309, 0.293)),
    (31, (1.409, 1.231, 1.105, 0.965, 0.842, 0.756, 0.643, 0.546, 0.452, 0.405)),
    (41, (1.488, 1.335, 1.198, 1.075, 1.018, 0.914, 0.798, 0.777, 0.577, 0.504)),
    (61, (1.750, 1.571, 1.448, 1.335, 1.231, 1.135, 1.075, 0.965, 0.798, 0.643)),
    (81, (1.899, 1.750, 1.658, 1.488, 1.448, 1.335, 1.265, 1.166, 1.018, 0.756)),
    (121, (2.174, 2.059, 1.951, 1.848, 1.750, 1.658, 1.571, 1.529, 1.448, 0.939)),
    (161, (2.423, 2.295, 2.234, 2.059, 2.004, 1.951, 1.848, 1.799, 1.799, 1.105)),
    (201, (2.628, 2.489, 2.423, 2.295, 2.234, 2.174, 2.116, 2.059, 2.059, 1.231)),
    (251, (3.000, 3.000, 2.700, 2.628, 2.558, 2.423, 2.423, 2.358, 2.358, 1.409)),
)
# fmt: on


@functools.lru_cache(maxsize=16)
def rule(n_nodes: int) -> tuple[NDArray, NDArray]:
    """Return probabilists' Hermite nodes ``z`` and log weights for integrating a density.

    ``Integral f(u) du ~ s * sum_k exp(log_w[k]) f(m + s z[k])`` for any centre ``m`` and
    scale ``s``: ``log_w = log(w_k / sum(w)) - log phi(z_k)``.
    """
    z, w = np.polynomial.hermite_e.hermegauss(int(n_nodes))
    log_w = np.log(w / w.sum()) + 0.5 * z**2 + _HALF_LOG_2PI
    z.setflags(write=False)
    log_w.setflags(write=False)
    return z, log_w


@functools.lru_cache(maxsize=16)
def rule_set(n_nodes: int | str = "auto") -> tuple[NDArray, ...]:
    """Return the rules a centre may use, packed for the kernels.

    Parameters
    ----------
    n_nodes : int or "auto"
        ``"auto"``: the rules of :data:`S_LIMITS`, chosen per centre; an int: that rule
        for every centre.

    Returns
    -------
    z, log_w, starts, counts, limits : numpy.ndarray
        All rules' nodes and log weights concatenated, where each starts, its size, and
        the s limits (rule x rho bin; the last rule has no limit).
    """
    if n_nodes == "auto":
        sizes = [n for n, _ in S_LIMITS]
        limits = np.array([lim for _, lim in S_LIMITS], dtype=float)
        limits[-1] = np.inf
    else:
        sizes = [int(n_nodes)]
        limits = np.full((1, len(RHO_EDGES) - 1), np.inf)
    pairs = [rule(n) for n in sizes]
    counts = np.array(sizes, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    z = np.concatenate([p[0] for p in pairs])
    log_w = np.concatenate([p[1] for p in pairs])
    return z, log_w, starts, counts, limits


@numba.njit(cache=True)
def lambertw_exp(x: float) -> float:
    """Return ``W(exp(x))``, the principal Lambert W of ``e^x``, without forming ``e^x``.

    Halley's method on ``w + log w = x`` from a close start (a Pade
    approximant of W near 0, ``x - log x`` for large ``x``); it converges cubically, so
    one or two steps reach rounding.
    """
    if x < -1.0:
        y = math.exp(x)
        w = y * (1.0 + 4.0 / 3.0 * y) / (1.0 + 7.0 / 3.0 * y + 5.0 / 6.0 * y * y)
    elif x < 3.0:
        w = 0.5671432904097838 + 0.3618 * x * (1.0 + 0.04 * x)  # a rough fit of W(e^x)
        w = max(w, 0.05)
    else:
        w = x - math.log(x) + math.log(x) / x
    for _ in range(20):
        f = w + math.log(w) - x
        fp = 1.0 + 1.0 / w
        step = 2.0 * f * fp / (2.0 * fp * fp + f / (w * w))
        w -= step
        if abs(step) <= 1e-14 * w:
            break
    return w


@numba.njit(cache=True)
def mode_and_curvature(a: float, d: float, mu: float, sigma: float) -> tuple[float, float]:
    """Return the integrand's mode as ``r* = u* - mu`` and its curvature ``A e^u* + 1/sigma^2``.

    Everything is computed in the deviation ``r = u - mu``: for a tiny ``sigma`` the nodes
    ``r* + z_k / sqrt(c)`` stay distinct where ``mu + r`` would round them together.
    """
    s2 = sigma * sigma
    r = s2 * d - lambertw_exp(math.log(s2 * a) + mu + s2 * d)
    return r, a * math.exp(mu + r) + 1.0 / s2


@numba.njit(cache=True)
def _log_h(r: float, a: float, d: float, mu: float, sigma: float) -> float:
    """Log integrand at ``u = mu + r``."""
    q = r / sigma
    return d * (mu + r) - a * math.exp(mu + r) - 0.5 * q * q - math.log(sigma) - _HALF_LOG_2PI


@numba.njit(cache=True)
def _pick_rule(rho, s, limits):
    """Index of the smallest rule whose s limit for ``rho``'s bin is not exceeded."""
    b = 0
    while b < len(RHO_EDGES) - 2 and rho >= RHO_EDGES[b + 1]:
        b += 1
    r = 0
    while r < limits.shape[0] - 1 and s > limits[r, b]:
        r += 1
    return r


@numba.njit(cache=True)
def _one_centre(a, d, mu, sigma, z_all, log_w_all, starts, counts, limits):
    """Log integral and its derivatives in ``A``, ``mu`` and ``sigma`` for one centre.

    One pass over the nodes: the terms are scaled by the integrand at its mode (no term
    exceeds it by more than its weight), ``e^u`` at a node is ``e^u* (1 + expm1(s z))``,
    and the gradient's expectations are accumulated unnormalised.
    """
    m, c = mode_and_curvature(a, d, mu, sigma)
    s = 1.0 / math.sqrt(c)
    s2 = sigma * sigma
    eum = math.exp(mu + m)
    em = a * eum  # A e^u*: the data's curvature at the mode
    j = _pick_rule(em / c, s, limits)
    total = sum_eu = sum_dev = sum_dev2 = sum_slope = sum_slope_z = 0.0
    for k in range(starts[j], starts[j] + counts[j]):
        sz = s * z_all[k]
        grow = math.expm1(sz)
        dev = m + sz
        # h(u) - h(u*) at u = u* + s z, without cancellation
        rel = d * sz - em * grow - sz * (2.0 * m + sz) / (2.0 * s2)
        q = math.exp(log_w_all[k] + rel)
        eu = eum * (1.0 + grow)
        slope = d - a * eu - dev / s2  # h'(u)
        total += q
        sum_eu += q * eu
        sum_dev += q * dev
        sum_dev2 += q * dev * dev
        sum_slope += q * slope
        sum_slope_z += q * slope * z_all[k]
    e_a = -sum_eu / total
    e_mu = sum_dev / (total * s2)
    e_sigma = sum_dev2 / (total * s2 * sigma) - 1.0 / sigma
    e_slope, e_slope_z = sum_slope / total, sum_slope_z / total
    # The nodes move with the mode u* = mu + m(theta) and the scale s(theta) = c^(-1/2).
    dm_a, dm_mu, dm_sigma = -eum / c, 1.0 / (s2 * c), 2.0 * m / (s2 * sigma * c)
    dc_a = eum + em * dm_a
    dc_mu = em * dm_mu
    dc_sigma = em * dm_sigma - 2.0 / (s2 * sigma)
    ds = -0.5 * s / c
    through_s = 1.0 / s + e_slope_z
    log_h_mode = d * (mu + m) - em - 0.5 * m * m / s2 - math.log(sigma) - _HALF_LOG_2PI
    value = math.log(s) + log_h_mode + math.log(total)
    g_a = e_a + e_slope * dm_a + through_s * ds * dc_a
    g_mu = e_mu + e_slope * dm_mu + through_s * ds * dc_mu
    g_sigma = e_sigma + e_slope * dm_sigma + through_s * ds * dc_sigma
    return value, g_a, g_mu, g_sigma, counts[j]


@numba.njit(cache=True, nogil=True)
def log_integrals_kernel(a, d, mu, sigma, z, log_w, starts, counts, limits):
    """Per centre: ``log I_c``, its derivatives in ``A_c``, ``mu_c``, ``sigma``, and nodes used.

    ``sigma`` is per centre too; the arguments after it are :func:`rule_set`'s arrays.
    """
    n = a.shape[0]
    value, d_a, d_mu, d_sigma = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    nodes = np.empty(n, dtype=np.int64)
    for i in range(n):
        value[i], d_a[i], d_mu[i], d_sigma[i], nodes[i] = _one_centre(
            a[i], d[i], mu[i], sigma[i], z, log_w, starts, counts, limits
        )
    return value, d_a, d_mu, d_sigma, nodes


def log_integrals(
    a: ArrayLike, d: ArrayLike, mu: ArrayLike, sigma: ArrayLike, n_nodes: int | str = "auto"
) -> tuple[NDArray, ...]:
    """Return ``log I_c`` and its derivatives in ``A_c``, ``mu_c`` and ``sigma``, per centre.

    Parameters
    ----------
    a, d, mu : array_like
        Per centre: ``A_c`` (> 0), ``D_c`` (>= 0) and the centre effect's mean ``mu_c``.
    sigma : float or array_like
        The centre effects' sd (> 0), one for all or one per centre.
    n_nodes : int or "auto"
        Gauss-Hermite nodes per centre (``"auto"``: chosen per centre, see :data:`S_LIMITS`).

    Returns
    -------
    value, d_a, d_mu, d_sigma, nodes : numpy.ndarray
        One value per centre each (``d_sigma`` per centre: sum it for the scalar ``sigma``),
        and the number of nodes each centre used.

    Examples
    --------
    >>> value = log_integrals([2.0], [1.0], [0.0], 0.3)[0]
    >>> from scipy import integrate, stats
    >>> f = lambda u: np.exp(u - 2 * np.exp(u)) * stats.norm.pdf(u, 0, 0.3)
    >>> bool(abs(value[0] - np.log(integrate.quad(f, -5, 5, epsrel=1e-13)[0])) < 1e-10)
    True
    """
    arrays = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (a, d, mu, sigma)))
    a, d, mu, sigma = (np.array(x, dtype=float).ravel() for x in arrays)  # writeable copies
    rules = rule_set(n_nodes)
    n_workers = min(os.cpu_count() or 1, a.size // PARALLEL_MIN)
    if n_workers < 2:
        return log_integrals_kernel(a, d, mu, sigma, *rules)
    # The kernel releases the GIL: chunks run on all cores, in order, with the same result.
    bounds = np.linspace(0, a.size, n_workers + 1).astype(int)
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        parts = list(
            pool.map(
                lambda k: log_integrals_kernel(
                    *(x[bounds[k] : bounds[k + 1]] for x in (a, d, mu, sigma)), *rules
                ),
                range(n_workers),
            )
        )
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))


@numba.njit(cache=True)
def _one_value(a, d, mu, sigma, z_all, log_w_all, starts, counts, limits):
    """``log I`` of one centre alone: :func:`_one_centre`'s value, the same operations."""
    m, c = mode_and_curvature(a, d, mu, sigma)
    s = 1.0 / math.sqrt(c)
    s2 = sigma * sigma
    eum = math.exp(mu + m)
    em = a * eum
    j = _pick_rule(em / c, s, limits)
    total = 0.0
    for k in range(starts[j], starts[j] + counts[j]):
        sz = s * z_all[k]
        grow = math.expm1(sz)
        rel = d * sz - em * grow - sz * (2.0 * m + sz) / (2.0 * s2)
        total += math.exp(log_w_all[k] + rel)
    log_h_mode = d * (mu + m) - em - 0.5 * m * m / s2 - math.log(sigma) - _HALF_LOG_2PI
    return math.log(s) + log_h_mode + math.log(total)


@numba.njit(cache=True, nogil=True)
def log_integral_values_kernel(a, d, mu, sigma, z, log_w, starts, counts, limits, out):
    """Write ``log I_c`` of every centre into ``out`` (no derivatives)."""
    for i in range(a.shape[0]):
        out[i] = _one_value(a[i], d[i], mu[i], sigma[i], z, log_w, starts, counts, limits)


def log_integral_values(
    a: ArrayLike, d: ArrayLike, mu: ArrayLike, sigma: ArrayLike, n_nodes: int | str = "auto"
) -> NDArray:
    """Return ``log I_c`` per centre: :func:`log_integrals`' values, without derivatives.

    The same numbers to the last bit, for a third less work: what cross-validation
    (:mod:`bayes_sarcoma.checks.compare`) evaluates millions of times needs no gradient.

    Parameters
    ----------
    a, d, mu, sigma : array_like
        As in :func:`log_integrals` (broadcast together).
    n_nodes : int or "auto"
        Gauss-Hermite nodes per centre.

    Returns
    -------
    numpy.ndarray
        The broadcast shape of the inputs.

    Examples
    --------
    >>> value = log_integral_values([2.0], [1.0], [0.0], 0.3)
    >>> bool(value[0] == log_integrals([2.0], [1.0], [0.0], 0.3)[0][0])
    True
    """
    arrays = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (a, d, mu, sigma)))
    shape = arrays[0].shape
    # Copies: numba warns about the read-only views np.broadcast_arrays returns.
    a, d, mu, sigma = (np.array(x, order="C").ravel() for x in arrays)
    rules = rule_set(n_nodes)
    out = np.empty(a.size)
    n_workers = min(os.cpu_count() or 1, a.size // PARALLEL_MIN)
    if n_workers < 2:
        log_integral_values_kernel(a, d, mu, sigma, *rules, out)
        return out.reshape(shape)
    # The kernel releases the GIL: chunks run on all cores, each into its part of out.
    bounds = np.linspace(0, a.size, n_workers + 1).astype(int)
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        list(
            pool.map(
                lambda k: log_integral_values_kernel(
                    *(x[bounds[k] : bounds[k + 1]] for x in (a, d, mu, sigma)),
                    *rules,
                    out[bounds[k] : bounds[k + 1]],
                ),
                range(n_workers),
            )
        )
    return out.reshape(shape)


@numba.njit(cache=True)
def _draw_one(a, d, mu, sigma, rng):
    """One exact draw of ``r = u - mu``, ``p(u) ~ exp(D u - A e^u) Normal(u | mu, sigma)``."""
    m, c = mode_and_curvature(a, d, mu, sigma)
    s = 1.0 / math.sqrt(c)
    hm = _log_h(m, a, d, mu, sigma)
    u1, u2 = m - s, m + s
    g1 = d - a * math.exp(mu + u1) - u1 / (sigma * sigma)  # > 0 (strictly concave)
    g2 = d - a * math.exp(mu + u2) - u2 / (sigma * sigma)  # < 0
    z1 = u1 + (hm - _log_h(u1, a, d, mu, sigma)) / g1
    z2 = u2 + (hm - _log_h(u2, a, d, mu, sigma)) / g2
    left, middle, right = 1.0 / g1, z2 - z1, -1.0 / g2
    total = left + middle + right
    while True:
        pick = rng.random() * total
        if pick < left:
            u = z1 + math.log(rng.random()) / g1
            envelope = hm + g1 * (u - z1)
        elif pick < left + middle:
            u = z1 + (pick - left)
            envelope = hm
        else:
            u = z2 + math.log(rng.random()) / g2
            envelope = hm + g2 * (u - z2)
        if math.log(rng.random()) <= _log_h(u, a, d, mu, sigma) - envelope:
            return u


@numba.njit(cache=True, nogil=True)
def _draw_all(a, d, mu, sigma, rng):
    n_draws, n_centres = a.shape
    out = np.empty((n_draws, n_centres))
    for s in range(n_draws):
        for c in range(n_centres):
            out[s, c] = _draw_one(a[s, c], d[c], mu[s, c], sigma[s], rng)
    return out


def draw_conditional_effects(
    a: NDArray, d: NDArray, mu: NDArray, sigma: NDArray, random_seed: int | list[int]
) -> NDArray[np.float64]:
    """Draw each centre's effect from its exact conditional, once per posterior draw.

    Parameters
    ----------
    a : numpy.ndarray
        ``A_c`` per draw and centre, (draw, centre).
    d : numpy.ndarray
        ``D_c`` per centre.
    mu : numpy.ndarray
        The effects' mean per draw and centre, (draw, centre).
    sigma : numpy.ndarray
        The centre sd per draw.
    random_seed : int or list of int
        The same seed gives the same draws (anything :func:`numpy.random.default_rng` takes).

    Returns
    -------
    numpy.ndarray
        ``u - mu`` per draw and centre (the effect's deviation from its mean).
    """
    a, mu = np.ascontiguousarray(a, dtype=float), np.ascontiguousarray(mu, dtype=float)
    d, sigma = np.ascontiguousarray(d, dtype=float), np.ascontiguousarray(sigma, dtype=float)
    return _draw_all(a, d, mu, sigma, np.random.default_rng(random_seed))
