"""Numerics with no PyMC.

Weibull baseline formulas, M-spline and piecewise-constant baselines (basis matrices and
closed-form cumulative hazards), Gauss-Hermite quadrature over a centre effect, the Weibull PH
maximum-likelihood fit used for starting values.

A layer of the package: it imports only from the layers below it (DEVELOPERS.md).
"""
