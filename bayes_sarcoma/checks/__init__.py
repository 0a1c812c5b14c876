"""Checks of a fit.

Posterior predictive Kaplan-Meier checks, LOO and model comparison, power-scaling and
prior predictive checks.

A layer of the package: it imports only from the layers below it (DEVELOPERS.md).
"""
