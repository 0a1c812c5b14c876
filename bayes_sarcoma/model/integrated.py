"""The centre effects integrated out, as a PyTensor operation (DESIGN.md section 3.2).

:class:`CenterIntegral` maps ``(A_c, D_c, mu_c, sigma)`` to ``log I_c`` per centre with the
kernel of :mod:`bayes_sarcoma.math.aghq`. It returns the value and its three derivatives
at once (one pass over the centres), and its gradient reuses those outputs, so a NUTS step
evaluates the quadrature once for the log-density and its gradient. It runs in Python
(:meth:`~CenterIntegral.perform`), in numba (nutpie's and PyMC's default backend) and, for
the optional JAX samplers, as a pure-JAX Gauss-Hermite sum (:func:`_jax_center_integral`).
"""

from __future__ import annotations

import hashlib
import inspect
import sys

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch import basic as numba_basic

from bayes_sarcoma.math import aghq

#: Nodes of the JAX path's fixed rule (JAX traces one shape, so the rule cannot vary by
#: centre; for large centre SDs and nearly empty centres the numba path is more accurate).
JAX_NODES = 31


class CenterIntegral(Op):
    """``log I_c = log Integral exp(D_c u - A_c e^u) Normal(u | mu_c, sigma) du`` per centre.

    Inputs ``A`` (centre), ``D`` (centre, data), ``mu`` (centre) and ``sigma`` (scalar);
    outputs ``log I`` and its derivatives in ``A``, ``mu`` and ``sigma`` (per centre).
    Only the first output is meant for graphs; the others carry its gradient.

    Parameters
    ----------
    n_nodes : int or "auto"
        Gauss-Hermite nodes per centre (``"auto"``: chosen per centre).
    """

    __props__ = ("n_nodes",)

    def __init__(self, n_nodes: int | str = "auto"):
        self.n_nodes = n_nodes

    def make_node(self, a, d, mu, sigma) -> Apply:
        """Build the node: three float vectors and a float scalar in, four vectors out."""
        a, d, mu = (pt.as_tensor_variable(x, dtype="float64") for x in (a, d, mu))
        sigma = pt.as_tensor_variable(sigma, dtype="float64")
        if (a.ndim, d.ndim, mu.ndim, sigma.ndim) != (1, 1, 1, 0):
            raise TypeError("CenterIntegral takes three vectors (A, D, mu) and a scalar sigma")
        outputs = [pt.dvector() for _ in range(4)]
        return Apply(self, [a, d, mu, sigma], outputs)

    def perform(self, node, inputs, output_storage) -> None:
        """Evaluate the kernel in Python (used by PyTensor's C/Python backends)."""
        a, d, mu, sigma = inputs
        results = aghq.log_integrals(a, d, mu, sigma, self.n_nodes)
        for storage, value in zip(output_storage, results[:4], strict=True):
            storage[0] = value

    def connection_pattern(self, node) -> list[list[bool]]:
        """``D`` (data) is disconnected from every output."""
        return [[True] * 4, [False] * 4, [True] * 4, [True] * 4]

    def pullback(self, inputs, outputs, output_grads):
        """Gradient of the first output from the three derivative outputs."""
        if not all(isinstance(g.type, DisconnectedType) for g in output_grads[1:]):
            raise NotImplementedError("CenterIntegral has no second derivatives")
        g = output_grads[0]
        _, d_a, d_mu, d_sigma = outputs
        return [g * d_a, DisconnectedType()(), g * d_mu, pt.sum(g * d_sigma)]


def center_log_integral(a, d, mu, sigma, n_nodes: int | str = "auto"):
    """Return the graph of ``log I_c`` per centre (see :class:`CenterIntegral`).

    ``mu`` may be one mean for all centres (a model without centre-level terms).
    """
    a = pt.as_tensor_variable(a)
    mu = pt.broadcast_to(pt.as_tensor_variable(mu), a.shape)
    return CenterIntegral(n_nodes)(a, d, mu, sigma)[0]


def _source_key() -> int:
    """Return a number that changes whenever the kernel's source changes.

    PyTensor caches compiled numba functions on disk by the operation's type and
    properties; this salt keeps a stale kernel from being reused after an upgrade.
    """
    text = inspect.getsource(aghq) + inspect.getsource(sys.modules[__name__])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:7], "big")


@numba_basic.register_funcify_default_op_cache_key(CenterIntegral)
def _numba_center_integral(op, node=None, **kwargs):
    z, log_w, starts, counts, limits = aghq.rule_set(op.n_nodes)
    kernel = aghq.log_integrals_kernel

    @numba_basic.numba_njit
    def center_integral(a, d, mu, sigma):
        sigmas = np.full(a.shape[0], sigma.item())
        value, d_a, d_mu, d_sigma, _ = kernel(a, d, mu, sigmas, z, log_w, starts, counts, limits)
        return value, d_a, d_mu, d_sigma

    return center_integral, _source_key()


def _register_jax() -> None:
    """Teach PyTensor's JAX backend the operation (only when JAX is installed)."""
    try:
        from pytensor.link.jax.dispatch import jax_funcify
    except ImportError:  # pragma: no cover - JAX is optional
        return

    @jax_funcify.register(CenterIntegral)
    def _jax(op, **kwargs):
        return _jax_center_integral(JAX_NODES if op.n_nodes == "auto" else int(op.n_nodes))


def _jax_center_integral(n_nodes: int):
    """Return a pure-JAX adaptive Gauss-Hermite sum with a fixed rule.

    JAX differentiates through the Newton steps too, so the gradient is that of the sum.
    """
    import jax
    import jax.numpy as jnp

    z_np, log_w_np = aghq.rule(n_nodes)

    def log_integral(a, d, mu, sigma):
        z, log_w = jnp.asarray(z_np), jnp.asarray(log_w_np)
        s2 = sigma**2
        # Newton steps on the mode equation from the Laplace guess (log-concave: converges).
        u = mu + jnp.minimum(s2 * d, jnp.log1p(d) - jnp.log(a))
        for _ in range(30):
            slope = d - a * jnp.exp(u) - (u - mu) / s2
            u = u + slope / (a * jnp.exp(u) + 1.0 / s2)
        c = a * jnp.exp(u) + 1.0 / s2
        s = 1.0 / jnp.sqrt(c)
        nodes = u[:, None] + s[:, None] * z
        log_h = (
            d[:, None] * nodes
            - a[:, None] * jnp.exp(nodes)
            - 0.5 * ((nodes - mu[:, None]) / sigma) ** 2
            - jnp.log(sigma)
            - 0.5 * jnp.log(2 * jnp.pi)
        )
        return jnp.log(s) + jax.scipy.special.logsumexp(log_h + log_w, axis=1)

    grad = jax.grad(lambda a, d, mu, sigma: jnp.sum(log_integral(a, d, mu, sigma)), (0, 2, 3))

    def center_integral(a, d, mu, sigma):
        g_a, g_mu, g_sigma = grad(a, d, mu, sigma)
        per_centre = jnp.full_like(a, g_sigma / a.shape[0])
        return log_integral(a, d, mu, sigma), g_a, g_mu, per_centre

    return center_integral


_register_jax()
