"""The command-line interface, ``bayes-sarcoma``.

Fit, predict, validate, sensitivity, report and the demo.

A layer of the package: it imports only from the layers below it (DEVELOPERS.md).
"""
