"""Many fits.

Prior-sensitivity grids and simulation-based calibration.

A layer of the package: it imports only from the layers below it (DEVELOPERS.md).
"""
