"""Reproducibility: the same random_seed gives the same posterior, bit for bit, for each sampler.

Also: however many cores the chains run on, in a fresh Python process, after a save and
a load, and for the simulator and the prior draws. See docs/reliability.md for what is and
is not guaranteed (one machine and one set of library versions).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytensor
import pytest
import xarray as xr

import bayes_sarcoma as bs
from bayes_sarcoma.inference import sampling
from bayes_sarcoma.math import weibull
from bayes_sarcoma.model.io import DataMismatchError, load, save

#: Attributes that legitimately differ between two identical fits (wall-clock timings).
TIMINGS = ("compile_seconds", "sampling_seconds")
SMALL = dict(draws=150, tune=150, chains=2, progressbar=False)
SPEC = dict(time="followup", event="died", cluster="site", terms=["dose", "arm"])


def table(n: int = 200, random_seed: int = 3) -> pd.DataFrame:
    """A small clustered survival table simulated from the model (12 sites)."""
    rng = np.random.default_rng(random_seed)
    site = rng.integers(0, 12, n)
    dose = rng.normal(50, 10, n)
    arm = rng.integers(0, 2, n)
    eta = -4.0 + 0.03 * dose - 0.5 * arm + rng.normal(0, 0.4, 12)[site]
    t = weibull.sample_times(rng, eta, 1.3)
    c = rng.uniform(5, 60, n)
    return pd.DataFrame(
        {
            "subject": [f"S{i:03d}" for i in range(n)],
            "site": [f"site-{k:02d}" for k in site],
            "dose": dose,
            "arm": arm,
            "followup": np.minimum(t, c),
            "died": (t <= c).astype(int),
        }
    )


def fit(sampler: str = "nutpie", random_seed: int = 11, **kwargs) -> xr.DataTree:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # jax / numpyro internals
        warnings.simplefilter("ignore", bs.SamplerWarning)  # a divergence is not our topic
        return bs.HierarchicalWeibull(**SPEC).fit(
            table(), sampler=sampler, random_seed=random_seed, **SMALL, **kwargs
        )


def assert_identical(a: xr.DataTree, b: xr.DataTree) -> None:
    """Every group's every array equal bit for bit; attributes equal except timings."""
    assert set(a.children) == set(b.children)
    for group in a.children:
        da, db = a[group].dataset, b[group].dataset
        assert set(da.data_vars) == set(db.data_vars), group
        for name in da.data_vars:
            np.testing.assert_array_equal(da[name].to_numpy(), db[name].to_numpy(), err_msg=name)
        assert da.coords.keys() == db.coords.keys()
    strip = lambda attrs: {k: v for k, v in attrs.items() if k not in TIMINGS}  # noqa: E731
    assert strip(a.attrs) == strip(b.attrs)


@pytest.mark.parametrize(
    "sampler",
    [
        "nutpie",
        "pymc",
        # JAX compiles the model afresh for every fit: ~30 s each on a quiet machine.
        pytest.param("numpyro", marks=pytest.mark.slow),
    ],
)
def test_same_seed_same_posterior_bit_for_bit(sampler):
    first = fit(sampler)
    second = fit(sampler)
    assert first.attrs["sampler"] == sampler
    assert_identical(first, second)
    other = fit(sampler, random_seed=12)
    assert not np.array_equal(other.posterior["beta"], first.posterior["beta"])


@pytest.mark.parametrize(
    ("sampler", "kwargs"),
    [
        ("nutpie", {"cores": 1}),
        # Worker processes are spawned: forking after JAX was imported (numpyro tests) warns.
        pytest.param("pymc", {"cores": 2, "mp_ctx": "spawn"}, marks=pytest.mark.slow),
    ],
)
def test_the_number_of_cores_does_not_change_the_draws(sampler, kwargs):
    """Each chain has its own seeded stream: chains run in parallel or in turn agree."""
    reference = fit(sampler, cores=1 if kwargs["cores"] > 1 else None)
    assert_identical(reference, fit(sampler, **kwargs))


def test_a_fresh_python_process_gives_the_same_posterior(tmp_path):
    """Nothing process-specific (hash random_seed, compile cache, import order) enters the draws."""
    ours = fit("nutpie")
    out = tmp_path / "draws.json"
    script = textwrap.dedent(
        f"""
        import json, sys, logging
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        logging.getLogger("pymc").setLevel(logging.WARNING)
        import warnings
        import bayes_sarcoma as bs
        from test_reproducibility import fit
        dt = fit("nutpie")
        post = dt["posterior"].dataset
        json.dump({{k: post[k].values.ravel().tolist() for k in post.data_vars}},
                  open({str(out)!r}, "w"))
        """
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=600)
    theirs = json.loads(out.read_text())
    post = ours["posterior"].dataset
    assert set(theirs) == set(post.data_vars)
    for name, values in theirs.items():
        # JSON round-trips float64 exactly (repr is shortest round-trip)
        np.testing.assert_array_equal(np.asarray(values), post[name].values.ravel(), name)


def test_save_load_round_trip_is_lossless_and_refits_identically(
    os_model_and_fit, registry_small, tmp_path
):
    model, dt = os_model_and_fit
    path = save(dt, tmp_path / "os.zarr")
    loaded = load(path, data=registry_small)
    loaded_model = bs.HierarchicalWeibull.from_datatree(loaded)
    assert_identical(dt, loaded)
    assert loaded_model.to_dict() == model.to_dict()
    assert loaded_model.design.to_dict() == model.design.to_dict()
    # the specification in the file is enough to reproduce the fit, bit for bit
    from conftest import FAST

    again = bs.HierarchicalWeibull.from_dict(loaded_model.to_dict()).fit(
        registry_small, random_seed=int(loaded.attrs["random_seed"]), **FAST
    )
    for name in dt.posterior.data_vars:
        np.testing.assert_array_equal(again.posterior[name], dt.posterior[name], name)
    # and the file refuses a table that is not the fitting table
    changed = registry_small.copy()
    changed.loc[5, "os_months"] += 1.0
    with pytest.raises(DataMismatchError):
        load(path, data=changed)


def test_simulator_and_prior_draws_are_seeded(registry_small):
    a, b = bs.simulate_registry(300, random_seed=9), bs.simulate_registry(300, random_seed=9)
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs["truth"] == b.attrs["truth"]
    assert not a["os_months"].equals(bs.simulate_registry(300, random_seed=10)["os_months"])
    model = bs.HierarchicalWeibull(**SPEC)
    p1 = model.sample_prior(table(), draws=200, random_seed=4)
    p2 = model.sample_prior(table(), draws=200, random_seed=4)
    for name in p1["prior"].data_vars:
        np.testing.assert_array_equal(p1["prior"][name], p2["prior"][name], name)


def test_ieee_arithmetic_reaches_spawned_workers_through_the_environment(monkeypatch):
    """pm.sample's spawned workers read PYTENSOR_FLAGS, not this process's config."""
    monkeypatch.delenv("PYTENSOR_FLAGS", raising=False)
    with sampling.ieee_numba():
        assert os.environ["PYTENSOR_FLAGS"] == "numba__fastmath=False"
        assert not pytensor.config.numba__fastmath
    assert "PYTENSOR_FLAGS" not in os.environ
    monkeypatch.setenv("PYTENSOR_FLAGS", "floatX=float64")
    with sampling.ieee_numba():
        assert os.environ["PYTENSOR_FLAGS"] == "floatX=float64,numba__fastmath=False"
    assert os.environ["PYTENSOR_FLAGS"] == "floatX=float64"
