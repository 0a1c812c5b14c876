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


#: The small data set of DESIGN.md section 3.3 (``registry_factory.small_binary_table``).
SMALL_SPEC = dict(time="months", event="died", cluster="site", terms=["arm"], id_column="subject")
#: Prior sets compared on it: the defaults, BUGS-style vague priors, the former default
#: Normal(0, 1) on every coefficient, and a sceptical Normal(0, 0.2) on the arm's log HR.
SMALL_PRIORS = {
    "default": None,
    "vague": "vague",
    "old default": {"beta": {"dist": "Normal", "mu": 0.0, "sigma": 1.0}},
    "sceptical": {"beta:arm": {"dist": "Normal", "mu": 0.0, "sigma": 0.2}},
}


def fit_small(data, priors, *, random_seed=1, chains=2):
    """Fit ``SMALL_SPEC`` on ``data`` under one of ``SMALL_PRIORS``' values."""
    import warnings

    from bayes_sarcoma.model.specs import load_prior_set

    if isinstance(priors, str):
        priors = load_prior_set(priors).priors
    model = bs.HierarchicalWeibull(**SMALL_SPEC, priors=priors)
    with warnings.catch_warnings():
        # Gamma(0.001, 0.001) on the precision gives a few divergences on such data.
        warnings.simplefilter("ignore", bs.SamplerWarning)
        return model.fit(
            data, random_seed=random_seed, draws=1000, tune=1000, chains=chains, progressbar=False
        )


@pytest.fixture(scope="session")
def small_binary_fits():
    """Fits of 100 patients in 50 centres (true log HR -2 for ``arm``), per prior set."""
    from registry_factory import small_binary_table

    data = small_binary_table(random_seed=0)
    return data, {name: fit_small(data, priors) for name, priors in SMALL_PRIORS.items()}
