"""Gauss-Hermite quadrature over a normal centre effect.

A new centre's effect ``u ~ Normal(0, sd)`` enters a survival curve as ``exp(-exp(u) H)``;
its average over ``u`` is one Gauss-Hermite sum (probabilists' nodes, numpy's ``hermegauss``).
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Gauss-Hermite nodes used for a new centre's effect (exact to ~1e-12 for these integrands).
N_QUADRATURE_NODES = 32


@functools.lru_cache(maxsize=8)
def gauss_hermite_normal(n_nodes: int = N_QUADRATURE_NODES) -> tuple[NDArray, NDArray]:
    """Return nodes ``z`` and weights ``w`` with ``sum(w * f(z)) ~ E[f(Z)]``, ``Z ~ N(0, 1)``.

    Parameters
    ----------
    n_nodes : int
        Number of quadrature nodes.

    Returns
    -------
    z, w : numpy.ndarray
        Nodes and weights (the weights sum to one).

    Examples
    --------
    >>> z, w = gauss_hermite_normal(10)
    >>> round(float(np.sum(w * z**2)), 12)
    1.0
    """
    z, w = np.polynomial.hermite_e.hermegauss(int(n_nodes))
    w = w / w.sum()
    z.setflags(write=False)
    w.setflags(write=False)
    return z, w


def marginal_survival(
    cumulative_hazard: ArrayLike, center_sd: float, *, n_nodes: int = N_QUADRATURE_NODES
) -> NDArray[np.float64]:
    """Return ``E[exp(-exp(u) * H)]`` over ``u ~ Normal(0, center_sd)``, elementwise.

    Parameters
    ----------
    cumulative_hazard : array_like
        The cumulative hazard ``H`` at ``u = 0`` (any shape).
    center_sd : float
        The standard deviation of the centre effect.
    n_nodes : int
        Number of Gauss-Hermite nodes.

    Returns
    -------
    numpy.ndarray
        The survival probability integrated over a new centre's effect, same shape as ``H``.

    Examples
    --------
    >>> float(marginal_survival(0.5, 0.0)) == float(np.exp(-0.5))
    True
    """
    h = np.asarray(cumulative_hazard, dtype=float)
    z, w = gauss_hermite_normal(n_nodes)
    frailty = np.exp(float(center_sd) * z)
    return np.exp(-h[..., None] * frailty) @ w
