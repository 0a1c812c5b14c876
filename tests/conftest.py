"""Shared fixtures: small simulated registries and fits reused across test modules.

Fits are session-scoped and small (few patients, few draws) so the suite stays fast;
registries of one size share one compiled model across the three endpoints.
"""

from __future__ import annotations

import logging
import sys

import pytest

import bayes_sarcoma as bs

#: Sampler settings for the shared small fits.
FAST = dict(draws=300, tune=300, chains=2, progressbar=False)


@pytest.fixture(autouse=True)
def _close_figures():
    """Close the figures a test drew (matplotlib warns past 20 open; warnings are errors)."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


def pytest_configure(config):
    # PyMC logs "Sampling: [...]" etc. at INFO; keep test output readable.
    logging.getLogger("pymc").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def registry_small():
    """A 1500-patient simulated registry (seeded)."""
    return bs.simulate_registry(1500, random_seed=7)


@pytest.fixture(scope="session")
def os_model_and_fit(registry_small):
    """The OS model (exact endpoint) fitted on ``registry_small``."""
    model = bs.HierarchicalWeibull("OS")
    dt = model.fit(registry_small, random_seed=1, **FAST)
    return model, dt


@pytest.fixture(scope="session")
def lrfs_model_and_fit(registry_small):
    """The LRFS model fitted on ``registry_small`` (shares the OS compilation)."""
    model = bs.HierarchicalWeibull("LRFS")
    dt = model.fit(registry_small, random_seed=2, **FAST)
    return model, dt


@pytest.fixture(scope="session")
def mspline_table():
    """A 300-patient clustered table with a rise-then-fall (log-logistic) baseline hazard."""
    from flexible_hazards import loglogistic_table

    return loglogistic_table(300, n_centers=10, random_seed=1)


@pytest.fixture(scope="session")
def mspline_model_and_fit(mspline_table):
    """An M-spline model (6 basis functions) fitted on ``mspline_table``."""
    import warnings

    from bayes_sarcoma.model.hierarchical import SamplerWarning

    model = bs.HierarchicalWeibull(
        time="time",
        event="event",
        terms=["treated", "age"],
        cluster="center",
        treatment="treated",
        baseline="mspline",
        n_basis=6,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplerWarning)
        dt = model.fit(
            mspline_table, random_seed=3, draws=150, tune=300, chains=2, progressbar=False
        )
    return model, dt
