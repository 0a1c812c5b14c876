"""Named prior sets and model specifications, as TOML files in ``models/``.

A sensitivity study compares *named*, versioned choices rather than priors typed into a
script. Two kinds of file:

``models/priors/<name>.toml`` -- a prior set::

    description = "Sceptical about the expert centre ..."
    [priors]
    "beta:expert_center" = { dist = "Normal", mu = 0.0, sigma = 0.2 }

The ``[priors]`` table maps prior slots (``intercept``, ``shape``, ``beta``,
``beta:<term label>``, ``center_sd``, ``interaction_sd``; see :mod:`bayes_sarcoma.model.priors`)
to ``{dist = <PyMC family>, <hyperparameters>, [on = "precision" | "variance"]}``; slots left
out take the defaults (:data:`~bayes_sarcoma.model.priors.DEFAULT_PRIORS`).

``models/<name>.toml`` -- a model specification: the keys of
:meth:`HierarchicalWeibull.to_dict() <bayes_sarcoma.HierarchicalWeibull.to_dict>`
(``terms``, ``baseline``, ``center_effects``, ``effect_modifier``, ``reference``, ...) plus a
``description``; ``priors`` is either the name of a prior set or an inline table, and
``endpoint`` may be left out (a sensitivity grid gives one per cell). Keys left out take
:class:`~bayes_sarcoma.HierarchicalWeibull`'s defaults (TOML has no ``None``).

Where files are found, first match wins:

1. a path (anything ending in ``.toml`` or naming an existing file);
2. the directories in the environment variable ``BAYES_SARCOMA_MODELS``
   (``os.pathsep``-separated), each laid out as ``models/`` is;
3. ``models/`` next to the package in a source checkout
   (the ``models/`` folder beside the package).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from bayes_sarcoma.model.hierarchical import HierarchicalWeibull
from bayes_sarcoma.model.priors import Prior, PriorError, merge_priors, priors_to_dict

#: Environment variable listing extra model directories (``os.pathsep``-separated).
ENV_VAR = "BAYES_SARCOMA_MODELS"
_PRIOR_SET_KEYS = ("name", "description", "priors")
_MODEL_EXTRA_KEYS = ("name", "description")


class SpecError(ValueError):
    """A prior set or model specification is invalid or cannot be found."""


def model_dirs(extra: str | os.PathLike | None = None) -> list[Path]:
    """Return the directories searched for model files, in order.

    Parameters
    ----------
    extra : str or pathlib.Path, optional
        A directory searched first.

    Examples
    --------
    >>> from bayes_sarcoma.model.specs import model_dirs
    >>> model_dirs()[-1].name
    'models'
    """
    dirs = [Path(extra)] if extra is not None else []
    env = os.environ.get(ENV_VAR, "")
    dirs += [Path(p) for p in env.split(os.pathsep) if p]
    # A source checkout (or editable install) has models/ beside the package; a wheel
    # installs them as data files under <prefix>/share/bayes_sarcoma/models.
    dirs.append(Path(__file__).resolve().parents[2] / "models")
    installed = Path(sys.prefix) / "share" / "bayes_sarcoma" / "models"
    if installed.is_dir():
        dirs.append(installed)
    return dirs


def _find(name: str | os.PathLike, subdir: str, kind: str, models_dir) -> Path:
    path = Path(name)
    if path.suffix == ".toml" or path.is_file():
        if not path.is_file():
            raise SpecError(f"{kind} file {str(path)!r} does not exist")
        return path
    for directory in model_dirs(models_dir):
        candidate = directory / subdir / f"{name}.toml"
        if candidate.is_file():
            return candidate
    known = sorted(_available(subdir, models_dir))
    raise SpecError(
        f"no {kind} named {str(name)!r}; known: {', '.join(known) or 'none'} "
        f"(searched {', '.join(str(d / subdir) for d in model_dirs(models_dir))}; "
        f"set {ENV_VAR} or pass a path)"
    )


def _available(subdir: str, models_dir=None) -> set[str]:
    names: set[str] = set()
    for directory in model_dirs(models_dir):
        names |= {p.stem for p in (directory / subdir).glob("*.toml")}
    return names


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{path}: not valid TOML: {err}") from None


def available_prior_sets(models_dir: str | os.PathLike | None = None) -> list[str]:
    """Return the names of the prior sets found (see the module docstring).

    Examples
    --------
    >>> from bayes_sarcoma.model.specs import available_prior_sets
    >>> "sceptical" in available_prior_sets()
    True
    """
    return sorted(_available("priors", models_dir))


def available_model_specs(models_dir: str | os.PathLike | None = None) -> list[str]:
    """Return the names of the model specifications found.

    Examples
    --------
    >>> from bayes_sarcoma.model.specs import available_model_specs
    >>> "netsarc_weibull" in available_model_specs()
    True
    """
    return sorted(_available("", models_dir))


# -- prior sets ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PriorSet:
    """A named set of priors, merged over the defaults when a model uses it.

    Parameters
    ----------
    name : str
        The set's name (the file stem for a file).
    priors : mapping of str to Prior
        The priors it sets, by slot (only those it changes; see :attr:`merged`).
    description : str
        One or two sentences: what the set says and why.

    Examples
    --------
    >>> from bayes_sarcoma.model.specs import PriorSet
    >>> ps = PriorSet.from_dict(
    ...     {"name": "sceptical", "priors": {"beta:expert_center": {"dist": "Normal", "mu": 0,
    ...                                                          "sigma": 0.2}}})
    >>> ps.merged["beta:expert_center"]
    Prior('Normal', mu=0.0, sigma=0.2)
    >>> PriorSet.from_dict(ps.to_dict()) == ps
    True
    """

    name: str
    priors: Mapping[str, Prior] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self):
        # Validate slots and families now (merge_priors raises PriorError), and freeze.
        merged = merge_priors(self.priors)
        object.__setattr__(self, "priors", MappingProxyType({k: merged[k] for k in self.priors}))

    @property
    def merged(self) -> dict[str, Prior]:
        """The full prior set: the defaults with this set's priors over them."""
        return merge_priors(self.priors)

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"name", "description", "priors": {slot: {"dist": ..., ...}}}``."""
        return {
            "name": self.name,
            "description": self.description,
            "priors": priors_to_dict(self.priors),
        }

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any], *, name: str | None = None) -> PriorSet:
        """Build a prior set from :meth:`to_dict`'s output (or a parsed TOML file).

        Raises
        ------
        SpecError
            Unknown keys, unknown slots or invalid distributions (the message names them).
        """
        return cls._from_dict(spec, name, str(name or spec.get("name") or "prior set"))

    @classmethod
    def _from_dict(cls, spec: Mapping[str, Any], name: str | None, where: str) -> PriorSet:
        unknown = sorted(set(spec) - set(_PRIOR_SET_KEYS))
        if unknown:
            raise SpecError(
                f"{where}: unknown prior-set keys {unknown}; allowed: {list(_PRIOR_SET_KEYS)}"
            )
        priors = spec.get("priors", {})
        if not isinstance(priors, Mapping):
            raise SpecError(f"{where}: 'priors' must be a table of slot = {{dist = ...}}")
        try:
            return cls(
                name=str(name or spec.get("name") or "unnamed"),
                priors=priors,
                description=str(spec.get("description", "")),
            )
        except PriorError as err:
            raise SpecError(f"{where}: {err}") from None


def load_prior_set(
    name: str | os.PathLike | PriorSet, *, models_dir: str | os.PathLike | None = None
) -> PriorSet:
    """Load a prior set by name (``"sceptical"``) or path (``"my/priors.toml"``).

    Parameters
    ----------
    name : str, pathlib.Path or PriorSet
        A name looked up in the model directories, a TOML file, or a PriorSet (returned).
    models_dir : str or pathlib.Path, optional
        A directory searched before the others (laid out as ``models/``).

    Returns
    -------
    PriorSet

    Raises
    ------
    SpecError
        The set is not found, or the file is invalid (the message names the file).

    Examples
    --------
    >>> from bayes_sarcoma.model.specs import load_prior_set
    >>> load_prior_set("sceptical").merged["beta:expert_center"]
    Prior('Normal', mu=0.0, sigma=0.2)
    """
    if isinstance(name, PriorSet):
        return name
    path = _find(name, "priors", "prior set", models_dir)
    raw = _read_toml(path)
    return PriorSet._from_dict(raw, raw.get("name") or path.stem, str(path))


# -- model specifications ------------------------------------------------------------------
def _model_keys() -> tuple[str, ...]:

    return tuple(HierarchicalWeibull(time="time", event="event").to_dict())


@dataclass(frozen=True)
class ModelSpec:
    """A named model specification: :class:`~bayes_sarcoma.HierarchicalWeibull` options.

    Parameters
    ----------
    name : str
        The spec's name (the file stem for a file).
    options : mapping
        Keyword arguments of :class:`~bayes_sarcoma.HierarchicalWeibull` (the keys of its
        ``to_dict()``) except ``priors``; keys left out take the class defaults.
    priors : str, mapping or None
        The name of a prior set, or inline priors ``{slot: {"dist": ...}}``; None: defaults.
    description : str
        What the model is for.

    Examples
    --------
    >>> from bayes_sarcoma.model.specs import load_model_spec
    >>> spec = load_model_spec("netsarc_exponential")
    >>> spec.build("OS").baseline
    'exponential'
    >>> type(spec).from_dict(spec.to_dict()) == spec
    True
    """

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    priors: str | Mapping[str, Any] | None = None
    description: str = ""
    #: The file the spec was read from (prior sets it names are looked up next to it).
    source: Path | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        allowed = set(_model_keys()) - {"priors"}
        unknown = sorted(set(self.options) - allowed)
        if unknown:
            raise SpecError(
                f"{self.name}: unknown model specification keys {unknown}; "
                f"allowed: {sorted(allowed | {'priors', 'description'})}"
            )
        if self.priors is not None and not isinstance(self.priors, str | Mapping):
            raise SpecError(f"{self.name}: 'priors' must be a prior-set name or a table")
        if isinstance(self.priors, Mapping):
            try:
                merge_priors(self.priors)
            except PriorError as err:
                raise SpecError(f"{self.name}: {err}") from None
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    def prior_set(self, *, models_dir: str | os.PathLike | None = None) -> PriorSet:
        """Return the spec's own priors as a :class:`PriorSet`."""
        if isinstance(self.priors, str):
            return load_prior_set(self.priors, models_dir=models_dir or self._home)
        return PriorSet(f"{self.name}:priors", dict(self.priors or {}))

    def build(
        self,
        endpoint: str | None = None,
        *,
        priors: PriorSet | str | None = None,
        models_dir: str | os.PathLike | None = None,
    ):
        """Return a :class:`~bayes_sarcoma.HierarchicalWeibull` for this specification.

        Parameters
        ----------
        endpoint : str, optional
            Overrides the spec's endpoint (``"LRFS"``, ``"RFS"``, ``"OS"``).
        priors : PriorSet or str, optional
            Replaces the spec's priors (a grid cell's prior set); merged over the defaults.
        models_dir : str or pathlib.Path, optional
            Where to look for a prior set named by the spec.
        """
        chosen = self.prior_set(models_dir=models_dir) if priors is None else priors
        chosen = load_prior_set(chosen, models_dir=models_dir or self._home)
        spec = dict(self.options)
        if endpoint is not None:
            spec["endpoint"] = endpoint
        spec["priors"] = dict(chosen.priors)
        try:
            return HierarchicalWeibull.from_dict(spec)
        except PriorError as err:
            raise SpecError(f"{self.name}: {err}") from None

    @property
    def _home(self) -> Path | None:
        return None if self.source is None else self.source.parent

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"name", "description", <options>, "priors"}`` (TOML/JSON friendly)."""
        out: dict[str, Any] = {"name": self.name, "description": self.description}
        out.update(self.options)
        if self.priors is not None:
            out["priors"] = (
                self.priors if isinstance(self.priors, str) else _plain_priors(self.priors)
            )
        return out

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any], *, name: str | None = None) -> ModelSpec:
        """Build a spec from :meth:`to_dict`'s output, a TOML file or ``model.to_dict()``.

        Raises
        ------
        SpecError
            Unknown keys or invalid priors (the message names them).
        """
        spec = dict(spec)
        label = str(name or spec.pop("name", None) or "unnamed")
        spec.pop("name", None)
        description = str(spec.pop("description", "") or "")
        priors = spec.pop("priors", None)
        return cls(label, spec, priors, description)


def _plain_priors(priors: Mapping[str, Any]) -> dict[str, dict]:
    return {slot: (p.to_dict() if isinstance(p, Prior) else dict(p)) for slot, p in priors.items()}


def load_model_spec(
    name: str | os.PathLike | ModelSpec, *, models_dir: str | os.PathLike | None = None
) -> ModelSpec:
    """Load a model specification by name (``"netsarc_weibull"``) or path.

    Parameters
    ----------
    name : str, pathlib.Path or ModelSpec
        A name looked up in the model directories, a TOML file, or a ModelSpec (returned).
    models_dir : str or pathlib.Path, optional
        A directory searched before the others.

    Returns
    -------
    ModelSpec

    Raises
    ------
    SpecError
        Not found, or invalid (unknown keys, bad priors; the message names the file).

    Examples
    --------
    >>> from bayes_sarcoma.model.specs import load_model_spec
    >>> load_model_spec("netsarc_margin_interaction").build("LRFS").effect_modifier
    'margin'
    """
    if isinstance(name, ModelSpec):
        return name
    path = _find(name, "", "model specification", models_dir)
    raw = _read_toml(path)
    label = str(raw.get("name") or path.stem)
    try:
        spec = ModelSpec.from_dict(raw, name=label)
        spec = dataclasses.replace(spec, source=path.resolve())
        spec.prior_set(models_dir=models_dir)  # a named prior set must exist
        return spec
    except SpecError as err:
        raise SpecError(f"{path}: {str(err).removeprefix(label + ': ')}") from None
