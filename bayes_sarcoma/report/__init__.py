"""For people.

Figures and the HTML analysis report.

A layer of the package: it imports only from the layers below it (DEVELOPERS.md).
"""
