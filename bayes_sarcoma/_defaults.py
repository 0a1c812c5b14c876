"""Defaults shared by every layer (one value each, DESIGN.md section 8).

``CI_PROB`` is the probability of every credible interval the package prints, tabulates
or draws unless the caller asks for another: Python functions (``ci_prob=``), the CLI
(``--ci-prob``) and the report. Tables carry it in ``attrs["ci_prob"]`` and in their
headers; figures state it in a label.
"""

#: Probability of the equal-tailed credible intervals (a 95% interval).
CI_PROB = 0.95
