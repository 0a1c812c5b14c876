"""M-spline baseline hazards (rstanarm's ``stan_surv``, survextrap), in NumPy.

The flexible baselines of DESIGN.md section 3.1. Knots ``0 = k_0 < k_1 < ... < k_m = b``
(boundary knots at 0 and the largest follow-up time ``b``, interior knots at quantiles of the
event times) and a degree ``d`` define ``K = m + d`` M-splines ``M_1 ... M_K`` (Ramsay 1988):
piecewise polynomials of degree ``d``, non-negative, each integrating to 1 over ``[0, b]``.
The baseline hazard is a non-negative combination of them::

    h0(t) = sum_k c_k M_k(t),        c_k >= 0  (c = exp(gamma) * simplex, as rstanarm)
    H0(t) = sum_k c_k I_k(t),        I_k(t) = integral_0^t M_k(s) ds  (I-splines)
    h(t) = h0(t) exp(eta),  H(t) = H0(t) exp(eta),  S(t) = exp(-H(t))

Each ``I_k`` rises from 0 to 1 over ``[0, b]``, so ``H0(b) = sum_k c_k``: with
``c = exp(gamma) * p``, ``p`` on the simplex, ``exp(gamma)`` is the baseline cumulative hazard
at the end of follow-up and ``p`` says how it is spread over time. The cumulative hazard is in
closed form (no quadrature), and any ``c >= 0`` gives a valid hazard.

**Piecewise constant.** Degree 0 is the ``"piecewise"`` baseline: ``M_k`` is the indicator of
``[k_(k-1), k_k)`` divided by its width, so ``h0 = c_k / (k_k - k_(k-1))`` in interval ``k``.

**Knots** (:func:`default_knots`). As rstanarm: ``n_basis - degree - 1`` interior knots at
equally spaced quantiles of the *event* times (censored times excluded) on the *natural* time
scale (rstanarm's ``get_iknots``; R's default quantile type 7 is NumPy's ``"linear"``), the
boundary knots at 0 and the largest follow-up time (event or censoring). rstanarm's default
is ``n_basis = 6`` cubic M-splines (``df = 6``: two interior knots); survextrap also places
knots at event-time quantiles, with ten basis functions.

**Beyond the last knot** the hazard stays at its value at ``b`` (survextrap's rule; rstanarm's
basis is built on ``[0, b]`` and sets no rule past it)::

    M_k(t) = M_k(b),    I_k(t) = I_k(b) + M_k(b) (t - b)      for t > b

so the cumulative hazard continues linearly and :func:`basis` and :func:`integrated_basis`
stay each other's derivative and integral everywhere. For ``d >= 1`` only ``M_K`` is non-zero
at ``b``, so the hazard past follow-up is ``c_K (d + 1) / (b - k_(m-1)) exp(eta)``, set by the
last coefficient alone. Continuing the last cubic piece instead can turn the hazard negative
or make it explode a few months past follow-up; a constant keeps it positive and continuous
and claims no more than the data know. Predictions past ``b`` (long-horizon survival, RMST)
rest on this assumption and should say so.

**In a PyMC model, basis matrices are data and coefficients are parameters.** A data set's
times do not change while sampling, so ``basis(time, knots)`` and ``integrated_basis(time,
knots)`` (and ``integrated_basis(entry, knots)`` with delayed entry) are evaluated once, here,
and enter the graph as constant ``(n, K)`` matrices. The graph does dot products only::

    coef = pt.exp(gamma) * p                        # p ~ Dirichlet: the (K,) simplex
    log_h0 = pt.log(pt.dot(M, coef))                # M = basis(time, knots), data
    H0 = pt.dot(I, coef) - pt.dot(I_entry, coef)    # I = integrated_basis(time, knots), data
    loglik = event * (log_h0 + eta) - pt.exp(eta) * H0

No spline is evaluated inside the graph, so gradients are exact and cheap; the functions here
then turn posterior draws of ``coef`` into hazards, cumulative hazards and survival curves.

**Implementation.** :class:`scipy.interpolate.BSpline` evaluates the B-splines ``B_k`` of the
clamped knot vector ``t`` (boundary knots repeated ``d + 1`` times) and, by
``BSpline.antiderivative``, their exact integrals. Written here: Ramsay's normalisation
``M_k = (d + 1) / (t_(k+d+1) - t_k) B_k`` (scipy has B-splines only), the clamped knot vector,
the constant continuation past ``b`` (scipy offers NaN or polynomial continuation only) and
the validation of knots, times and coefficients.

**Broadcasting.** :func:`basis` and :func:`integrated_basis` return ``t.shape + (K,)``. In
:func:`hazard` and friends ``coef`` has the basis on its last axis; its other axes broadcast
with ``t`` and ``eta``: for draws x patients pass ``coef[:, None, :]``, ``eta`` of shape
``(draws, patients)`` and ``t`` of shape ``(patients,)``.

References: Ramsay, J. O. (1988), Monotone regression splines in action, *Statistical
Science* 3(4), 425-441; Brilleman et al. (2020), Bayesian survival analysis using the
rstanarm R package, arXiv:2002.09633; Jackson (2023), survextrap, *BMC Medical Research
Methodology* 23, 282.
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.interpolate import BSpline

#: rstanarm's default number of M-spline basis functions (``basehaz_ops = list(df = 6)``).
N_BASIS = 6
#: rstanarm's default degree (cubic M-splines).
DEGREE = 3


def _check_degree(degree: int) -> int:
    if isinstance(degree, bool) or not isinstance(degree, numbers.Integral) or degree < 0:
        raise ValueError(f"degree must be a non-negative integer, got {degree!r}")
    return int(degree)


def _check_knots(knots: ArrayLike) -> NDArray[np.float64]:
    k = np.asarray(knots, dtype=float)
    if k.ndim != 1 or k.size < 2:
        raise ValueError(
            "knots must be a 1-D array with at least the two boundary knots [0, ..., b], "
            f"got shape {k.shape}"
        )
    if not np.all(np.isfinite(k)):
        raise ValueError(f"knots must be finite, got {k}")
    if k[0] != 0.0:
        raise ValueError(f"the first (lower boundary) knot must be 0, the time origin; got {k[0]}")
    if np.any(np.diff(k) <= 0):
        raise ValueError(f"knots must be strictly increasing, got {k}")
    return k


def _check_times(t: ArrayLike) -> NDArray[np.float64]:
    t = np.asarray(t, dtype=float)
    if np.any(t < 0):
        raise ValueError(f"times must be non-negative, got minimum {np.nanmin(t)}")
    return t


def _check_follow_up(
    times: ArrayLike, events: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    times = np.asarray(times, dtype=float)
    events = np.asarray(events)
    if times.ndim != 1 or events.shape != times.shape or times.size == 0:
        raise ValueError(
            f"times and events must be 1-D of the same non-zero length, got {times.shape} "
            f"and {events.shape}"
        )
    if not np.all(np.isfinite(times)) or np.any(times < 0):
        raise ValueError("times must be finite and non-negative")
    if not np.isin(events, (0, 1)).all():
        raise ValueError("events must be 0/1 (or False/True) event flags")
    return times, events == 1


def _clamped(knots: NDArray[np.float64], degree: int) -> NDArray[np.float64]:
    """Return the B-spline knot vector: both boundary knots repeated ``degree + 1`` times."""
    return np.concatenate([np.repeat(knots[0], degree), knots, np.repeat(knots[-1], degree)])


def n_basis(knots: ArrayLike, degree: int = DEGREE) -> int:
    """Return the number of M-spline basis functions, ``len(knots) - 2 + degree + 1``.

    Examples
    --------
    >>> n_basis([0.0, 5.0, 12.0, 60.0], degree=3)
    6
    >>> n_basis([0.0, 5.0, 12.0, 60.0], degree=0)
    3
    """
    return _check_knots(knots).size + _check_degree(degree) - 1


def default_knots(
    times: ArrayLike,
    events: ArrayLike,
    *,
    n_basis: int = N_BASIS,
    degree: int = DEGREE,
) -> NDArray[np.float64]:
    """Return rstanarm's default knots: 0, quantiles of the event times, the last follow-up.

    Parameters
    ----------
    times : array_like
        Follow-up times (events and censorings), non-negative, 1-D.
    events : array_like
        Event flags (1 or ``True`` for an event, 0 for a censoring), same length.
    n_basis : int, default 6
        Number of basis functions; ``n_basis - degree - 1`` interior knots are placed at
        equally spaced quantiles (``1/(m+1), ..., m/(m+1)``, NumPy's default linear rule, R's
        type 7) of the event times on the natural time scale. rstanarm's ``df``.
    degree : int, default 3
        Spline degree; 0 gives the piecewise-constant baseline with ``n_basis`` intervals.

    Returns
    -------
    ndarray
        The knots ``[0, interior..., max(times)]``, strictly increasing.

    Raises
    ------
    ValueError
        On bad shapes, negative or non-finite times, flags other than 0/1, no events, or
        event times with too few distinct values for ``n_basis`` (tied quantiles).

    Examples
    --------
    Seven events and one patient censored at 24 months; six cubic M-splines (rstanarm's
    default) need two interior knots, at the event times' terciles:

    >>> times = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 24.0]
    >>> events = [1, 1, 1, 1, 1, 1, 1, 0]
    >>> default_knots(times, events).tolist()
    [0.0, 3.0, 5.0, 24.0]
    >>> default_knots(times, events, n_basis=4, degree=0).tolist()  # piecewise, 4 intervals
    [0.0, 2.5, 4.0, 5.5, 24.0]
    """
    degree = _check_degree(degree)
    times, events = _check_follow_up(times, events)
    if isinstance(n_basis, bool) or not isinstance(n_basis, numbers.Integral):
        raise ValueError(f"n_basis must be an integer, got {n_basis!r}")
    n_interior = int(n_basis) - degree - 1
    if n_interior < 0:
        raise ValueError(f"n_basis must be at least degree + 1 = {degree + 1}, got {n_basis}")
    event_times = times[events]
    if event_times.size == 0:
        raise ValueError("no events: knots go at quantiles of event times; pass knots yourself")
    upper = times.max()
    probs = np.arange(1, n_interior + 1) / (n_interior + 1)
    out = np.concatenate([[0.0], np.quantile(event_times, probs), [upper]])
    if np.any(np.diff(out) <= 0):
        raise ValueError(
            f"event-time quantiles give tied knots {out.tolist()}: too few distinct event "
            f"times for n_basis={n_basis}; use fewer basis functions or give knots yourself"
        )
    return out


def _splines(knots: ArrayLike, degree: int) -> tuple[BSpline, NDArray[np.float64]]:
    """Return the vector-valued M-spline basis as one BSpline and the knots, checked."""
    degree = _check_degree(degree)
    k = _check_knots(knots)
    t = _clamped(k, degree)
    n = k.size + degree - 1
    scale = (degree + 1) / (t[degree + 1 : degree + 1 + n] - t[:n])
    return BSpline(t, np.diag(scale), degree, extrapolate=False), k


def basis(t: ArrayLike, knots: ArrayLike, degree: int = DEGREE) -> NDArray[np.float64]:
    """Return the M-spline basis ``M_k(t)``, shape ``t.shape + (K,)``.

    Each ``M_k`` is non-negative and integrates to 1 over ``[0, b]``; past the last knot ``b``
    it stays at ``M_k(b)`` (the module's extrapolation rule). Degree 0 gives the normalised
    indicators of the intervals between knots (left-closed; the last one also holds ``b``).

    Parameters
    ----------
    t : array_like
        Non-negative times, any shape.
    knots : array_like
        ``[0, interior..., b]``, strictly increasing (:func:`default_knots`).
    degree : int, default 3
        Spline degree.

    Examples
    --------
    >>> basis([0.5, 3.0, 7.0], [0.0, 2.0, 5.0], degree=0).tolist()
    [[0.5, 0.0], [0.0, 0.3333333333333333], [0.0, 0.3333333333333333]]
    >>> b = basis(np.linspace(0, 12, 5), [0.0, 4.0, 10.0])
    >>> b.shape, bool((b >= 0).all())
    ((5, 5), True)
    """
    spline, k = _splines(knots, degree)
    t = _check_times(t)
    return spline(np.minimum(t, k[-1]))


def integrated_basis(t: ArrayLike, knots: ArrayLike, degree: int = DEGREE) -> NDArray[np.float64]:
    """Return the I-splines ``I_k(t) = integral_0^t M_k(s) ds``, shape ``t.shape + (K,)``.

    On ``[0, b]`` each ``I_k`` is non-decreasing, between 0 and 1, and equal to 1 from the end
    of ``M_k``'s support on. Past ``b`` it grows linearly, ``I_k(b) + M_k(b) (t - b)``,
    consistently with :func:`basis` (only the last one grows when ``degree >= 1``).

    Parameters
    ----------
    t : array_like
        Non-negative times, any shape.
    knots : array_like
        ``[0, interior..., b]``, strictly increasing (:func:`default_knots`).
    degree : int, default 3
        Spline degree.

    Examples
    --------
    >>> integrated_basis([1.0, 2.0, 5.0, 8.0], [0.0, 2.0, 5.0], degree=0).tolist()
    [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [1.0, 2.0]]
    >>> bool(np.allclose(integrated_basis(10.0, [0.0, 4.0, 10.0]), 1.0))
    True
    """
    spline, k = _splines(knots, degree)
    t = _check_times(t)
    b = k[-1]
    x = np.minimum(t, b)[..., None]
    n = spline.c.shape[0]
    start, end = spline.t[:n], spline.t[spline.k + 1 : spline.k + 1 + n]  # supports of M_k
    ramp = np.clip(spline.antiderivative()(x[..., 0]), 0.0, 1.0)
    inside = np.where(x >= end, 1.0, np.where(x <= start, 0.0, ramp))  # exact, not rounded
    return inside + np.maximum(t - b, 0.0)[..., None] * spline(b)


def constant_hazard_coef(knots: ArrayLike, degree: int = DEGREE) -> NDArray[np.float64]:
    """Return the simplex ``p`` whose baseline hazard is constant, ``sum_k p_k M_k = 1 / b``.

    B-splines sum to 1, and ``B_k = w_k M_k`` with ``w_k = (t_(k+d+1) - t_k) / (d + 1)``, so
    ``p = w / b``: a constant hazard ``1 / b`` on ``[0, b]`` and, by the extrapolation rule,
    after it (``H0(t) = t / b``). A natural centre for a prior on the simplex (survextrap
    centres its prior on it); with ``coef = exp(gamma) * p`` the hazard is ``exp(gamma) / b``.

    Examples
    --------
    >>> k = [0.0, 4.0, 10.0, 24.0]
    >>> p = constant_hazard_coef(k)
    >>> round(float(p.sum()), 12)
    1.0
    >>> np.round(basis([0.0, 7.0, 24.0, 50.0], k) @ p * 24.0, 12).tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    degree = _check_degree(degree)
    k = _check_knots(knots)
    t = _clamped(k, degree)
    n = k.size + degree - 1
    return (t[degree + 1 : degree + 1 + n] - t[:n]) / ((degree + 1) * k[-1])


def _combine(values: NDArray[np.float64], coef: ArrayLike) -> NDArray[np.float64]:
    """Return ``sum_k coef_k values_k`` over the last axis, broadcasting the others."""
    coef = np.asarray(coef, dtype=float)
    if coef.ndim == 0 or coef.shape[-1] != values.shape[-1]:
        raise ValueError(
            f"coef must have the {values.shape[-1]} basis functions on its last axis, "
            f"got shape {coef.shape}"
        )
    if np.any(coef < 0):
        raise ValueError("coef must be non-negative (exp(gamma) times a simplex)")
    return np.einsum("...k,...k->...", values, coef)


def baseline_hazard(
    t: ArrayLike, coef: ArrayLike, *, knots: ArrayLike, degree: int = DEGREE
) -> NDArray[np.float64]:
    """Return ``h0(t) = sum_k coef_k M_k(t)`` (``coef`` on its last axis)."""
    return _combine(basis(t, knots, degree), coef)


def baseline_cumulative_hazard(
    t: ArrayLike, coef: ArrayLike, *, knots: ArrayLike, degree: int = DEGREE
) -> NDArray[np.float64]:
    """Return ``H0(t) = sum_k coef_k I_k(t)`` (``coef`` on its last axis)."""
    return _combine(integrated_basis(t, knots, degree), coef)


def hazard(
    t: ArrayLike, eta: ArrayLike, coef: ArrayLike, *, knots: ArrayLike, degree: int = DEGREE
) -> NDArray[np.float64]:
    """Return the hazard ``h(t) = exp(eta) * sum_k coef_k M_k(t)``.

    Parameters
    ----------
    t : array_like
        Non-negative times.
    eta : array_like
        Linear predictor (without the baseline's scale, which is in ``coef``).
    coef : array_like
        Non-negative coefficients, the ``K`` basis functions on the last axis; rstanarm's
        ``exp(gamma) * simplex``. The other axes broadcast with ``t`` and ``eta``.
    knots : array_like
        ``[0, interior..., b]`` (:func:`default_knots`).
    degree : int, default 3
        Spline degree (0: piecewise constant).

    Examples
    --------
    Piecewise constant, rates 0.1 on ``[0, 2)`` and 0.02 on ``[2, 5]`` (and after):

    >>> coef = np.array([0.1 * 2, 0.02 * 3])
    >>> np.round(hazard([1.0, 3.0, 9.0], 0.0, coef, knots=[0.0, 2.0, 5.0], degree=0), 12)
    array([0.1 , 0.02, 0.02])
    """
    return np.exp(np.asarray(eta, dtype=float)) * baseline_hazard(
        t, coef, knots=knots, degree=degree
    )


def cumulative_hazard(
    t: ArrayLike, eta: ArrayLike, coef: ArrayLike, *, knots: ArrayLike, degree: int = DEGREE
) -> NDArray[np.float64]:
    """Return the cumulative hazard ``H(t) = exp(eta) * sum_k coef_k I_k(t)``.

    Arguments as :func:`hazard`. Past the last knot ``b`` it grows linearly with slope
    ``h(b)``.

    Examples
    --------
    >>> coef = np.array([0.1 * 2, 0.02 * 3])
    >>> np.round(cumulative_hazard([1.0, 3.0, 9.0], 0.0, coef, knots=[0, 2, 5], degree=0), 12)
    array([0.1 , 0.22, 0.34])
    """
    return np.exp(np.asarray(eta, dtype=float)) * baseline_cumulative_hazard(
        t, coef, knots=knots, degree=degree
    )


def survival(
    t: ArrayLike, eta: ArrayLike, coef: ArrayLike, *, knots: ArrayLike, degree: int = DEGREE
) -> NDArray[np.float64]:
    """Return the survival function ``S(t) = exp(-H(t))`` (arguments as :func:`hazard`).

    Examples
    --------
    >>> k = [0.0, 6.0, 15.0, 40.0]
    >>> coef = np.log(2) * constant_hazard_coef(k)  # H0(40) = log 2: the median is 40
    >>> np.round(survival([0.0, 40.0, 80.0], 0.0, coef, knots=k), 12)
    array([1.  , 0.5 , 0.25])
    """
    return np.exp(-cumulative_hazard(t, eta, coef, knots=knots, degree=degree))


def log_likelihood(
    time: ArrayLike,
    event: ArrayLike,
    eta: ArrayLike,
    coef: ArrayLike,
    *,
    knots: ArrayLike,
    degree: int = DEGREE,
    entry: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Return each patient's log-likelihood (DESIGN.md section 3.1).

    ``d * (log h0(t) + eta) - exp(eta) * (H0(t) - H0(entry))``, the entry term only with
    delayed entry. The NumPy reference for the model's graph, which does the same with the
    basis matrices as data (module docstring). An event where ``h0 = 0`` gives ``-inf``.

    Examples
    --------
    >>> coef = np.array([0.2, 0.06])
    >>> ll = log_likelihood([1.0, 9.0], [1, 0], 0.0, coef, knots=[0, 2, 5], degree=0)
    >>> np.round(ll, 12).tolist() == np.round([np.log(0.1) - 0.1, -0.34], 12).tolist()
    True
    """
    event = np.asarray(event, dtype=float)
    eta = np.asarray(eta, dtype=float)
    h0 = baseline_hazard(time, coef, knots=knots, degree=degree)
    H0 = baseline_cumulative_hazard(time, coef, knots=knots, degree=degree)
    if entry is not None:
        H0 = H0 - baseline_cumulative_hazard(entry, coef, knots=knots, degree=degree)
    with np.errstate(divide="ignore"):
        log_h = np.where(event > 0, np.log(h0) + eta, 0.0)
    return event * log_h - np.exp(eta) * H0
