"""The patient table.

Column schema, validation rules, endpoints from dates, covariate coding and the arrays a
model needs.

A layer of the package: it imports only from the layers below it (DEVELOPERS.md).
"""
