"""Generic inference machinery that the model drives.

Compiled-model cache, samplers (nutpie, PyMC) and sampler diagnostics.

A layer of the package: it imports only from the layers below it (DEVELOPERS.md).
"""
