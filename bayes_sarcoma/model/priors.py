"""Priors as data: a small ``Prior`` spec, the defaults, and how they enter the model.

Why not pymc-extras ``Prior``: pymc-extras 0.15 pins ``pymc < 6.4``, and its ``Prior``
bakes hyperparameters into the graph as constants, so every prior set would recompile
the model. Here a prior's *family* is part of the model's structure while its
*hyperparameters* are ``pm.Data``: a sensitivity study over prior sets of the same
families compiles once. A pymc-extras ``Prior`` (anything with ``.distribution`` and
``.parameters``), or a dict ``{"dist": "Normal", "mu": 0, "sigma": 1}``, is accepted
wherever a :class:`Prior` is.

Prior slots of :class:`~bayes_sarcoma.HierarchicalWeibull`:

``intercept``
    Log cumulative hazard at the reference time ``t_ref`` (the median observed time) of
    the *average* patient (every design column at its mean) at a typical centre. Sampling
    on this scale keeps the intercept nearly uncorrelated with the shape and the
    coefficients; the posterior ``intercept`` is then converted to the contract's scale
    (DESIGN.md section 4).
``shape``
    Weibull shape ``alpha`` (absent for the exponential baseline).
``beta``
    Default prior for every coefficient: per standard deviation for continuous terms
    (autoscaling, as rstanarm does), per unit for binary and dummy terms.
``beta:<label>``
    Prior for one coefficient, e.g. ``beta:expert_center`` or ``beta:margin[R1]``, on
    the user's scale of that term (per year of age, per cm). Location-scale families only,
    so that rescaling is exact.
``center_sd``
    Standard deviation ``sigma_u`` of the centre effects. ``on="precision"`` or
    ``on="variance"`` puts the distribution on ``1/sigma_u**2`` or ``sigma_u**2``
    instead (BUGS-style ``tau ~ dgamma(0.001, 0.001)`` is
    ``Prior("Gamma", alpha=0.001, beta=0.001, on="precision")``).
``interaction_sd``
    Spread of the treatment effect across the levels of an effect modifier (margin).
``baseline_sd``
    The smoothness of a flexible baseline (``"mspline"``, ``"piecewise"``): the sd of the
    random walk of its log coefficients; 0 is a constant hazard. See
    :mod:`bayes_sarcoma.model.baselines` for the prior and its default.

Why these defaults (DESIGN.md section 3.3: a small data set must speak)

``beta ~ Normal(0, 2.5)`` on the data's scale is rstanarm's autoscaled default (its priors
vignette: Normal(0, 2.5), the scale divided by ``sd(x)`` for a predictor with more than
two values and by ``range(x)`` for one with two; ``stan_surv`` uses 2 with the same
rule). The design already samples a continuous coefficient per SD of its column and a
binary or dummy coefficient per unit (``range = 1``), so the scaling is rstanarm's
exactly; only the 2.5 is new. The former ``Normal(0, 1)`` was informative about a
strong binary effect: in the normal approximation it shrinks a log hazard ratio of
-1.9 +- 0.55 by ``0.55**2 / (1 + 0.55**2) = 23%`` (to -1.46), ``Normal(0, 2.5)`` by 4.6%,
while its 95% range of hazard ratios, 1/134 to 134 per SD or between groups, still rules
out the absurd. Measured on 100 patients in 50 centres with a true log hazard ratio of -2
for a patient-level binary term (``tests/model/test_priors.py``, 20 simulated data sets):
the default posterior mean is within 15% of the BUGS-style vague prior's in 17 of 20
(median gap 9.5%), ``Normal(0, 1)`` in 2 of 20 (median 23.5%). Age, sampled per SD (15.7
years in the simulated registry) and reported per 10 years, has Normal(0, 1.6) per 10
years.

The ``intercept``, ``shape``, ``center_sd`` and ``interaction_sd`` defaults are kept. On
the same data sets a LogNormal(0, 0.5) shape, a HalfNormal(1) or an Exponential(1)
centre SD (rstanarm's ``decov`` for one varying intercept) lower the median gap to
8.2-9.1% and change none of the 20 verdicts. The intercept prior is the largest remaining
pull, but it is already on a scale set by the data (``t_ref``), and a wider one
(Normal(0, 2.5): median gap 7.5%) would put the prior median survival anywhere from days
to a millennium. HalfNormal(0.5) on ``center_sd`` does not cause divergences on data with
a small centre SD: on 1500 patients in 60 centres with a true SD of 0.02 or 0.1 both
engines gave 0 or 1 in 4000 draws, with HalfNormal(0.5) and HalfNormal(1) alike; those of
tiny centres come from the sampled engine's funnel, which the integrated engine removes.
Power-scaling
(:mod:`bayes_sarcoma.checks.power_scaling`) tells a user whose data conflict with a prior.
docs/model.md ("Why these defaults") gives the figures and how they were measured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

#: family -> (support, parameter names)
FAMILIES = MappingProxyType(
    {
        "Normal": ("real", ("mu", "sigma")),
        "StudentT": ("real", ("nu", "mu", "sigma")),
        "Cauchy": ("real", ("alpha", "beta")),
        "Laplace": ("real", ("mu", "b")),
        "Logistic": ("real", ("mu", "s")),
        "HalfNormal": ("positive", ("sigma",)),
        "HalfStudentT": ("positive", ("nu", "sigma")),
        "HalfCauchy": ("positive", ("beta",)),
        "Exponential": ("positive", ("lam",)),
        "Gamma": ("positive", ("alpha", "beta")),
        "InverseGamma": ("positive", ("alpha", "beta")),
        "LogNormal": ("positive", ("mu", "sigma")),
        "Uniform": ("interval", ("lower", "upper")),
    }
)
#: real families with a location and a scale parameter (exact rescaling of coefficients)
LOCATION_SCALE = MappingProxyType(
    {
        "Normal": ("mu", "sigma"),
        "StudentT": ("mu", "sigma"),
        "Cauchy": ("alpha", "beta"),
        "Laplace": ("mu", "b"),
        "Logistic": ("mu", "s"),
    }
)
#: parameters that must be > 0
POSITIVE_PARAMETERS = frozenset({"sigma", "nu", "b", "s", "lam", "alpha", "beta"})
#: slot -> allowed supports
SLOTS = MappingProxyType(
    {
        "intercept": ("real", "interval"),
        "shape": ("positive", "interval"),
        "beta": ("real",),
        "center_sd": ("positive", "interval"),
        "interaction_sd": ("positive", "interval"),
        "baseline_sd": ("positive", "interval"),
    }
)
#: Slots that are standard deviations (``on="precision"`` or ``"variance"`` allowed).
SD_SLOTS = ("center_sd", "interaction_sd", "baseline_sd")
SCALE_TRANSFORMS = ("sd", "precision", "variance")


class PriorError(ValueError):
    """A prior specification is invalid; the message says which slot and why."""


@dataclass(frozen=True)
class Prior:
    """A prior distribution: a PyMC family name and numeric hyperparameters.

    Parameters
    ----------
    distribution : str
        A PyMC distribution name from :data:`FAMILIES`, e.g. ``"Normal"``.
    on : {"sd", "precision", "variance"}, default "sd"
        For ``center_sd`` and ``interaction_sd`` only: the quantity the distribution is on.
    **parameters : float
        The hyperparameters, by PyMC's names (``mu``, ``sigma``, ``nu``, ``lam`` ...).

    Examples
    --------
    >>> Prior("Normal", mu=0, sigma=0.2)
    Prior('Normal', mu=0.0, sigma=0.2)
    >>> Prior("Gamma", alpha=0.001, beta=0.001, on="precision").to_dict()
    {'dist': 'Gamma', 'alpha': 0.001, 'beta': 0.001, 'on': 'precision'}
    """

    distribution: str
    parameters: Mapping[str, float] = field(default_factory=dict)
    on: str = "sd"

    def __init__(self, distribution: str, /, *, on: str = "sd", **parameters: float):
        object.__setattr__(self, "distribution", distribution)
        object.__setattr__(self, "on", on)
        object.__setattr__(
            self, "parameters", MappingProxyType({k: _number(v) for k, v in parameters.items()})
        )
        self.check()

    def __reduce__(self):
        # MappingProxyType does not pickle; rebuild from plain values (Dask, processes).
        return (_rebuild_prior, (self.distribution, self.on, dict(self.parameters)))

    def check(self, slot: str = "prior") -> None:
        """Raise :class:`PriorError` if the family or a hyperparameter is invalid."""
        if self.distribution not in FAMILIES:
            raise PriorError(
                f"{slot}: unknown distribution {self.distribution!r}; "
                f"choose one of {', '.join(FAMILIES)}"
            )
        names = FAMILIES[self.distribution][1]
        given = set(self.parameters)
        if given != set(names):
            missing = sorted(set(names) - given)
            extra = sorted(given - set(names))
            parts = [f"missing {missing}"] if missing else []
            parts += [f"unknown {extra}"] if extra else []
            raise PriorError(
                f"{slot}: {self.distribution} takes parameters {list(names)} ({'; '.join(parts)})"
            )
        for name, value in self.parameters.items():
            if not math.isfinite(value):
                raise PriorError(
                    f"{slot}: {self.distribution} parameter {name}={value} must be finite"
                )
            if name in POSITIVE_PARAMETERS and value <= 0:
                raise PriorError(
                    f"{slot}: {self.distribution} parameter {name}={value} must be > 0"
                )
        if self.distribution == "Uniform" and self.parameters["upper"] <= self.parameters["lower"]:
            raise PriorError(f"{slot}: Uniform needs lower < upper")
        if self.on not in SCALE_TRANSFORMS:
            raise PriorError(f"{slot}: on={self.on!r} must be one of {SCALE_TRANSFORMS}")

    @property
    def support(self) -> str:
        """``"real"``, ``"positive"`` or ``"interval"``."""
        return FAMILIES[self.distribution][0]

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"dist": ..., <parameters>, ["on": ...]}`` (TOML/JSON friendly)."""
        out: dict[str, Any] = {"dist": self.distribution, **self.parameters}
        if self.on != "sd":
            out["on"] = self.on
        return out

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> Prior:
        """Build a prior from ``{"dist": "Normal", "mu": 0, "sigma": 1}``.

        The pymc-extras form ``{"dist": "Normal", "kwargs": {...}}`` is accepted too.
        """
        spec = dict(spec)
        if "dist" not in spec:
            raise PriorError(f"a prior needs a 'dist' key; got keys {sorted(spec)}")
        dist = spec.pop("dist")
        params = dict(spec.pop("kwargs", {}))
        params.update(spec)
        return cls(dist, **params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.parameters.items())
        on = "" if self.on == "sd" else f", on={self.on!r}"
        return f"Prior({self.distribution!r}, {args}{on})"

    def rescaled(self, factor: float) -> Prior:
        """Return the prior of ``x * factor`` for a location-scale family."""
        loc, scale = LOCATION_SCALE[self.distribution]
        params = dict(self.parameters)
        params[loc] *= factor
        params[scale] *= abs(factor)
        return Prior(self.distribution, on=self.on, **params)


def _rebuild_prior(distribution: str, on: str, parameters: dict) -> Prior:
    return Prior(distribution, on=on, **parameters)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise PriorError(f"prior hyperparameters must be numbers, got {value!r}") from None


#: Weakly-informative defaults; see the module docstring ("Why these defaults") and
#: docs/model.md ("Priors") for the reasoning, and tests/model/test_priors.py and
#: tests/model/test_model.py for the checks that keep them honest.
DEFAULT_PRIORS = MappingProxyType(
    {
        "intercept": Prior("Normal", mu=0.0, sigma=1.25),
        "shape": Prior("LogNormal", mu=0.0, sigma=0.35),
        "beta": Prior("Normal", mu=0.0, sigma=2.5),
        "center_sd": Prior("HalfNormal", sigma=0.5),
        "interaction_sd": Prior("HalfNormal", sigma=0.25),
        "baseline_sd": Prior("HalfNormal", sigma=1.0),
    }
)


def as_prior(value: Any, slot: str) -> Prior:
    """Coerce a user's prior (Prior, dict, or pymc-extras Prior) into a checked :class:`Prior`."""
    if isinstance(value, Prior):
        prior = value
    elif isinstance(value, Mapping):
        try:
            prior = Prior.from_dict(value)
        except PriorError as err:
            raise PriorError(f"{slot}: {err}") from None
    elif hasattr(value, "distribution") and hasattr(value, "parameters"):
        # pymc-extras Prior: only numeric hyperparameters can become data.
        try:
            prior = Prior(str(value.distribution), **dict(value.parameters))
        except PriorError as err:
            raise PriorError(f"{slot}: {err} (nested priors are not supported)") from None
    else:
        raise PriorError(f"{slot}: expected a Prior or a dict, got {type(value).__name__}")
    prior.check(slot)
    base = slot.split(":", 1)[0]
    allowed = SLOTS[base]
    if prior.support not in allowed:
        raise PriorError(
            f"{slot}: a {prior.distribution} prior has {prior.support} support; "
            f"{base} needs one of {allowed}"
        )
    if base == "beta" and prior.distribution not in LOCATION_SCALE:
        raise PriorError(f"{slot}: coefficient priors must be one of {list(LOCATION_SCALE)}")
    if prior.distribution == "Uniform" and base != "intercept" and prior.parameters["lower"] < 0:
        raise PriorError(f"{slot}: Uniform lower bound must be >= 0 for a positive quantity")
    if prior.on != "sd" and base not in SD_SLOTS:
        raise PriorError(f"{slot}: on={prior.on!r} is only for {', '.join(SD_SLOTS)}")
    return prior


def merge_priors(priors: Mapping[str, Any] | None) -> dict[str, Prior]:
    """Return the defaults with the user's priors merged over them (nothing is mutated).

    Raises
    ------
    PriorError
        An unknown slot or an invalid prior.
    """
    merged = dict(DEFAULT_PRIORS)
    for slot, value in (priors or {}).items():
        base = slot.split(":", 1)[0]
        if base not in SLOTS or (":" in slot and base != "beta"):
            raise PriorError(
                f"unknown prior slot {slot!r}; slots are {', '.join(SLOTS)} and 'beta:<term label>'"
            )
        merged[slot] = as_prior(value, slot)
    return merged


def priors_to_dict(priors: Mapping[str, Prior]) -> dict[str, dict]:
    """Return ``{slot: prior.to_dict()}``."""
    return {slot: prior.to_dict() for slot, prior in priors.items()}


@dataclass(frozen=True)
class PriorPlan:
    """How a prior set enters a model: its structure and its hyperparameter values.

    ``structure`` is hashable and decides the compiled model; ``values`` maps the
    ``pm.Data`` names of the hyperparameters to arrays and can change freely.
    """

    structure: tuple
    values: dict[str, np.ndarray]
    beta_groups: tuple[tuple[str, tuple[int, ...]], ...]
    beta_priors: tuple[Prior, ...]


def plan_priors(priors: Mapping[str, Prior], labels: list[str], scales: np.ndarray) -> PriorPlan:
    """Lay out the priors for the design columns ``labels``.

    Parameters
    ----------
    priors : mapping
        Merged priors (:func:`merge_priors`).
    labels : list of str
        Term labels of the design columns.
    scales : numpy.ndarray
        Each design column's sampling scale (its sd for continuous terms, else 1):
        a term-specific prior on the user's scale becomes a prior on ``beta * scale``.
    """
    unknown = [s.split(":", 1)[1] for s in priors if s.startswith("beta:")]
    unknown = [label for label in unknown if label not in labels]
    if unknown:
        raise PriorError(f"priors given for unknown terms {unknown}; the terms are {labels}")
    per_term = []
    for j, label in enumerate(labels):
        if f"beta:{label}" in priors:
            per_term.append(priors[f"beta:{label}"].rescaled(float(scales[j])))
        else:
            per_term.append(priors["beta"])
    families = sorted({p.distribution for p in per_term})
    groups = tuple(
        (fam, tuple(j for j, p in enumerate(per_term) if p.distribution == fam)) for fam in families
    )
    values: dict[str, np.ndarray] = {}
    for fam, idx in groups:
        for name in FAMILIES[fam][1]:
            values[f"prior_beta_{fam}_{name}"] = np.array(
                [per_term[j].parameters[name] for j in idx]
            )
    structure: list = [("beta", groups)]
    for slot in ("intercept", "shape", "center_sd", "interaction_sd", "baseline_sd"):
        prior = priors[slot]
        # A Uniform's bounds are structural: the initial value must lie inside them.
        bounds = tuple(prior.parameters.values()) if prior.distribution == "Uniform" else ()
        structure.append((slot, prior.distribution, prior.on, bounds))
        for name, value in prior.parameters.items():
            values[f"prior_{slot}_{name}"] = np.asarray(value, dtype=float)
    first = tuple(per_term[idx[0]] for _, idx in groups)
    return PriorPlan(tuple(structure), values, groups, first)
