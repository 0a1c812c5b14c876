"""Registries drawn from a known truth.

The NETSARC-like simulator, the exact standardized truths and the simulator's calibration.

A layer of the package: it imports only from the layers below it (DEVELOPERS.md).
"""
