"""Power-scaling sensitivity: would a stronger or weaker prior move the posterior.

Power-scaling (Kallioinen et al. 2024) raises the prior (or the likelihood) to a power
``alpha`` near 1 and measures, by Pareto-smoothed importance sampling on the existing
draws, how much each posterior quantity moves: no refit is needed. ArviZ implements it
(:func:`arviz_stats.psense`, :func:`arviz_stats.psense_summary`); it needs a ``log_prior``
group, which PyMC fits through nutpie do not store. :func:`log_prior` computes it here.

Which priors are scaled. Only the *top-level* priors: ``intercept``, ``shape``, ``beta``
(each coefficient), ``center_sd``, ``interaction_sd`` and a flexible baseline's
``baseline_sd``. The centre effects' prior ``u_c ~ Normal(0, sigma_u)`` is part of the
hierarchical model, not a choice of prior: power-scaling it also scales the population model
and is known to flag sensitivity that is not there (Kallioinen et al., section 5), so it is
left out; so are the steps of a spline baseline's random walk (``baseline_raw``), which
``baseline_sd`` scales in the same way.

On which scale. A prior's density is evaluated on the quantity the prior is *defined*
on (power-scaling is not invariant to reparameterisation): the intercept on its
reference-time scale (``intercept_c`` = log cumulative hazard at ``t_ref`` of the average
patient), coefficients per unit of the sampling design (per SD for continuous terms),
``center_sd`` as an SD, a precision or a variance as its prior says. The user-scale draws
of the DataTree are mapped back with ``dt.attrs["t_ref"]`` and the stored design.

Reading the result: a prior sensitivity of at least 0.05 (the cumulative Jensen-Shannon
distance between the posteriors at ``alpha = 0.99`` and ``1.01``, ArviZ's threshold)
means the prior matters for that quantity; with a low likelihood sensitivity too it is a
*strong prior / weak likelihood*, with a high one a *prior-data conflict*.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import xarray as xr
from scipy import stats

from bayes_sarcoma.data.design import Design
from bayes_sarcoma.model.baselines import Baseline
from bayes_sarcoma.model.io import recompute_log_likelihood
from bayes_sarcoma.model.priors import FAMILIES, Prior, merge_priors, plan_priors

#: ArviZ's threshold of the power-scaling sensitivity.
THRESHOLD = 0.05
SAMPLE_DIMS = ("chain", "draw")


class _HalfStudentT:
    """|T| for T ~ StudentT(nu, 0, sigma): scipy has no half-t, so fold the t."""

    def __init__(self, nu: float, sigma: float):
        self._t = stats.t(df=nu, loc=0.0, scale=sigma)

    def logpdf(self, x):
        x = np.asarray(x, dtype=float)
        with np.errstate(divide="ignore"):
            return np.where(x >= 0, np.log(2.0) + self._t.logpdf(x), -np.inf)

    def rvs(self, size=None, random_state=None):
        return np.abs(self._t.rvs(size=size, random_state=random_state))


def scipy_distribution(prior: Prior):
    """Return the scipy.stats distribution of ``prior`` (PyMC's parameterisation), to draw.

    Densities come from PyMC itself (:func:`pymc_log_densities`). Draws use scipy: the
    prior predictive and SBC draw from a prior thousands of times, and ``pymc.draw``
    compiles a function per prior. Tests check this mapping against PyMC's densities and
    draws, family by family.

    Parameters
    ----------
    prior : Prior
        Any family of :data:`bayes_sarcoma.model.priors.FAMILIES`.

    Returns
    -------
    object
        A frozen distribution with ``logpdf`` and ``rvs`` (on the quantity the prior is on;
        see ``prior.on``).

    Examples
    --------
    >>> from bayes_sarcoma import Prior
    >>> from bayes_sarcoma.checks.power_scaling import scipy_distribution
    >>> round(float(scipy_distribution(Prior("Exponential", lam=2.0)).mean()), 6)
    0.5
    """
    p = prior.parameters
    match prior.distribution:
        case "Normal":
            return stats.norm(p["mu"], p["sigma"])
        case "StudentT":
            return stats.t(df=p["nu"], loc=p["mu"], scale=p["sigma"])
        case "Cauchy":
            return stats.cauchy(p["alpha"], p["beta"])
        case "Laplace":
            return stats.laplace(p["mu"], p["b"])
        case "Logistic":
            return stats.logistic(p["mu"], p["s"])
        case "HalfNormal":
            return stats.halfnorm(scale=p["sigma"])
        case "HalfStudentT":
            return _HalfStudentT(p["nu"], p["sigma"])
        case "HalfCauchy":
            return stats.halfcauchy(scale=p["beta"])
        case "Exponential":
            return stats.expon(scale=1.0 / p["lam"])
        case "Gamma":
            return stats.gamma(a=p["alpha"], scale=1.0 / p["beta"])
        case "InverseGamma":
            return stats.invgamma(a=p["alpha"], scale=p["beta"])
        case "LogNormal":
            return stats.lognorm(s=p["sigma"], scale=np.exp(p["mu"]))
        case "Uniform":
            return stats.uniform(p["lower"], p["upper"] - p["lower"])
    raise ValueError(f"no scipy distribution for {prior.distribution!r}; known: {list(FAMILIES)}")


def sd_to_prior_scale(sd: Any, on: str) -> Any:
    """Map an SD to the quantity its prior is on (``"sd"``, ``"precision"``, ``"variance"``)."""
    return {"sd": lambda s: s, "precision": lambda s: s**-2.0, "variance": lambda s: s**2.0}[on](sd)


@dataclass(frozen=True)
class TopLevelPriors:
    """The top-level priors of a fitted model, each on the scale it is defined on.

    ``beta`` holds one prior per design column (term-specific priors already rescaled to
    the sampling scale), in the order of ``labels``.
    """

    priors: Mapping[str, Prior]
    beta: tuple[Prior, ...]
    labels: tuple[str, ...]
    design: Design
    t_ref: float
    baseline: Baseline

    @classmethod
    def from_datatree(cls, dt: xr.DataTree) -> TopLevelPriors:
        """Read the model specification and coding stored in ``dt.attrs``."""
        return cls.from_spec(
            _json(dt.attrs["model"]),
            Design.from_dict(_json(dt.attrs["design"])),
            float(dt.attrs["t_ref"]),
            Baseline.from_fit(dt),
        )

    @classmethod
    def from_spec(
        cls,
        spec: Mapping[str, Any],
        design: Design,
        t_ref: float,
        baseline: Baseline | None = None,
    ) -> TopLevelPriors:
        """Build from a model specification (``model.to_dict()``), its design and ``t_ref``.

        ``baseline``: the fitted baseline (a spline's knots); default the spec's Weibull or
        exponential baseline.
        """
        priors = merge_priors(spec.get("priors"))
        plan = plan_priors(priors, design.labels, design.scale)
        per_term: list[Prior | None] = [None] * len(design.labels)
        for fam, idx in plan.beta_groups:
            names = FAMILIES[fam][1]
            for k, j in enumerate(idx):
                values = {n: float(plan.values[f"prior_beta_{fam}_{n}"][k]) for n in names}
                per_term[j] = Prior(fam, **values)
        return cls(
            priors=priors,
            beta=tuple(per_term),  # type: ignore[arg-type]
            labels=tuple(design.labels),
            design=design,
            t_ref=float(t_ref),
            baseline=baseline or Baseline(spec.get("baseline", "weibull")),
        )

    def draw(
        self, n: int, rng: np.random.Generator, *, slots: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Draw the top-level parameters from their priors, on the sampling scale.

        Returns the internal names of :func:`bayes_sarcoma.model.posterior.internal_parameters`
        (``intercept_c``, ``shape``, ``beta_std``, ``center_sd``, ``interaction_sd``; sds
        as sds whatever their prior is on), each with leading dims ``(1, n)``. ``slots``
        limits the sd slots drawn (default both; a model uses those it has). A precision
        (variance) drawn as 0 (infinite) -- Gamma(0.001, 0.001) does that in double
        precision -- is set to the smallest positive float (largest float), so the sd
        stays finite.
        """
        tiny, huge = np.finfo(float).tiny, np.finfo(float).max

        def rvs(prior: Prior) -> np.ndarray:
            return np.asarray(scipy_distribution(prior).rvs(size=n, random_state=rng), float)

        out = {"intercept_c": rvs(self.priors["intercept"])[None]}
        if self.baseline.name == "weibull":
            out["shape"] = rvs(self.priors["shape"])[None]
        elif self.baseline.exponential:
            out["shape"] = np.ones((1, n))
        beta = [rvs(p) for p in self.beta]
        out["beta_std"] = np.stack(beta, axis=-1)[None] if beta else np.zeros((1, n, 0))
        slots = list(slots if slots is not None else ("center_sd", "interaction_sd"))
        if self.baseline.spline:
            slots.append("baseline_sd")
            out["baseline_raw"] = rng.standard_normal((1, n, self.baseline.n_coef - 1))
        for slot in slots:
            prior = self.priors[slot]
            value = np.clip(rvs(prior), tiny, huge)
            out[slot] = {"sd": value, "precision": value**-0.5, "variance": value**0.5}[prior.on][
                None
            ]
        if self.baseline.spline:
            out["baseline_coef"] = self.baseline.coef(
                self.baseline.log_p0, out["baseline_sd"], out["baseline_raw"]
            )
        return out

    def sampling_scale(self, post: xr.Dataset) -> dict[str, xr.DataArray]:
        """Map user-scale draws back to the scale the priors are on (see module docstring)."""
        beta = post["beta"]
        mean = xr.DataArray(self.design.mean, dims="term", coords={"term": list(self.labels)})
        scale = xr.DataArray(self.design.scale, dims="term", coords={"term": list(self.labels)})
        out = {
            "intercept": post["intercept"] + self._log_ref(post) + (beta * mean).sum("term"),
            "beta": beta * scale,
        }
        if self.baseline.name == "weibull":
            out["shape"] = post["shape"]
        for slot in ("center_sd", "interaction_sd", "baseline_sd"):
            if slot in post:
                out[slot] = sd_to_prior_scale(post[slot], self.priors[slot].on)
        return out

    def _log_ref(self, post: xr.Dataset) -> xr.DataArray:
        """Return ``log H0(t_ref)`` per draw from user-scale draws (Weibull: alpha log t_ref)."""
        if not self.baseline.spline:
            shape = post["shape"] if "shape" in post else xr.ones_like(post["intercept"])
            return shape * np.log(self.t_ref)
        coef = post["baseline_coef"].transpose("chain", "draw", "basis").to_numpy()
        flat = {"baseline_coef": coef.reshape(-1, coef.shape[-1])}
        log_ref = self.baseline.log_cumulative(flat, self.t_ref).reshape(coef.shape[:2])
        return post["intercept"].copy(data=log_ref)


def log_prior(dt: xr.DataTree, *, group: str = "posterior") -> xr.Dataset:
    """Return the log prior density of the top-level parameters, per draw.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit of :class:`~bayes_sarcoma.HierarchicalWeibull` (its ``attrs`` hold the
        model specification, the design and ``t_ref``).
    group : str
        The group holding the draws.

    Returns
    -------
    xarray.Dataset
        ``intercept``, ``shape`` (Weibull baseline only), ``beta[term]``, and
        ``center_sd`` / ``interaction_sd`` when the model has them, each with the sample
        dims: the log density of each prior at the draw, on the scale the prior is
        defined on. Centre effects are deliberately left out (module docstring).

    Examples
    --------
    >>> import bayes_sarcoma as bs                                         # doctest: +SKIP
    >>> from bayes_sarcoma.checks.power_scaling import log_prior                  # doctest: +SKIP
    >>> lp = log_prior(dt)                                                 # doctest: +SKIP
    >>> sorted(lp.data_vars)                                               # doctest: +SKIP
    ['beta', 'center_sd', 'intercept', 'shape']
    """
    top = TopLevelPriors.from_datatree(dt)
    values = top.sampling_scale(dt[group].dataset)
    pairs = []  # (prior, its draws)
    for slot, value in values.items():
        if slot == "beta":
            pairs += [(p, value.sel(term=t)) for p, t in zip(top.beta, top.labels, strict=True)]
        else:
            pairs.append((top.priors[slot], value))
    densities = iter(pymc_log_densities([p for p, _ in pairs], [v.to_numpy() for _, v in pairs]))
    out = {}
    for slot, value in values.items():
        if slot == "beta":
            columns = [value.sel(term=t).copy(data=next(densities)) for t in top.labels]
            out[slot] = xr.concat(columns, dim="term").transpose(*value.dims)
        else:
            out[slot] = value.copy(data=next(densities))
    return xr.Dataset(out)


def pymc_log_densities(priors: Sequence[Prior], values: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Return PyMC's own log density of each prior at its values (one compiled function).

    The densities are those of the model's priors (:func:`pymc.logp`), not copies, so the
    power-scaled prior is the one the model was fitted with. Compiled in PyTensor's
    ``FAST_COMPILE`` mode: 0.3 s for a dozen priors, where the default mode's JIT takes
    seconds for a function evaluated once.

    Examples
    --------
    >>> from bayes_sarcoma import Prior
    >>> [d] = pymc_log_densities([Prior("Exponential", lam=2.0)], [np.array([0.0, 1.0])])
    >>> np.round(d, 6).tolist()
    [0.693147, -1.306853]
    """
    inputs, outputs = [], []
    for prior, value in zip(priors, values, strict=True):
        x = pt.tensor(dtype="float64", shape=(None,) * np.ndim(value))
        dist = getattr(pm, prior.distribution).dist(**prior.parameters)
        inputs.append(x)
        outputs.append(pm.logp(dist, x))
    if not inputs:
        return []
    fn = pytensor.function(inputs, outputs, mode="FAST_COMPILE", on_unused_input="ignore")
    return [np.asarray(d, dtype=float) for d in fn(*[np.asarray(v, float) for v in values])]


@dataclass
class PowerScaling:
    """Power-scaling sensitivity of posterior quantities.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per quantity: ``prior`` and ``likelihood`` sensitivity, ArviZ's
        ``diagnosis``, and ``prior_sensitive`` (prior sensitivity >= ``threshold``).
    threshold : float
        The threshold used.
    """

    table: pd.DataFrame
    threshold: float = THRESHOLD

    @property
    def sensitive(self) -> list[str]:
        """Quantities whose posterior moves when the prior is power-scaled."""
        return list(self.table.index[self.table["prior_sensitive"]])

    def statement(self) -> str:
        """One sentence per finding: which quantities are prior-sensitive, and how."""
        lines = []
        for name, row in self.table.iterrows():
            if row["prior_sensitive"]:
                lines.append(
                    f"{name}: prior-sensitive (prior {row['prior']:.3f} >= {self.threshold}, "
                    f"likelihood {row['likelihood']:.3f}): {row['diagnosis']}."
                )
        robust = [str(n) for n in self.table.index if not self.table.loc[n, "prior_sensitive"]]
        if robust:
            lines.append(
                f"Not prior-sensitive (prior sensitivity < {self.threshold}): {', '.join(robust)}."
            )
        return "\n".join(lines)


def power_scaling(
    dt: xr.DataTree,
    *,
    quantities: xr.Dataset | None = None,
    var_names: Sequence[str] | None = None,
    prior_var_names: Sequence[str] | None = None,
    prior_coords: Mapping[str, Any] | None = None,
    threshold: float = THRESHOLD,
    alphas: tuple[float, float] = (0.99, 1.01),
) -> PowerScaling:
    """Power-scaling sensitivity of posterior quantities to the top-level priors.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit (its ``log_likelihood`` group is used, or computed from the draws if absent).
    quantities : xarray.Dataset, optional
        Derived quantities per draw (dims ``chain``, ``draw``, plus any), e.g. the
        standardized survival difference; default: ``dt.posterior``.
    var_names : sequence of str, optional
        Variables of ``quantities`` (or of the posterior) to assess.
    prior_var_names, prior_coords : optional
        Power-scale only some priors, e.g. ``prior_var_names=["beta"]``,
        ``prior_coords={"term": ["expert_center"]}`` for the expert effect's prior alone
        (default: every top-level prior together).
    threshold : float
        Sensitivity at or above which a quantity is called prior-sensitive.
    alphas : tuple of float
        The power-scaling factors below and above 1.

    Returns
    -------
    PowerScaling

    Examples
    --------
    >>> from bayes_sarcoma.checks.power_scaling import power_scaling               # doctest: +SKIP
    >>> ps = power_scaling(dt, var_names=["beta", "center_sd"])              # doctest: +SKIP
    >>> print(ps.statement())                                                # doctest: +SKIP
    center_sd: prior-sensitive (prior 0.071 >= 0.05, likelihood 0.120): ...
    """
    from arviz_stats import psense_summary

    if "log_likelihood" in dt.children:
        log_lik = dt.log_likelihood.dataset
    else:  # not stored (fit(log_likelihood=False), or too large for "auto"): compute it
        log_lik = recompute_log_likelihood(dt)
    posterior = dt.posterior.dataset if quantities is None else quantities
    if var_names is not None:
        posterior = posterior[list(var_names)]
    tree = xr.DataTree.from_dict(
        {
            "posterior": posterior,
            "log_prior": log_prior(dt),
            "log_likelihood": log_lik,
        }
    )
    table = psense_summary(
        tree,
        threshold=threshold,
        alphas=alphas,
        prior_var_names=None if prior_var_names is None else list(prior_var_names),
        prior_coords=None if prior_coords is None else dict(prior_coords),
        round_to=6,
    )
    table = table.astype({"prior": float, "likelihood": float})
    table["prior_sensitive"] = table["prior"] >= threshold
    table.index.name = "quantity"
    return PowerScaling(table, threshold)


def _json(value: Any) -> dict:
    return json.loads(value) if isinstance(value, str) else dict(value)
