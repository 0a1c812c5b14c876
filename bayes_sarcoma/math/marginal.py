"""Integrating a new centre's effect out: Gauss-Hermite nodes, marginal survival, quantiles.

For a patient of a centre not in the data the survival is averaged over the centre
effect ``u ~ Normal(0, center_sd)``: ``S(t) = E_u[exp(-exp(u) H_0(t))]``, one integral
per posterior draw. The kernels here work on NumPy arrays with the draws first:

- :func:`nodes_for` chooses how many Gauss-Hermite nodes reach an error below ``tol``
  at the largest centre sd of the draws, and :func:`quadrature` gives them
  (:func:`bayes_sarcoma.math.gauss_hermite.gauss_hermite_normal`, tiny weights dropped);
- :func:`marginal_log_survival` is ``log S`` and, for the marginal hazard, the mean
  frailty of the survivors ``E[exp(u) | T > t]``;
- :func:`log_cumulative_hazard_quantile` solves ``E_u[exp(-exp(u) c)] = 1 - q`` for
  ``c`` once per draw, with :func:`solve_decreasing`, a vectorised safeguarded Newton
  search; the marginal quantile of a patient is then ``(c_q exp(-eta))**(1/alpha)``.

:mod:`bayes_sarcoma.predict.survival` and :mod:`bayes_sarcoma.predict.standardize` build their
``center="new"`` predictions on them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from bayes_sarcoma.math.gauss_hermite import gauss_hermite_normal

#: Quadrature weights below this are dropped (their total is < 1e-14).
_MIN_WEIGHT = 1e-16


@functools.lru_cache(maxsize=64)
def _nodes_for(sd: float, tol: float) -> int:
    h = np.logspace(-6, 2.5, 60)[:, None]

    def marginal(n):
        z, w = gauss_hermite_normal(n)
        return np.exp(-np.exp(sd * z) * h) @ w

    for n in (8, 12, 16, 24, 32, 48, 64):
        if np.max(np.abs(marginal(n) - marginal(2 * n))) < tol:
            return n
    return 128


def nodes_for(center_sd: ArrayLike, *, tol: float = 1e-10) -> int:
    """Return how many Gauss-Hermite nodes integrate a new centre's effect to ``tol``.

    The quadrature error grows with the centre sd, so the node count is chosen for the
    largest sd among the draws (rounded up to 0.05): the smallest of 8, 12, 16, 24, 32,
    48, 64 whose survival ``E_u[exp(-exp(u) H)]`` differs from the rule with twice as many
    nodes by less than ``tol`` for every ``H`` in [1e-6, 300] (else 128).

    Examples
    --------
    >>> nodes_for(0.15), nodes_for(0.5)
    (8, 24)
    """
    sd = float(np.ceil(np.max(center_sd) * 20.0) / 20.0)
    return _nodes_for(sd, float(tol))


def quadrature(n_nodes: int) -> tuple[NDArray, NDArray]:
    """Return Gauss-Hermite nodes and weights for ``Normal(0, 1)``, tiny weights dropped.

    Examples
    --------
    >>> z, w = quadrature(32)
    >>> float(w.sum())
    1.0
    """
    z, w = gauss_hermite_normal(n_nodes)
    keep = w > _MIN_WEIGHT
    return z[keep], w[keep] / w[keep].sum()


def marginal_log_survival(
    log_h0: np.ndarray, offsets: np.ndarray, w: np.ndarray, *, frailty: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Return ``log E_u[exp(-exp(u) H0)]`` and, optionally, ``E[exp(u) | T > t]``.

    ``log_h0`` is ``log H0`` with draws first (``(s, ...)``), ``offsets`` the centre
    effects ``(s, K)`` at the quadrature nodes and ``w`` their weights ``(K,)``. The mean
    frailty of the survivors gives the marginal hazard ``h0(t) E[exp(u) | T > t]``. The
    sum is taken in linear space (one ``exp`` per node); where the survival underflows
    (far tails) it is redone in log space.
    """
    extra = (None,) * (log_h0.ndim - 1)
    e = np.exp(offsets)[(slice(None), *extra, slice(None))]
    with np.errstate(over="ignore"):
        uh = np.exp(log_h0)[..., None] * e
    surv = np.exp(-uh)
    s = surv @ w
    with np.errstate(divide="ignore"):
        log_s = np.log(s)
    mean_frailty = None
    if frailty:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_frailty = (surv * e) @ w / s
    tiny = s < 1e-250
    if tiny.any():
        terms = np.log(w) - uh[tiny]
        with np.errstate(invalid="ignore"):
            log_s[tiny] = special.logsumexp(terms, axis=-1)
            if frailty:
                p = np.exp(terms - log_s[tiny][:, None])
                mean_frailty[tiny] = np.sum(p * np.broadcast_to(e, uh.shape)[tiny], axis=-1)
    return log_s, mean_frailty


def solve_decreasing(
    fun: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    lo: np.ndarray,
    hi: np.ndarray,
    *,
    xtol: float = 1e-12,
    max_iter: int = 200,
) -> np.ndarray:
    """Return the root of decreasing functions on brackets, elementwise (vectorised).

    ``fun(x)`` returns ``(f, df)`` with ``f(lo) >= 0 >= f(hi)``. Newton steps are taken
    when they stay inside the current bracket, bisection otherwise (hand-written because
    ``scipy.optimize`` root finders solve one scalar equation at a time, and here there is
    one per posterior draw).

    Examples
    --------
    >>> root = solve_decreasing(lambda x: (2.0 - x**2, -2 * x), np.array([0.0]), np.array([2.0]))
    >>> round(float(root[0]), 12)
    1.414213562373
    """
    lo = np.array(lo, dtype=float)
    hi = np.array(hi, dtype=float)
    x = 0.5 * (lo + hi)
    for _ in range(max_iter):
        f, df = fun(x)
        lo = np.where(f > 0, x, lo)
        hi = np.where(f < 0, x, hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = np.where(f == 0, x, x - f / df)
        tol = xtol * (1.0 + np.abs(x))
        small = np.abs(newton - x) <= tol
        inside = (newton > lo) & (newton < hi)
        done = small | (hi - lo <= tol)
        x = np.where(small | inside, newton, 0.5 * (lo + hi))
        if np.all(done):
            break
    return x


def log_cumulative_hazard_quantile(q: np.ndarray, offsets: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Return ``log c`` solving ``sum_k w_k exp(-exp(offset_k) c) = 1 - q``, per draw.

    ``q`` is ``(Q,)``, ``offsets`` ``(s, K)``; returns ``(s, Q)``. With a single zero
    offset this is ``log(-log(1 - q))``, the Weibull closed form.
    """
    target = np.log1p(-q)[None, :]
    base = np.log(-target)
    off = offsets[:, None, :]
    lo = base - off.max(axis=-1)
    hi = base - off.min(axis=-1)

    def fun(c):
        log_s, mean_frailty = marginal_log_survival(c, offsets, w, frailty=True)
        return log_s - target, -np.exp(c) * mean_frailty

    if offsets.shape[1] == 1 and np.all(offsets == 0):
        return np.broadcast_to(base, (offsets.shape[0], len(q))).copy()
    return solve_decreasing(fun, lo, hi)
