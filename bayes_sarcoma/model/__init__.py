"""The statistical model.

Priors, declarative specs, the PyMC graph, HierarchicalWeibull, the fit's DataTree and
its files.

A layer of the package: it imports only from the layers below it (DEVELOPERS.md).
"""
