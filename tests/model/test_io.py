"""Save and load fits: exact round trips (string and integer ids, delayed entry, the
exponential baseline, the margin interaction), predictions without refitting, and the
files that must be refused."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr
from arviz_stats import loo as _azs_loo
from conftest import FAST

import bayes_sarcoma as bs
from bayes_sarcoma.math import weibull
from bayes_sarcoma.model import io
from bayes_sarcoma.predict.survival import predict_median, predict_survival

TIMES = [6.0, 24.0, 60.0]


def assert_same_tree(a: xr.DataTree, b: xr.DataTree) -> None:
    """Same groups, values, coordinates (with dtypes) and attributes."""
    assert sorted(a.children) == sorted(b.children)
    assert dict(a.attrs) == dict(b.attrs)
    for name in a.children:
        xr.testing.assert_identical(a[name].to_dataset(), b[name].to_dataset())
        for coord in a[name].coords:
            assert a[name][coord].dtype == b[name][coord].dtype, (name, coord)
        assert dict(a[name].attrs) == dict(b[name].attrs), name


def int_id_table(n=300, n_clusters=9, random_seed=3):
    """Integer patient and cluster ids, own column names, delayed entry, exponential truth."""
    rng = np.random.default_rng(random_seed)
    site = rng.integers(0, n_clusters, n) * 10 + 100
    u = dict(zip(np.unique(site), rng.normal(0, 0.3, n_clusters), strict=True))
    arm = rng.integers(0, 2, n)
    dose = rng.normal(5, 1, n)
    eta = -3.0 - 0.5 * arm + 0.2 * dose + np.array([u[s] for s in site])
    t = weibull.sample_times(rng, eta, 1.0)
    c = rng.uniform(5, 40, n)
    entry = np.where(rng.random(n) < 0.3, rng.uniform(0, 2, n), 0.0)
    time = np.minimum(t, c)
    keep = time > entry
    return pd.DataFrame(
        {
            "pid": np.arange(1, n + 1)[keep] * 7,
            "site": site[keep],
            "arm": arm[keep],
            "dose": dose[keep],
            "years": time[keep],
            "died": (t <= c)[keep].astype(int),
            "enrolled": entry[keep],
        }
    )


@pytest.fixture(scope="module")
def saved_os(os_model_and_fit, tmp_path_factory):
    _model, dt = os_model_and_fit
    path = io.save(dt, tmp_path_factory.mktemp("fits") / "os.zarr", log_likelihood=False)
    return path


def test_round_trip_restores_the_datatree_exactly(os_model_and_fit, saved_os):
    model, dt = os_model_and_fit
    again = io.load(saved_os)
    again_model = bs.HierarchicalWeibull.from_datatree(again)
    assert_same_tree(dt, again)
    assert io.META_ATTR not in dt.attrs  # saving left the fit untouched
    # String ids come back as the object arrays a fit has (not NumPy StringDType).
    assert again.posterior["center"].dtype == object
    assert again.posterior["center"].values[0] == dt.posterior["center"].values[0]
    # The log-likelihood was not stored but recomputed, bit for bit.
    np.testing.assert_array_equal(again.log_likelihood["time"], dt.log_likelihood["time"])
    assert again_model.to_dict() == model.to_dict()
    assert again_model.design.to_dict() == model.design.to_dict()
    np.testing.assert_array_equal(
        again_model.fit_reference.center_ids, model.fit_reference.center_ids
    )
    assert again_model.fit_reference.t_ref == model.fit_reference.t_ref


def test_loaded_model_predicts_without_refitting(os_model_and_fit, saved_os, registry_small):
    model, dt = os_model_and_fit
    again = io.load(saved_os)
    again_model = bs.HierarchicalWeibull.from_datatree(again)
    patients = registry_small.iloc[[0, 10, 200]]
    for center in ("new", "known", "typical"):
        before = predict_survival(dt, patients, TIMES, center=center)
        after = predict_survival(again, patients, TIMES, center=center)
        xr.testing.assert_identical(before, after)
    # The methods of the rebuilt model, too.
    np.testing.assert_array_equal(bs.predict_median(again, patients), predict_median(dt, patients))
    pd.testing.assert_frame_equal(bs.hazard_ratios(again), bs.hazard_ratios(dt))
    # And the prepared data are laid out the same way as by the original model.
    table = registry_small.head(50)
    np.testing.assert_array_equal(
        again_model.prepare(table).arrays["X"], model.prepare(table).arrays["X"]
    )


def test_a_fit_saved_before_time_unit_and_center_level_loads(os_model_and_fit, registry_small):
    """A specification without ``time_unit``/``center_level``, ``zero_time`` a number."""
    model, dt = os_model_and_fit
    old = dt.copy()
    spec = json.loads(dt.attrs["model"])
    for key in ("time_unit", "center_level"):
        del spec[key]
    spec["zero_time"] = 0.5 / 30.4375
    old.attrs = {**dt.attrs, "model": json.dumps(spec)}
    again = bs.HierarchicalWeibull.from_datatree(old)
    assert (again.time_unit, again.center_level) == ("months", ("expert_center",))
    assert again.zero_time == spec["zero_time"]
    np.testing.assert_array_equal(
        again.prepare(registry_small).arrays["X"], model.prepare(registry_small).arrays["X"]
    )
    patients = registry_small.iloc[[0, 10]]
    xr.testing.assert_identical(
        predict_survival(old, patients, TIMES), predict_survival(dt, patients, TIMES)
    )


# 600 draws: a few high Pareto k values are expected; this test is about reading the file.
@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto:UserWarning")
def test_arviz_reads_the_loaded_fit(saved_os):
    import arviz_stats as azs

    dt = io.load(saved_os)
    assert np.isfinite(azs.rhat(dt, var_names=["beta"])["beta"]).all()
    loo = azs.loo(dt)
    assert np.isfinite(loo.elpd)


# The README's promise: a saved fit opened with xarray alone is an ArviZ fit.
@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto:UserWarning")
def test_the_saved_file_opened_with_xarray_alone_works_in_arviz(os_model_and_fit, tmp_path):
    path = io.save(os_model_and_fit[1], tmp_path / "os.zarr")  # log-likelihood stored
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no consolidated-metadata or other warning
        tree = xr.open_datatree(path, engine="zarr")
    assert set(tree.children) >= {"posterior", "log_likelihood", "observed_data"}
    loo = _azs_loo(tree)
    assert np.isfinite(loo.elpd)
    assert loo.n_data_points == tree["observed_data"].sizes["patient"]


def test_data_fingerprint_detects_another_table(os_model_and_fit, saved_os, registry_small):
    model, dt = os_model_and_fit
    assert io.table_fingerprint(model, registry_small) == io.data_fingerprint(dt)
    io.load(saved_os, data=registry_small)  # the fitting table passes
    changed = registry_small.copy()
    changed.loc[5, "age"] += 1.0
    with pytest.raises(io.DataMismatchError, match="not the one the model was fitted on"):
        io.load(saved_os, data=changed)
    with pytest.raises(io.DataMismatchError):
        io.load(saved_os, data=registry_small.iloc[::-1])
    with pytest.raises(io.DataMismatchError, match="cannot be laid out"):
        io.load(saved_os, data=registry_small.assign(center_id="nowhere"))


def test_log_likelihood_is_stored_by_default(os_model_and_fit, saved_os, tmp_path):
    _model, dt = os_model_and_fit
    path = io.save(dt, tmp_path / "new" / "folder" / "with_ll")  # no suffix: Zarr
    assert io.read_metadata(path)["log_likelihood"] == "stored"
    assert io.read_metadata(saved_os)["log_likelihood"] == "recompute"
    # what the README promises: ArviZ's loo on the file opened with xarray alone
    raw = xr.open_datatree(path, engine="zarr", consolidated=False)
    with warnings.catch_warnings():  # a short test fit: Pareto k warnings are expected
        warnings.simplefilter("ignore", UserWarning)
        assert np.isfinite(_azs_loo(raw).elpd)
    again = io.load(path)
    assert_same_tree(dt, again)

    def size(p):
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())

    assert size(saved_os) < 0.5 * size(path)


def test_metadata_records_versions_and_fingerprint(os_model_and_fit, saved_os):
    _, dt = os_model_and_fit
    meta = io.read_metadata(saved_os)
    assert meta["format"] == io.FORMAT
    assert meta["format_version"] == io.FORMAT_VERSION
    assert meta["kind"] == "HierarchicalWeibull"
    assert meta["package_version"] == bs.__version__
    assert meta["data_sha256"] == io.data_fingerprint(dt)
    # The file is plain Zarr: its attributes are readable JSON without this package.
    raw = zarr.open_group(saved_os, mode="r").attrs[io.META_ATTR]
    assert json.loads(raw)["kind"] == "HierarchicalWeibull"


def test_integer_ids_delayed_entry_and_exponential_baseline(tmp_path):
    df = int_id_table()
    model = bs.HierarchicalWeibull(
        time="years",
        event="died",
        cluster="site",
        terms=["arm", "dose"],
        entry="enrolled",
        id_column="pid",
        baseline="exponential",
    )
    dt = model.fit(df, random_seed=3, target_accept=0.95, **FAST)
    path = io.save(dt, tmp_path / "ints.zarr")
    again = io.load(path, data=df)
    again_model = bs.HierarchicalWeibull.from_datatree(again)
    assert_same_tree(dt, again)
    assert again.posterior["center"].dtype.kind == "i"
    assert again.observed_data["patient"].dtype.kind == "i"
    np.testing.assert_array_equal(again.log_likelihood["time"], dt.log_likelihood["time"])
    patients = df.head(4)
    xr.testing.assert_identical(
        predict_survival(dt, patients, TIMES, center="known"),
        predict_survival(again, patients, TIMES, center="known"),
    )
    table = df.head(40)
    assert again_model.prepare(table).center_index.tolist() == (
        model.prepare(table).center_index.tolist()
    )


def test_margin_interaction_round_trip(registry_small, tmp_path):
    model = bs.HierarchicalWeibull("LRFS", effect_modifier="margin")
    dt = model.fit(registry_small, random_seed=4, **FAST)
    path = io.save(dt, tmp_path / "margin.zarr")
    again = io.load(path, data=registry_small)
    again_model = bs.HierarchicalWeibull.from_datatree(again)
    assert_same_tree(dt, again)
    assert list(again.posterior["margin"].values) == ["R0", "R1", "R2", "Rx"]
    np.testing.assert_array_equal(again.log_likelihood["time"], dt.log_likelihood["time"])
    patients = registry_small.iloc[[1, 2, 3, 50]]
    xr.testing.assert_identical(
        predict_survival(dt, patients, TIMES), predict_survival(again, patients, TIMES)
    )
    assert again_model.fit_reference.modifier_levels == model.fit_reference.modifier_levels


def test_prior_draws_round_trip(os_model_and_fit, registry_small, tmp_path):
    model = bs.HierarchicalWeibull("OS")
    prior = model.sample_prior(registry_small, draws=50, random_seed=1)
    path = io.save(prior, tmp_path / "prior.zarr")
    assert io.read_metadata(path)["log_likelihood"] == "absent"
    again = io.load(path)
    bs.HierarchicalWeibull.from_datatree(again)
    assert_same_tree(prior, again)


def test_netcdf_round_trip(os_model_and_fit, tmp_path):
    pytest.importorskip("h5py")
    _model, dt = os_model_and_fit
    path = io.save(dt, tmp_path / "os.nc")
    again = io.load(path)
    bs.HierarchicalWeibull.from_datatree(again)
    assert_same_tree(dt, again)


def test_netcdf_without_h5py_is_a_clear_error(os_model_and_fit, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "h5py", None)  # makes `import h5py` fail
    _model, dt = os_model_and_fit
    with pytest.raises(io.FitFileError, match=r"h5py.*\.zarr"):
        io.save(dt, tmp_path / "os.nc")


# -- files that must be refused ----------------------------------------------------------
def _edit_metadata(path, **changes):
    group = zarr.open_group(path, mode="r+")
    meta = json.loads(group.attrs[io.META_ATTR])
    meta.update(changes)
    group.attrs[io.META_ATTR] = json.dumps(meta)


def _copy(saved, tmp_path, name):
    import shutil

    target = tmp_path / name
    shutil.copytree(saved, target)
    return target


def test_a_newer_format_is_refused(saved_os, tmp_path):
    path = _copy(saved_os, tmp_path, "newer.zarr")
    _edit_metadata(path, format_version=io.FORMAT_VERSION + 1, package_version="9.0")
    with pytest.raises(io.FitFileError, match=r"bayes_sarcoma 9\.0 in file format version 2"):
        io.load(path)


def test_another_model_kind_is_refused(saved_os, tmp_path):
    path = _copy(saved_os, tmp_path, "cox.zarr")
    _edit_metadata(path, kind="CoxFrailty")
    with pytest.raises(io.FitFileError, match="holds a 'CoxFrailty' fit"):
        io.load(path)


def test_a_plain_datatree_is_not_a_fit_file(os_model_and_fit, tmp_path):
    _, dt = os_model_and_fit
    path = tmp_path / "plain.zarr"
    xr.DataTree.from_dict({"posterior": dt.posterior.to_dataset()}).to_zarr(
        path, consolidated=False
    )
    with pytest.raises(io.FitFileError, match="not a bayes_sarcoma fit file"):
        io.load(path)
    text = tmp_path / "notes.nc"
    text.write_text("hello")
    with pytest.raises(io.FitFileError, match="neither a Zarr folder nor a NetCDF-4 file"):
        io.load(text)
    with pytest.raises(io.FitFileError, match="no such file"):
        io.load(tmp_path / "missing.zarr")


def test_an_altered_file_is_refused(saved_os, tmp_path):
    path = _copy(saved_os, tmp_path, "altered.zarr")
    group = zarr.open_group(path, mode="r+")
    times = group["observed_data"]["time"]
    times[0] = times[0] + 1.0
    with pytest.raises(io.FitFileError, match="altered or damaged"):
        io.load(path)


def test_save_refuses_bad_paths_and_overwrites(os_model_and_fit, tmp_path):
    _model, dt = os_model_and_fit
    with pytest.raises(ValueError, match=r"not written by HierarchicalWeibull\.fit"):
        io.save(xr.DataTree(), tmp_path / "x.zarr")
    with pytest.raises(io.FitFileError, match=r"ends in \.zarr"):
        io.save(dt, tmp_path / "x.pkl")
    path = io.save(dt, tmp_path / "x.zarr")
    with pytest.raises(io.FitFileError, match="exists"):
        io.save(dt, path)
    io.save(dt, path, overwrite=True)
    io.load(path)
    folder = tmp_path / "results.zarr"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(io.FitFileError, match="not a Zarr store"):
        io.save(dt, folder, overwrite=True)
    assert (folder / "keep.txt").exists()
    assert not list(tmp_path.glob(".*.tmp"))
