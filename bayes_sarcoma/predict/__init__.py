"""Verbs on a fit.

Patient survival curves, standardized contrasts, hazard ratios and effects, centre profiles.

A layer of the package: it imports only from the layers below it (DEVELOPERS.md).
"""
