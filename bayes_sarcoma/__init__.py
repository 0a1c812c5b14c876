"""Bayesian hierarchical Weibull survival models for multi-centre cancer registries."""

__version__ = "0.1.0"
