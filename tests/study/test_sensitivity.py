"""Prior sensitivity grids: shrinkage, compile once, Dask = serial, failures, save/load, plots;
and the generic Dask runner they run on."""

import threading
import time
import warnings

import matplotlib
import numpy as np
import pytest
import xarray as xr
from scipy import stats

import bayes_sarcoma as bs
from bayes_sarcoma.inference import sampling
from bayes_sarcoma.study import sensitivity
from bayes_sarcoma.study.runner import Task, capture_warnings, run_tasks
from bayes_sarcoma.study.sensitivity import (
    SensitivityResult,
    cell_seed,
    prior_predictive,
    prior_sensitivity,
    sample_prior,
)

matplotlib.use("Agg")

#: Small and quick: the grid tests check plumbing and direction, not precision.
GRID = dict(
    draws=200,
    tune=200,
    chains=2,
    random_seed=11,
    prior_draws=100,
    prior_patients=100,
    prior_times=np.linspace(0, 120, 7),
    progress=False,
)
PRIOR_SETS = ["vague", "sceptical", "enthusiastic"]


@pytest.fixture(scope="module")
def registry_grid():
    """A registry of its own size, so that its model structures are compiled here."""
    return bs.simulate_registry(700, random_seed=606)


@pytest.fixture(scope="module")
def serial_grid(registry_grid):
    before = sampling.COMPILATIONS["nutpie"]
    res = prior_sensitivity(
        registry_grid, endpoints=["OS"], prior_sets=PRIOR_SETS, scheduler="serial", **GRID
    )
    return res, sampling.COMPILATIONS["nutpie"] - before


# -- the grid ---------------------------------------------------------------------------------
def test_the_table_is_tidy_and_complete(serial_grid):
    res, _ = serial_grid
    table = res.table
    assert list(table.columns[:4]) == ["endpoint", "model", "prior_set", "quantity"]
    assert {"mean", "lower", "upper"} <= set(table.columns)
    assert set(table.quantity) == {
        "log_hr_expert",
        "hr_expert",
        "surv_diff_60m",
        "median_diff_months",
        "center_sd",
    }
    assert len(table) == 3 * 5
    assert (table.lower <= table["mean"]).all()
    assert (table["mean"] <= table.upper).all()
    hr = table[table.quantity == "hr_expert"].set_index("prior_set")
    log_hr = table[table.quantity == "log_hr_expert"].set_index("prior_set")
    # Quantiles commute with exp (up to the interpolation between draws).
    np.testing.assert_allclose(np.exp(log_hr.lower), hr.lower, rtol=1e-3)
    assert res.tree["posterior"].dataset["log_hr_expert"].dims == (
        "model",
        "endpoint",
        "prior_set",
        "chain",
        "draw",
    )
    assert list(res.tree["posterior"]["prior_set"].values) == PRIOR_SETS


def test_sceptical_pulls_the_expert_effect_towards_zero(serial_grid):
    res, _ = serial_grid
    post = (
        res.tree["posterior"].dataset["log_hr_expert"].sel(model="netsarc_weibull", endpoint="OS")
    )
    vague = float(post.sel(prior_set="vague").mean())
    sceptical = float(post.sel(prior_set="sceptical").mean())
    enthusiastic = float(post.sel(prior_set="enthusiastic").mean())
    assert vague < 0  # the simulated benefit
    assert abs(sceptical) < abs(vague)
    assert enthusiastic < sceptical
    # The standardized differences follow the hazard ratio.
    diff = res.table.query("quantity == 'surv_diff_60m'").set_index("prior_set")["mean"]
    assert diff["sceptical"] < diff["vague"]
    assert (diff > 0).all()


def test_each_structure_compiles_once(serial_grid):
    res, compiled = serial_grid
    # vague has other families (Exponential shape, Gamma precision): a second structure;
    # sceptical and enthusiastic share one, so 3 cells compile twice.
    assert res.tree.attrs["n_groups"] == 2
    assert res.compilations == 2
    assert compiled == 2
    flags = res.cells.set_index("prior_set")["compiled"]
    assert flags["vague"]
    assert flags["sceptical"] != flags["enthusiastic"]


def test_cells_record_seeds_timings_and_diagnostics(serial_grid):
    res, _ = serial_grid
    cells = res.cells
    assert cells["ok"].all()
    assert list(cells["random_seed"]) == [cell_seed(11, k) for k in cells["key"]]
    assert (cells["seconds"] > 0).all()
    assert {"divergences", "max_rhat", "min_ess_bulk", "sampling_seconds"} <= set(cells)
    assert res.wall_seconds > cells["seconds"].max()
    assert "every interval excludes 1" in res.statement() or "depends" in res.statement()


def test_dask_gives_the_same_numbers_as_serial(serial_grid, registry_grid):
    res, _ = serial_grid
    before = sampling.COMPILATIONS["nutpie"]
    dask = prior_sensitivity(
        registry_grid,
        endpoints=["OS"],
        prior_sets=PRIOR_SETS,
        scheduler="threads",
        cluster_kwargs={"threads_per_worker": 2},
        **GRID,
    )
    assert sampling.COMPILATIONS["nutpie"] == before  # threads share the warm cache
    assert all(w.startswith("inproc://") for w in dask.cells["worker"])
    xr.testing.assert_equal(dask.tree["posterior"], res.tree["posterior"])
    xr.testing.assert_equal(dask.tree["power_scaling"], res.tree["power_scaling"])
    xr.testing.assert_equal(dask.tree["prior_predictive"], res.tree["prior_predictive"])


def test_a_failed_cell_is_reported_and_the_rest_completes(registry_grid, monkeypatch):
    original = sensitivity.fit_cell

    def flaky(cell, **kwargs):
        if cell.priors.name == "sceptical":
            raise FloatingPointError("simulated failure")
        return original(cell, **kwargs)

    monkeypatch.setattr(sensitivity, "fit_cell", flaky)
    small = dict(scheduler="serial", power_scaling=False, prior_predictive=False)
    with pytest.warns(bs.CellFailureWarning, match=r"1 of 2 cells failed .*sceptical"):
        res = prior_sensitivity(
            registry_grid,
            endpoints=["OS"],
            prior_sets=["sceptical", "enthusiastic"],
            **small,
            **{**GRID, "draws": 100, "tune": 100},
        )
    failed = res.failures
    assert list(failed["key"]) == ["OS/netsarc_weibull/sceptical"]
    assert failed["error"].iloc[0] == "FloatingPointError: simulated failure"
    assert "Traceback" in failed["traceback"].iloc[0]
    assert set(res.table.prior_set) == {"enthusiastic"}
    assert np.isnan(res.tree["posterior"]["log_hr_expert"].sel(prior_set="sceptical")).all()
    assert "Cell OS/netsarc_weibull/sceptical failed: FloatingPointError" in res.statement()
    # a grid whose every cell fails raises instead of returning an empty table
    with pytest.raises(bs.GridError, match=r"every cell of the grid failed .*FloatingPointError"):
        prior_sensitivity(registry_grid, endpoints=["OS"], prior_sets=["sceptical"], **small)


def test_save_and_load_round_trip(serial_grid, tmp_path):
    res, _ = serial_grid
    path = res.save(tmp_path / "grid.zarr")
    again = SensitivityResult.load(path)
    xr.testing.assert_identical(again.tree, res.tree)
    assert again.table.equals(res.table)
    assert again.power_scaling.equals(res.power_scaling)
    assert again.cells.drop(columns="warnings").equals(res.cells.drop(columns="warnings"))


def test_power_scaling_table(serial_grid):
    res, _ = serial_grid
    ps = res.power_scaling
    assert len(ps) == 3 * 5
    assert {"prior", "likelihood", "diagnosis", "prior_sensitive"} <= set(ps.columns)
    assert np.isfinite(ps[["prior", "likelihood"]].to_numpy()).all()


def test_plots_have_units_and_intervals(serial_grid, tmp_path):
    res, _ = serial_grid
    fig = res.plot(path=tmp_path / "sensitivity.png")
    assert (tmp_path / "sensitivity.png").stat().st_size > 0
    labels = [ax.get_xlabel() for ax in fig.axes]
    assert any("months" in label for label in labels)
    assert any("log hazard ratio" in label for label in labels)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == PRIOR_SETS
    fig = res.plot_prior_predictive(path=tmp_path / "prior_predictive.png")
    assert fig.axes[0].get_xlabel() == "months since surgery"
    assert "survival probability" in fig.axes[0].get_ylabel()


# -- prior predictive -----------------------------------------------------------------------
def test_prior_predictive_bands_are_ordered_survival_curves(serial_grid):
    res, _ = serial_grid
    ds = res.tree["prior_predictive"].dataset
    band = ds["survival"]
    assert band.dims == ("model", "endpoint", "prior_set", "arm", "time", "quantile")
    values = band.to_numpy()
    assert ((values >= 0) & (values <= 1)).all()
    assert (np.diff(values, axis=-1) >= -1e-12).all()  # quantiles ordered
    assert (np.diff(band.sel(quantile=0.5).to_numpy(), axis=-1) <= 1e-12).all()  # decreasing
    np.testing.assert_allclose(band.sel(time=0.0), 1.0)
    observed = ds["observed"].sel(endpoint="OS")
    assert observed.sel(time=0.0).values.tolist() == [1.0, 1.0]
    # Under the vague set the centre SD exceeds 100 in ~98% of prior draws (Gamma(0.001,
    # 0.001) on the precision): a new centre's patients then all have the event at once or
    # never, so the standardized survival is 1/2 at any t > 0 -- the check exposes it.
    sel = dict(model="netsarc_weibull", endpoint="OS", arm="expert", time=60.0)
    vague = band.sel(prior_set="vague", **sel)
    np.testing.assert_allclose(vague.sel(quantile=[0.25, 0.5, 0.75]), 0.5, atol=0.02)
    sceptical = band.sel(prior_set="sceptical", **sel)
    assert 0.05 < float(sceptical.sel(quantile=0.5)) < 0.95
    assert float(sceptical.sel(quantile=0.95) - sceptical.sel(quantile=0.05)) > 0.2


def test_scipy_prior_draws_match_pymcs_prior(registry_small, os_model_and_fit):
    model, _ = os_model_and_fit
    ours = sample_prior(model, 3000, random_seed=5)["prior"]
    theirs = model.sample_prior(registry_small, draws=3000, random_seed=6)["prior"]
    for name, sel in [
        ("intercept", {}),
        ("shape", {}),
        ("center_sd", {}),
        ("beta", {"term": "age"}),
        ("beta", {"term": "expert_center"}),
    ]:
        a = ours[name].sel(sel).to_numpy().ravel()
        b = theirs[name].sel(sel).to_numpy().ravel()
        assert stats.ks_2samp(a, b).pvalue > 1e-3, name


def test_prior_predictive_standardizes_over_patients(os_model_and_fit, registry_small):
    model, _ = os_model_and_fit
    band = prior_predictive(
        model, registry_small, [0.0, 24.0], draws=200, patients=50, random_seed=2
    )
    assert band.dims == ("arm", "time", "quantile")
    assert band.attrs["nonfinite_draws"] == 0
    again = prior_predictive(
        model, registry_small, [0.0, 24.0], draws=200, patients=50, random_seed=2
    )
    xr.testing.assert_identical(band, again)


# -- arguments --------------------------------------------------------------------------------
def test_bad_grid_arguments_are_reported(registry_grid):
    with pytest.raises(ValueError, match="prior set names must be unique"):
        prior_sensitivity(registry_grid, endpoints=["OS"], prior_sets=["vague", "vague"])
    with pytest.raises(bs.SpecError, match="no prior set named 'scepticle'"):
        prior_sensitivity(registry_grid, endpoints=["OS"], prior_sets=["scepticle"])
    with pytest.raises(ValueError, match="only the nutpie sampler is thread-safe"):
        prior_sensitivity(registry_grid, endpoints=["OS"], prior_sets=["vague"], sampler="pymc")


# -- the runner ---------------------------------------------------------------------------------
def _square_or_fail(x, *, offset):
    warnings.warn(f"seen {x}", UserWarning, stacklevel=1)
    if x == 2:
        raise ValueError("two is bad")
    return x * x + offset


def test_runner_captures_errors_and_warnings_per_task():
    tasks = [Task(f"t{i}", i) for i in range(4)]
    seen = []
    out = run_tasks(
        _square_or_fail,
        tasks,
        shared={"offset": 1},
        scheduler="threads",
        progress=lambda r, done, total: seen.append((r.key, done, total)),
    )
    assert [r.value for r in out] == [1, 2, None, 10]
    assert out[2].error == "ValueError: two is bad"
    assert [r.warnings for r in out] == [[f"UserWarning: seen {i}"] for i in range(4)]
    assert sorted(key for key, _, _ in seen) == ["t0", "t1", "t2", "t3"]
    assert [(done, total) for _, done, total in seen] == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_runner_prints_progress(capsys):
    run_tasks(abs, [Task("a", -1), Task("b", -2)], scheduler="serial")
    err = capsys.readouterr().err
    assert "[1/2] a  ok" in err
    assert "[2/2] b  ok" in err


def test_capture_warnings_is_per_thread():
    barrier = threading.Barrier(2)
    results = {}

    def work(name):
        with capture_warnings() as seen:
            barrier.wait()
            warnings.warn(name, UserWarning, stacklevel=1)
            barrier.wait()
        results[name] = seen

    threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {"a": ["UserWarning: a"], "b": ["UserWarning: b"]}
    with pytest.warns(UserWarning, match="after"):  # filters restored afterwards
        warnings.warn("after", UserWarning, stacklevel=1)


_LOG: list = []


def _timed(x):
    _LOG.append(("start", x, time.perf_counter()))
    time.sleep(0.05)
    _LOG.append(("end", x, time.perf_counter()))
    return x


def test_runner_runs_the_first_task_of_a_group_first():
    _LOG.clear()
    tasks = [Task(f"g{i}", i, group="same") for i in range(4)]
    out = run_tasks(
        _timed,
        tasks,
        scheduler="threads",
        cluster_kwargs={"threads_per_worker": 4},
        progress=False,
    )
    assert [r.value for r in out] == [0, 1, 2, 3]
    first_end = next(t for kind, x, t in _LOG if kind == "end" and x == 0)
    later_starts = [t for kind, x, t in _LOG if kind == "start" and x != 0]
    assert min(later_starts) >= first_end


def test_runner_rejects_duplicate_keys_and_bad_schedulers():
    with pytest.raises(ValueError, match="unique"):
        run_tasks(abs, [Task("a", 1), Task("a", 2)], scheduler="serial")
    with pytest.raises(ValueError, match="scheduler=3"):
        run_tasks(abs, [Task("a", 1)], scheduler=3)


@pytest.mark.slow
def test_worker_processes_give_the_same_numbers(serial_grid, registry_grid):
    res, _ = serial_grid
    procs = prior_sensitivity(
        registry_grid,
        endpoints=["OS"],
        prior_sets=PRIOR_SETS,
        scheduler="processes",
        cluster_kwargs={"n_workers": 2},
        **GRID,
    )
    # Bitwise equal but for the standardized median's Newton search, whose sums run on
    # single-threaded BLAS in Dask's worker processes: equal to its tolerance.
    xr.testing.assert_allclose(procs.tree["posterior"], res.tree["posterior"], rtol=1e-9)
    post = procs.tree["posterior"].dataset.drop_vars("median_diff_months")
    xr.testing.assert_equal(post, res.tree["posterior"].dataset.drop_vars("median_diff_months"))
    # Each worker process compiles each structure it meets at most once.
    assert 2 <= procs.compilations <= 2 * 2
