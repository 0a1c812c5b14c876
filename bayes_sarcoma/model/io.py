"""Save a fit's DataTree to disk and load it back, without pickle.

A fit is re-used for weeks (predictions, reports, sensitivity comparisons), so it must
survive the Python session that made it. :func:`save` writes the results DataTree
(DESIGN.md section 4) as Zarr (a folder, the default) or NetCDF-4 (one file; needs
``h5py``), and beside it, in the root's attributes, one JSON document:

``format``, ``format_version``
    What the file is (``"bayes_sarcoma.fit"``) and the layout version. A file of a newer
    format than this package reads is refused, naming both versions.
``kind``
    The model class (``"HierarchicalWeibull"``); a file of another kind is refused.
``package_version``
    The ``bayes_sarcoma`` version that wrote it.
``data_sha256``
    A SHA-256 fingerprint of the data the model was fitted on (patient ids, times, events,
    the coded design, centres, entry times, treatment and modifier): :func:`load` checks
    the arrays it reads against it (a file altered since it was written is refused), and
    ``load(path, data=df)`` checks that ``df`` is the table of the fit.
``log_likelihood``
    ``"stored"`` (the default): the pointwise log-likelihood is in the file, so ArviZ's
    ``loo`` works on the file opened with xarray alone; ``"recompute"``: it was left out
    (``save(dt, path, log_likelihood=False)``; chains x draws x patients floats, 300 MB for
    a NETSARC-size fit) and :func:`load` recomputes it from the posterior and the stored
    data (exactly: the same code on the same float64 numbers); ``"absent"``: the fit had
    none.
``attrs``
    Every group's attributes, exactly (NetCDF cannot hold ``None``, booleans or nested
    values as attributes; the file's own attributes keep what it can).

The model's specification and covariate coding are already JSON in ``dt.attrs``
(``model``, ``design``), so a loaded fit predicts at once, without refitting, and
:meth:`HierarchicalWeibull.from_datatree <bayes_sarcoma.HierarchicalWeibull.from_datatree>`
rebuilds the model for a refit.

Why Zarr by default: it needs nothing beyond the package's dependencies, writes fast and
compresses; NetCDF-4 through ``h5netcdf`` needs ``h5py``, which is optional here. String
ids come back from Zarr as NumPy's ``StringDType``; :func:`load` turns them back into the
object arrays a fit has, so a loaded DataTree is identical to the saved one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayes_sarcoma._version import __version__
from bayes_sarcoma.data.design import level_codes
from bayes_sarcoma.data.errors import RegistryError
from bayes_sarcoma.data.prepare import ZeroTimeWarning
from bayes_sarcoma.model.baselines import Baseline
from bayes_sarcoma.model.hierarchical import HierarchicalWeibull
from bayes_sarcoma.model.posterior import pointwise_log_likelihood

#: What a fit file is, and the newest layout this version reads and writes.
FORMAT = "bayes_sarcoma.fit"
FORMAT_VERSION = 1
#: The root attribute holding the JSON metadata.
META_ATTR = "bayes_sarcoma_file"
#: File suffixes by storage engine.
SUFFIXES = {".zarr": "zarr", ".nc": "netcdf", ".nc4": "netcdf", ".netcdf": "netcdf"}
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_LOG_LIKELIHOOD = "log_likelihood"


class FitFileError(ValueError):
    """A file is not a fit this package can read (or a fit cannot be written)."""


class DataMismatchError(ValueError):
    """A table is not the one the saved model was fitted on."""


# -- fingerprints ----------------------------------------------------------------------------
def _digest_array(h: Any, name: str, values: Any) -> None:
    """Feed one named array into ``h`` in a canonical, dtype-aware byte form."""
    arr = np.asarray(values)
    if name in _NUMBERS:  # measured values: 0/1 events and int-coded flags hash as floats
        arr = arr.astype(float)
    if arr.dtype.kind in "biuf":
        kind = "int" if arr.dtype.kind in "biu" else "float"
        data = arr.astype("<i8" if kind == "int" else "<f8").tobytes()
    else:  # strings (object, <U, StringDType): joined with a unit separator
        kind = "str"
        data = "\x1f".join(map(str, arr.ravel().tolist())).encode()
    h.update(f"{name}:{kind}:{arr.shape}:".encode())
    h.update(data)


#: Arrays of numbers (hashed as float64); the others are ids or levels (type-aware).
_NUMBERS = frozenset({"time", "event", "x", "entry", "treatment"})


def _fingerprint(parts: Mapping[str, Any]) -> str:
    h = hashlib.sha256()
    for name in sorted(parts):
        _digest_array(h, name, parts[name])
    return h.hexdigest()


def data_fingerprint(dt: xr.DataTree) -> str:
    """Return the SHA-256 fingerprint of the data stored in a fit's DataTree.

    It covers the patient ids, times and events (``observed_data``), the design on the
    user's scale, each patient's centre, entry time, treatment and modifier level
    (``constant_data``): everything the likelihood reads.

    Examples
    --------
    >>> import bayes_sarcoma as bs                                       # doctest: +SKIP
    >>> model = bs.HierarchicalWeibull("OS")                             # doctest: +SKIP
    >>> dt = model.fit(df)                                               # doctest: +SKIP
    >>> data_fingerprint(dt) == table_fingerprint(model, df)             # doctest: +SKIP
    True
    """
    if "observed_data" not in dt.children or "constant_data" not in dt.children:
        raise FitFileError("the DataTree has no observed_data/constant_data: is it a fit?")
    obs, const = dt["observed_data"], dt["constant_data"]
    parts = {
        "patient": obs["patient"].to_numpy(),
        "time": obs["time"].to_numpy(),
        "event": obs["event"].to_numpy(),
        "x": const["x"].to_numpy(),
    }
    for name in ("center", "entry", "treatment"):
        if name in const.data_vars:
            parts[name] = const[name].to_numpy()
    modifier = _spec(dt).get("effect_modifier")
    if modifier and modifier in const.data_vars:
        parts["modifier"] = const[modifier].to_numpy()
    return _fingerprint(parts)


def table_fingerprint(model: HierarchicalWeibull, data: pd.DataFrame) -> str:
    """Return the fingerprint of ``data`` as ``model`` (fitted or loaded) lays it out.

    Equal to :func:`data_fingerprint` of the fit exactly when ``data`` is the fitting table
    (up to row content: the same patients, in the same order, with the same values).
    """
    with warnings.catch_warnings():
        # The fit already warned about zero times; the fingerprint only reads the table.
        warnings.simplefilter("ignore", ZeroTimeWarning)
        prep = model.prepare(data)
    parts = {
        "patient": prep.patient_ids,
        "time": prep.time,
        "event": prep.event,
        "x": prep.raw_x,
    }
    if len(prep.center_ids):
        parts["center"] = prep.center_ids[prep.center_index]
    if prep.entry is not None:
        parts["entry"] = prep.entry
    if prep.modifier_index is not None:
        parts["treatment"] = prep.treatment
        parts["modifier"] = np.asarray(prep.modifier_levels, dtype=object)[prep.modifier_index]
    return _fingerprint(parts)


def check_data(dt: xr.DataTree, data: pd.DataFrame) -> None:
    """Raise :class:`DataMismatchError` unless ``data`` is the table ``dt`` was fitted on.

    Examples
    --------
    >>> dt = bs.load("fit.zarr")                                         # doctest: +SKIP
    >>> bs.check_data(dt, df)                                            # doctest: +SKIP
    """
    try:
        theirs = table_fingerprint(HierarchicalWeibull.from_datatree(dt), data)
    except RegistryError as err:
        raise DataMismatchError(f"the table cannot be laid out as the fitted data: {err}") from None
    if theirs != data_fingerprint(dt):
        n_fit = dt["observed_data"].sizes["patient"]
        raise DataMismatchError(
            f"the table ({len(data)} rows) is not the one the model was fitted on "
            f"({n_fit} patients): their fingerprints differ (another registry, another "
            "extract, reordered rows or changed values)"
        )


# -- metadata --------------------------------------------------------------------------------
def _spec(dt: xr.DataTree) -> dict:
    spec = dt.attrs.get("model")
    return json.loads(spec) if isinstance(spec, str) else dict(spec or {})


def _json_value(value: Any) -> Any:
    """Return ``value`` as plain JSON types (NumPy scalars and arrays included)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if value is None or isinstance(value, str | bool | int | float):
        return value
    return str(value)


def _storable(value: Any) -> bool:
    """Whether NetCDF and Zarr both store ``value`` as an attribute as it is."""
    return isinstance(value, str | int | float | np.number) and not isinstance(
        value, bool | np.bool_
    )


def _all_attrs(dt: xr.DataTree) -> dict[str, dict]:
    return {node.path: {k: _json_value(v) for k, v in node.attrs.items()} for node in dt.subtree}


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Return the JSON metadata of a fit file without reading its arrays.

    Raises
    ------
    FitFileError
        If ``path`` is not a fit file this version can read (see :func:`load`).

    Examples
    --------
    >>> read_metadata("out/demo/lrfs.zarr")["kind"]                      # doctest: +SKIP
    'HierarchicalWeibull'
    """
    with _open(Path(path)) as tree:
        return _metadata(tree, Path(path))


def _metadata(tree: xr.DataTree, path: Path) -> dict[str, Any]:
    raw = tree.attrs.get(META_ATTR)
    if raw is None:
        raise FitFileError(
            f"{path} is not a bayes_sarcoma fit file (no {META_ATTR!r} metadata); "
            "it may be another program's DataTree or InferenceData"
        )
    try:
        meta = json.loads(raw)
    except (TypeError, json.JSONDecodeError):
        raise FitFileError(f"{path}: its {META_ATTR!r} metadata is not valid JSON") from None
    if meta.get("format") != FORMAT:
        raise FitFileError(f"{path} holds {meta.get('format')!r}, not a {FORMAT!r} file")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise FitFileError(
            f"{path} was written by bayes_sarcoma {meta.get('package_version')} in file format "
            f"version {version}; this bayes_sarcoma {__version__} reads format versions up to "
            f"{FORMAT_VERSION}. Upgrade bayes_sarcoma to read it."
        )
    kind = meta.get("kind")
    if kind != HierarchicalWeibull.__name__:
        raise FitFileError(
            f"{path} holds a {kind!r} fit; bayes_sarcoma.load reads "
            f"{HierarchicalWeibull.__name__} fits only"
        )
    return meta


# -- storage engines -------------------------------------------------------------------------
def _engine(path: Path) -> str:
    engine = "zarr" if path.suffix == "" else SUFFIXES.get(path.suffix.lower())
    if engine is None:
        raise FitFileError(
            f"{path}: a fit file ends in .zarr (a Zarr folder; also what a path without a "
            "suffix gives) or .nc (one NetCDF-4 file)"
        )
    if engine == "netcdf":
        _need_h5py()
    return engine


def _need_h5py() -> None:
    try:
        import h5py  # noqa: F401
    except ImportError:
        raise FitFileError(
            "NetCDF files need h5py (pip install 'h5netcdf[h5py]'); or save to a .zarr folder, "
            "which needs nothing more"
        ) from None


class _open:
    """Open a fit file (Zarr folder or NetCDF file) as a lazily read DataTree."""

    def __init__(self, path: Path):
        if not path.exists():
            raise FitFileError(f"{path}: no such file or folder")
        if path.is_dir():
            if not (path / "zarr.json").exists() and not (path / ".zgroup").exists():
                raise FitFileError(f"{path} is a folder but not a Zarr store")
            self.tree = xr.open_datatree(path, engine="zarr", consolidated=False)
        else:
            with path.open("rb") as fh:
                magic = fh.read(len(_HDF5_MAGIC))
            if magic != _HDF5_MAGIC:
                raise FitFileError(f"{path} is neither a Zarr folder nor a NetCDF-4 file")
            _need_h5py()
            self.tree = xr.open_datatree(path, engine="h5netcdf")

    def __enter__(self) -> xr.DataTree:
        return self.tree

    def __exit__(self, *exc: object) -> None:
        self.tree.close()


def _write(tree: xr.DataTree, path: Path, engine: str) -> None:
    if engine == "zarr":
        # Zarr format 2 with consolidated metadata: xarray.open_datatree(path) then opens it
        # without a warning (format 3 has no consolidated metadata, and xarray warns when it
        # falls back to reading every group's metadata).
        tree.to_zarr(path, mode="w", consolidated=True, zarr_format=2)
    else:
        tree.to_netcdf(path, engine="h5netcdf")


# -- save and load ---------------------------------------------------------------------------
def save(
    dt: xr.DataTree,
    path: str | os.PathLike,
    *,
    log_likelihood: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write a fit's DataTree to ``path`` (a Zarr folder, or one ``.nc`` file).

    Parameters
    ----------
    dt : xarray.DataTree
        What :meth:`HierarchicalWeibull.fit` returned (or
        :meth:`~bayes_sarcoma.HierarchicalWeibull.sample_prior`), any extra groups included.
    path : str or path-like
        Ends in ``.zarr`` or has no suffix (a Zarr folder; the default choice) or ends in
        ``.nc`` (one NetCDF-4 file, needs ``h5py``).
    log_likelihood : bool, default True
        Keep the pointwise log-likelihood in the file, so that ``arviz_stats.loo`` works on
        the file opened with ``xarray.open_datatree`` alone. ``False`` leaves it out (it is
        most of a fit's size: chains x draws x patients floats) and :func:`load` recomputes
        it exactly.
    overwrite : bool, default False
        Replace an existing fit file at ``path``.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    FitFileError
        A bad suffix, an existing path without ``overwrite``, or NetCDF without ``h5py``.
    ValueError
        ``dt`` is not a fit of this package.

    Examples
    --------
    >>> import bayes_sarcoma as bs
    >>> df = bs.simulate_registry(800, random_seed=1)                    # doctest: +SKIP
    >>> dt = bs.HierarchicalWeibull("OS").fit(df, draws=200, tune=200)   # doctest: +SKIP
    >>> bs.save(dt, "os_fit.zarr")                                       # doctest: +SKIP
    PosixPath('os_fit.zarr')
    >>> dt = bs.load("os_fit.zarr", data=df)                             # doctest: +SKIP
    >>> bs.predict_survival(dt, df.head(3), [12, 60])                    # doctest: +SKIP
    """
    path = Path(path)
    engine = _engine(path)
    if not isinstance(dt, xr.DataTree):
        raise TypeError(f"dt must be an xarray.DataTree, not {type(dt).__name__}")
    spec = _spec(dt)
    if not spec or "design" not in dt.attrs:
        raise ValueError("dt was not written by HierarchicalWeibull.fit (no model/design attrs)")
    _check_target(path, overwrite)
    out = _storable_tree(dt, log_likelihood)
    _write_in_place(out, path, engine)
    return path


def _check_target(path: Path, overwrite: bool) -> None:
    """Refuse to replace an existing file without ``overwrite``, or a folder of other things."""
    if path.exists() and not overwrite:
        raise FitFileError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    is_store = (path / "zarr.json").exists() or (path / ".zgroup").exists()
    if path.exists() and path.is_dir() and not is_store:
        raise FitFileError(f"{path} is a folder that is not a Zarr store: not replacing it")


def _storable_tree(dt: xr.DataTree, log_likelihood: bool) -> xr.DataTree:
    """Return a copy of ``dt`` that files can hold, its attrs and provenance in one JSON attr."""
    has_ll = _LOG_LIKELIHOOD in dt.children
    ll_mode = "absent" if not has_ll else ("stored" if log_likelihood else "recompute")
    out = dt.copy()
    if ll_mode == "recompute":
        del out[_LOG_LIKELIHOOD]
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": HierarchicalWeibull.__name__,
        "package_version": __version__,
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_sha256": data_fingerprint(dt),
        "log_likelihood": ll_mode,
        "attrs": _all_attrs(dt),
        "object_arrays": _object_arrays(dt),
    }
    for node in out.subtree:
        node.attrs = {k: v for k, v in node.attrs.items() if _storable(v)}
    out.attrs[META_ATTR] = json.dumps(meta)
    return out


def _write_in_place(out: xr.DataTree, path: Path, engine: str) -> None:
    """Write next to the target, then move it in place: a failed write leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    _remove(tmp)
    try:
        _write(out, tmp, engine)
        _remove(path)
        tmp.rename(path)
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def load(path: str | os.PathLike, *, data: pd.DataFrame | None = None) -> xr.DataTree:
    """Read a fit written by :func:`save`; return its DataTree.

    Every verb works on it at once (no refitting): the specification, covariate coding,
    centres and reference time are in the DataTree; a model for a refit is
    :meth:`HierarchicalWeibull.from_datatree(dt) <bayes_sarcoma.HierarchicalWeibull.from_datatree>`.

    Parameters
    ----------
    path : str or path-like
        A ``.zarr`` folder or ``.nc`` file written by :func:`save`.
    data : pandas.DataFrame, optional
        The table the model was fitted on: checked against the file's fingerprint
        (:class:`DataMismatchError` if it is another table).

    Returns
    -------
    xarray.DataTree
        As :meth:`HierarchicalWeibull.fit` returned it (the pointwise log-likelihood
        recomputed if it was not stored), read into memory.

    Raises
    ------
    FitFileError
        Not a fit file, a fit of another model kind, a newer file format, or a file whose
        data no longer match its fingerprint.
    DataMismatchError
        ``data`` is not the fitting table.

    Examples
    --------
    >>> import bayes_sarcoma as bs
    >>> dt = bs.load("out/demo/lrfs.zarr")                               # doctest: +SKIP
    >>> bs.hazard_ratios(dt).loc["expert_center"]                     # doctest: +SKIP
    """
    path = Path(path)
    with _open(path) as tree:
        meta = _metadata(tree, path)
        dt = tree.load()
    dt = _restore_strings(dt, meta.get("object_arrays", {}))
    for node in dt.subtree:
        node.attrs = dict(meta["attrs"].get(node.path, node.attrs))
    if data_fingerprint(dt) != meta["data_sha256"]:
        raise FitFileError(
            f"{path}: the data stored in the file do not match the fingerprint recorded when "
            "it was saved (the file was altered or damaged)"
        )
    try:
        HierarchicalWeibull.from_datatree(dt)
    except (KeyError, ValueError, TypeError) as err:
        raise FitFileError(f"{path}: cannot rebuild the model from the file ({err})") from None
    if meta["log_likelihood"] == "recompute":
        dt[_LOG_LIKELIHOOD] = recompute_log_likelihood(dt)
        dt[_LOG_LIKELIHOOD].attrs = dict(meta["attrs"].get(f"/{_LOG_LIKELIHOOD}", {}))
    if data is not None:
        check_data(dt, data)
    return dt


def _object_arrays(dt: xr.DataTree) -> dict[str, list[str]]:
    """Name the object-dtype arrays (string ids and levels) of each group."""
    out = {}
    for node in dt.subtree:
        names = [str(k) for k, v in node.dataset.variables.items() if v.dtype == object]
        if names:
            out[node.path] = names
    return out


def _restore_strings(dt: xr.DataTree, object_arrays: Mapping[str, list[str]]) -> xr.DataTree:
    """Give string arrays back the object dtype they had in the fit.

    Zarr returns strings as NumPy ``StringDType``, NetCDF as fixed-width ``<U``; a fit
    holds ids and levels as object arrays (pandas' and the predictions' convention).
    """
    for node in dt.subtree:
        names = set(object_arrays.get(node.path, ()))
        ds = node.to_dataset()
        names |= {str(k) for k, v in ds.variables.items() if v.dtype.kind == "T"}
        if not names:
            continue
        # Variables, not DataArrays: a DataArray would bring back its old coordinates.
        fixed = {k: ds.variables[k].astype(object) for k in names if k in ds.variables}
        ds = ds.assign_coords({k: v for k, v in fixed.items() if k in ds.coords})
        node.dataset = ds.assign({k: v for k, v in fixed.items() if k in ds.data_vars})
    return dt


def recompute_log_likelihood(dt: xr.DataTree) -> xr.Dataset:
    """Return the pointwise log-likelihood group of a fit, from its posterior and data.

    The same computation :meth:`HierarchicalWeibull.fit` runs
    (:func:`bayes_sarcoma.model.posterior.pointwise_log_likelihood`), on the stored user-scale
    draws and data, so the values are identical to the ones the fit stored.

    Examples
    --------
    >>> ll = recompute_log_likelihood(dt)                                # doctest: +SKIP
    >>> ll["time"].dims                                                 # doctest: +SKIP
    ('chain', 'draw', 'patient')
    """
    post = dt["posterior"]
    obs, const = dt["observed_data"], dt["constant_data"]
    spec = _spec(dt)
    draws = {
        name: post[name].to_numpy()
        for name in (
            "intercept",
            "shape",
            "baseline_coef",
            "beta",
            "center_effect",
            "interaction_effect",
        )
        if name in post.data_vars
    }
    center_index = None
    if "center_effect" in draws:
        center_index = level_codes(
            pd.Series(const["center"].to_numpy()), list(post["center"].to_numpy())
        )
    treatment = modifier_index = None
    modifier = spec.get("effect_modifier")
    if modifier and "interaction_effect" in draws:
        treatment = const["treatment"].to_numpy().astype(float)
        modifier_index = level_codes(
            pd.Series(const[modifier].to_numpy()), list(post[modifier].to_numpy())
        )
    # Only the fields pointwise_log_likelihood reads (a full Prepared needs the raw table).
    prepared = SimpleNamespace(
        raw_x=const["x"].to_numpy(),
        center_index=center_index,
        treatment=treatment,
        modifier_index=modifier_index,
        time=obs["time"].to_numpy().astype(float),
        event=obs["event"].to_numpy().astype(float),
        entry=const["entry"].to_numpy().astype(float) if "entry" in const.data_vars else None,
    )
    ll = pointwise_log_likelihood(draws, prepared, Baseline.from_fit(dt))
    return xr.Dataset(
        {"time": (("chain", "draw", "patient"), ll)},
        coords={
            "chain": post["chain"].to_numpy(),
            "draw": post["draw"].to_numpy(),
            "patient": obs["patient"].to_numpy(),
        },
    )
