"""``HierarchicalWeibull``: the hierarchical Weibull proportional-hazards model.

For patient i in centre c (DESIGN.md section 3)::

    eta_i = beta_0 + x_i . beta + u_c,    u_c ~ Normal(0, sigma_u)
    h(t)  = alpha t^(alpha-1) exp(eta),   S(t) = exp(-t^alpha exp(eta))

or, with ``baseline="mspline"`` or ``"piecewise"``, ``h(t) = h0(t) exp(eta)`` with a flexible
baseline hazard ``h0`` (:mod:`~bayes_sarcoma.model.baselines`); the class keeps its name.

The class only orchestrates: :mod:`~bayes_sarcoma.data.design` codes the covariates,
:mod:`~bayes_sarcoma.data.prepare` checks and lays out the table,
:mod:`~bayes_sarcoma.model.graph` builds the PyMC model, :mod:`~bayes_sarcoma.inference.sampling`
compiles (once per structure) and samples, :mod:`~bayes_sarcoma.model.posterior` writes the
DataTree. Expert status is a centre-level attribute, so its effect is identified by
comparing centres; the model checks that the flag never varies within a centre
(``center_level``). A treatment that varies within centres (randomised within centres, as
in a multi-centre trial) is a patient-level term like any other: which terms are centre-
level in the graph is read from the data (:func:`~bayes_sarcoma.data.prepare.center_level_terms`).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayes_sarcoma.data import schema
from bayes_sarcoma.data.design import Design
from bayes_sarcoma.data.endpoints import derive_endpoints
from bayes_sarcoma.data.prepare import (
    AUTO_ZERO_TIME,
    TIME_UNITS,
    Columns,
    Prepared,
    check_cluster_level,
    check_outcome,
    data_warnings,
    prepare,
    resolve_table,
    resolve_zero_time,
    time_unit_from_name,
)
from bayes_sarcoma.data.validation import validate_registry
from bayes_sarcoma.inference.diagnose import CHECKED_CENTERS, diagnose
from bayes_sarcoma.inference.sampling import CompiledModel, get_compiled, run_sampler
from bayes_sarcoma.model.baselines import Baseline, check_options
from bayes_sarcoma.model.center_effects import draw_center_deviations, quadrature_error
from bayes_sarcoma.model.graph import Structure, build_model, pack_data
from bayes_sarcoma.model.posterior import build_datatree, internal_parameters, user_scale_posterior
from bayes_sarcoma.model.priors import PriorPlan, merge_priors, plan_priors, priors_to_dict

ENGINES = ("integrated", "sampled")
#: Bytes of pointwise log-likelihood that ``fit(log_likelihood="auto")`` stores at most
#: (4000 draws of 30,000 patients).
LOG_LIKELIHOOD_BUDGET = 1e9
#: Default of ``cluster``, ``id_column`` and ``treatment``: chosen from the data/terms.
AUTO = "auto"


@dataclass(frozen=True)
class FitReference:
    """What a fitted model lays new data out against."""

    center_ids: np.ndarray
    modifier_levels: tuple
    t_ref: float


class SamplerWarning(UserWarning):
    """The sampler reported a problem (divergences, tree depth, poor convergence)."""


class HierarchicalWeibull:
    """Proportional-hazards model (Weibull by default) with a random intercept per centre.

    Parameters
    ----------
    endpoint : {"LRFS", "RFS", "OS"}, optional
        Fit a registry endpoint: reads ``<endpoint>_months`` / ``<endpoint>_event`` (derived
        from the dates if absent), clusters by ``center_id``, ids from ``patient_id``, and the
        default terms ``expert_center, age, sex, tumor_size_cm, grade, depth, margin``.
    time, event : str, optional
        Any table: the follow-up time column (> 0; the time unit of the results) and the
        event column (0/1 or bool). Override the endpoint's columns.
    cluster : str or None, optional
        Cluster (centre) column. ``"auto"``: ``center_id`` with an endpoint, else none.
    terms : sequence of str, optional
        Covariate columns (see :class:`~bayes_sarcoma.data.design.Design` for the coding).
    priors : mapping, optional
        Priors merged over :data:`~bayes_sarcoma.model.priors.DEFAULT_PRIORS`, e.g.
        ``{"beta:expert_center": Prior("Normal", mu=0, sigma=0.2)}``.
    entry : str, optional
        Delayed-entry (left-truncation) time column.
    id_column : str or None, optional
        Column of patient ids (the ``patient`` coordinate). ``"auto"``: ``patient_id``
        when present, else the index.
    baseline : {"weibull", "exponential", "mspline", "piecewise"}
        The baseline hazard (:mod:`bayes_sarcoma.model.baselines`, docs/baselines.md).
        ``"exponential"`` fixes the shape at 1 (no ``shape`` in the posterior);
        ``"mspline"`` is a smooth flexible hazard (cubic M-splines, ``baseline_coef`` and
        ``baseline_sd`` in the posterior instead of ``shape``), ``"piecewise"`` a constant
        hazard between knots.
    n_basis : int, optional
        Number of basis functions (intervals for ``"piecewise"``) of a flexible baseline;
        default 10 for both. The interior knots go at quantiles of the event times.
    knots : sequence of float, optional
        A flexible baseline's knots ``[0, interior..., b]`` instead of ``n_basis`` (in the
        data's time unit; ``b`` is where the hazard turns constant).
    center_effects : bool
        Include the centre random intercept.
    treatment : str or None
        The treatment term (``"auto"``: ``expert_center`` when it is a term): the term whose
        effect ``effect_modifier`` modifies and that standardized survival contrasts by
        default. It may be centre-level (expert status) or vary within centres (a
        treatment randomised within centres): the latter is a patient-level term.
    center_level : sequence of str or "auto"
        Terms declared to describe centres, checked to be constant within each centre (a
        :class:`~bayes_sarcoma.data.errors.RegistryError` names the centres and rows where
        one is not). ``"auto"``: ``expert_center`` when it is a term.
    effect_modifier : str, optional
        A categorical column (e.g. ``"margin"``): the treatment effect gets a partially
        pooled deviation per level, ``delta_m ~ Normal(0, interaction_sd)``.
    categorical, reference, levels
        Passed to :meth:`~bayes_sarcoma.data.design.Design.learn`.
    engine : {"integrated", "sampled"}
        How the centre effects are handled. ``"integrated"`` (default): integrated out of
        the likelihood by adaptive Gauss-Hermite quadrature, so NUTS samples only the
        global parameters, and drawn afterwards from their exact conditionals
        (docs/engine.md). ``"sampled"``: every centre effect is a sampled parameter.
    quadrature_nodes : int or "auto"
        The integrated engine's Gauss-Hermite nodes per centre (``"auto"``: chosen per
        centre for an error below 1e-9; :mod:`bayes_sarcoma.math.aghq`).
    parameterization : {"auto", "centered", "noncentered"}
        The sampled engine's parameterisation of the centre effects; ``"auto"`` partially
        centres each centre by its number of events (:mod:`bayes_sarcoma.model.graph`).
    center_sd_guess : float, optional
        The guess of ``sigma_u`` that ``"auto"`` uses (default: a quick moment estimate
        from the data).
    time_unit : {"auto", "days", "weeks", "months", "years"} or None
        The unit of the time column. ``"auto"``: the unit its name states as a word
        (``fu_days``, ``years``; months for the registry's ``lrfs_months``, ``rfs_months``,
        ``os_months``), else not known (``None``). Used for the default ``zero_time`` and the
        axis labels; the results are always in the time column's own unit.
    zero_time : float, "auto" or None
        What a time of exactly 0 becomes: ``"auto"`` (default) half a day in
        ``time_unit`` (half a day in months when the unit is not known); a number is taken
        as it is, in the time column's unit; ``None``: a zero time is an error.
    t_ref : float, optional
        The reference time of the intercept's prior (see :mod:`bayes_sarcoma.model.priors`),
        in the data's time unit. Default: the median observed time of the fitting data, a
        data-dependent choice; fix it when the prior must not depend on the data (SBC,
        comparing fits of different data under one prior).

    Examples
    --------
    >>> import bayes_sarcoma as bs
    >>> df = bs.simulate_registry(2000, random_seed=1)                       # doctest: +SKIP
    >>> model = bs.HierarchicalWeibull("OS")                          # doctest: +SKIP
    >>> dt = model.fit(df, draws=500, tune=500, random_seed=1)        # doctest: +SKIP
    >>> bs.hazard_ratios(dt).loc["expert_center"]                  # doctest: +SKIP
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        time: str | None = None,
        event: str | None = None,
        cluster: str | None = AUTO,
        terms: Sequence[str] | None = None,
        priors: Mapping[str, Any] | None = None,
        entry: str | None = None,
        id_column: str | None = AUTO,
        baseline: str = "weibull",
        n_basis: int | None = None,
        knots: Sequence[float] | None = None,
        center_effects: bool = True,
        treatment: str | None = AUTO,
        center_level: Sequence[str] | str = AUTO,
        effect_modifier: str | None = None,
        categorical: Sequence[str] = (),
        reference: Mapping[str, Any] | None = None,
        levels: Mapping[str, Sequence] | None = None,
        engine: str = "integrated",
        quadrature_nodes: int | str = "auto",
        parameterization: str = "auto",
        center_sd_guess: float | None = None,
        time_unit: str | None = AUTO,
        zero_time: float | str | None = AUTO_ZERO_TIME,
        t_ref: float | None = None,
    ):
        endpoint, time, event, terms, cluster = _resolve_columns(
            endpoint, time, event, terms, cluster
        )
        check_options(baseline, n_basis, knots)
        if treatment == AUTO:
            treatment = schema.EXPERT if schema.EXPERT in terms else None
        if effect_modifier is not None and treatment is None:
            raise ValueError("effect_modifier needs a treatment term (treatment=...)")
        if treatment is not None and treatment not in terms:
            raise ValueError(f"treatment={treatment!r} must be one of the terms {list(terms)}")
        center_level = _checked_center_level(center_level, terms)
        time_unit = _checked_time_unit(time_unit, time)
        resolve_zero_time(zero_time, time_unit)  # raises on a bad zero_time
        self.endpoint = endpoint
        self.time = time
        self.event = event
        self.cluster = cluster if center_effects else None
        self.terms = terms
        self.priors = merge_priors(priors)
        self.entry = entry
        self.id_column = id_column
        self.baseline = baseline
        self.n_basis = None if n_basis is None else int(n_basis)
        self.knots = None if knots is None else [float(k) for k in knots]
        self.center_effects = bool(center_effects and cluster)
        self.treatment = treatment
        self.center_level = center_level
        self.effect_modifier = effect_modifier
        self.categorical = tuple(categorical)
        self.reference = dict(reference or {})
        self.levels = {k: list(v) for k, v in (levels or {}).items()}
        self.engine = _checked_engine(engine, quadrature_nodes)
        self.quadrature_nodes = quadrature_nodes
        self.parameterization = parameterization
        self.center_sd_guess = center_sd_guess
        self.time_unit = time_unit
        self.zero_time = zero_time
        self.t_ref = None if t_ref is None else float(t_ref)
        # Learnt at fit time:
        self.design_: Design | None = None
        self.prepared_: Prepared | None = None
        self.reference_: FitReference | None = None
        self.structure_: Structure | None = None
        self.baseline_: Baseline | None = None

    # -- specification -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Return the model's specification (JSON/TOML friendly; see :meth:`from_dict`)."""
        return {
            "endpoint": self.endpoint,
            "time": self.time,
            "event": self.event,
            "cluster": self.cluster,
            "terms": list(self.terms),
            "priors": priors_to_dict(self.priors),
            "entry": self.entry,
            "id_column": self.id_column,
            "baseline": self.baseline,
            "n_basis": self.n_basis,
            "knots": self.knots,
            "center_effects": self.center_effects,
            "treatment": self.treatment,
            "center_level": list(self.center_level),
            "effect_modifier": self.effect_modifier,
            "categorical": list(self.categorical),
            "reference": self.reference,
            "levels": self.levels,
            "engine": self.engine,
            "quadrature_nodes": self.quadrature_nodes,
            "parameterization": self.parameterization,
            "center_sd_guess": self.center_sd_guess,
            "time_unit": self.time_unit,
            "zero_time": self.zero_time,
            "t_ref": self.t_ref,
        }

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> HierarchicalWeibull:
        """Build a model from :meth:`to_dict`'s output."""
        spec = dict(spec)
        unknown = set(spec) - set(cls(time="time", event="event").to_dict())
        if unknown:
            raise ValueError(f"unknown model specification keys: {sorted(unknown)}")
        endpoint = spec.pop("endpoint", None)
        return cls(endpoint, **spec)

    def __repr__(self) -> str:
        what = self.endpoint or f"time={self.time!r}, event={self.event!r}"
        return (
            f"HierarchicalWeibull({what}, terms={list(self.terms)}, cluster={self.cluster!r}, "
            f"baseline={self.baseline!r}, effect_modifier={self.effect_modifier!r})"
        )

    # -- data --------------------------------------------------------------------------
    def columns(self, data: pd.DataFrame) -> Columns:
        """Return the columns this model reads from ``data``."""
        id_column = self.id_column
        if id_column == AUTO:
            id_column = schema.PATIENT_ID if schema.PATIENT_ID in data.columns else None
        return Columns(
            time=self.time,
            event=self.event,
            cluster=self.cluster,
            entry=self.entry,
            terms=self.terms,
            id_column=id_column,
            treatment=self.treatment,
            effect_modifier=self.effect_modifier,
        )

    def _with_endpoints(self, data: pd.DataFrame) -> pd.DataFrame:
        """Derive the registry endpoints from the dates when a registry lacks them."""
        if self.endpoint and self.time not in data.columns and schema.SURGERY_DATE in data.columns:
            return derive_endpoints(data)
        return data

    def prepare(self, data: pd.DataFrame, *, learn: bool = False) -> Prepared:
        """Check ``data`` and lay it out for the model (learning the coding if ``learn``)."""
        data = self._with_endpoints(data)
        cols = self.columns(data)
        resolve_table(data, cols)
        if learn:
            self.design_ = Design.learn(
                data,
                self.terms,
                categorical=self.categorical,
                reference=self.reference,
                levels=self.levels,
                id_column=cols.id_column,
                registry=bool(self.endpoint),
            )
            for term in self.center_level if self.cluster else ():
                check_cluster_level(data, self.cluster, term, cols.id_column)
            check_outcome(data, cols)
            data_warnings(data, cols, self.design_)
        if learn and self.endpoint and set(schema.REQUIRED_COLUMNS) <= set(data.columns):
            # A full registry: hold it to the whole data contract, not only the columns used.

            validate_registry(data)
        ref = None if learn else self.fit_reference
        return prepare(
            data,
            cols,
            self.design,
            zero_time=self.zero_time,
            time_unit=self.time_unit,
            centers=None if ref is None else ref.center_ids,
            modifier_levels=None if ref is None else ref.modifier_levels,
            parameterization=self.parameterization,
            center_sd_guess=self.center_sd_guess,
            t_ref=self.t_ref if ref is None else ref.t_ref,
        )

    @property
    def fit_reference(self) -> FitReference:
        """What new data are laid out against: the fit's centres, modifier levels, ``t_ref``."""
        if self.reference_ is None:
            raise RuntimeError(
                "the model has not been fitted yet: call .fit(data) first, or rebuild it from "
                "a fit with HierarchicalWeibull.from_datatree(dt)"
            )
        return self.reference_

    @classmethod
    def from_datatree(cls, dt: xr.DataTree) -> HierarchicalWeibull:
        """Rebuild the fitted model (specification, coding, centres) from a fit's DataTree.

        Predictions then work without refitting.
        """
        try:
            spec = json.loads(dt.attrs["model"])
            design = json.loads(dt.attrs["design"])
        except KeyError as err:
            raise ValueError(
                f"this DataTree was not written by HierarchicalWeibull.fit (no {err} in attrs)"
            ) from None
        model = cls.from_dict(spec)
        model.design_ = Design.from_dict(design)
        post = dt["posterior"] if "posterior" in dt.children else dt["prior"]
        centers = post["center"].to_numpy() if "center" in post.coords else np.array([])
        modifier = spec.get("effect_modifier")
        levels = tuple(post[modifier].to_numpy().tolist()) if modifier else ()
        model.reference_ = FitReference(centers, levels, float(dt.attrs["t_ref"]))
        model.baseline_ = Baseline.from_fit(dt)
        return model

    @property
    def design(self) -> Design:
        """The covariate coding learnt by :meth:`fit`."""
        if self.design_ is None:
            raise RuntimeError("the model has not been fitted yet: call .fit(data) first")
        return self.design_

    # -- model -------------------------------------------------------------------------
    def _plan(self) -> PriorPlan:
        return plan_priors(self.priors, self.design.labels, self.design.scale)

    def _structure(self, prepared: Prepared, plan: PriorPlan) -> Structure:
        return Structure(
            n_terms=len(self.design.labels),
            n_centers=len(prepared.center_ids) if self.cluster else 0,
            baseline=self.baseline,
            has_entry=self.entry is not None,
            n_modifier_levels=len(prepared.modifier_levels),
            priors=plan.structure,
            center_terms=prepared.center_terms if self.cluster else (),
            engine=self.engine,
            quadrature_nodes=self.quadrature_nodes,
            n_basis=self.baseline_.n_coef,
        )

    def compiled(self, data: pd.DataFrame) -> tuple[CompiledModel, dict[str, np.ndarray]]:
        """Learn the coding from ``data`` and return the (cached) model and its data values."""
        prepared = self.prepare(data, learn=True)
        self.baseline_ = Baseline.learn(
            self.baseline, prepared.time, prepared.event, n_basis=self.n_basis, knots=self.knots
        )
        prepared.arrays |= self.baseline_.arrays(prepared.time, prepared.entry, prepared.t_ref)
        self.prepared_ = prepared
        self.reference_ = FitReference(
            prepared.center_ids, prepared.modifier_levels, prepared.t_ref
        )
        plan = self._plan()
        structure = self._structure(prepared, plan)
        self.structure_ = structure
        values = pack_data(structure, prepared.arrays, plan)
        entry = get_compiled(structure, lambda: build_model(structure, values, plan, self.priors))
        return entry, values

    def build_model(self, data: pd.DataFrame):
        """Return the PyMC model for ``data`` (its data set to ``data``), for inspection."""
        import pymc as pm

        entry, values = self.compiled(data)
        known = {var.name for var in entry.model.data_vars}
        with entry.model:
            pm.set_data({k: v for k, v in values.items() if k in known})
        return entry.model

    def fit(
        self,
        data: pd.DataFrame,
        *,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        random_seed: int | None = None,
        progressbar: bool = True,
        sampler: str = "nutpie",
        target_accept: float = 0.8,
        max_treedepth: int = 10,
        cores: int | None = None,
        log_likelihood: bool | str = "auto",
        **sampler_kwargs: Any,
    ) -> xr.DataTree:
        """Sample the posterior and return the results DataTree (DESIGN.md section 4).

        Parameters
        ----------
        data : pandas.DataFrame
            The table (a registry, or any clustered survival table); never modified.
        draws, tune, chains : int
            Posterior draws and tuning steps per chain, and the number of chains.
        random_seed : int, optional
            Seed; the same random_seed gives the same posterior (a fresh one is drawn and stored
            in ``dt.attrs["random_seed"]`` when omitted).
        progressbar : bool
            Show the sampler's progress.
        sampler : {"nutpie", "pymc", "numpyro"}
            The NUTS implementation.
        target_accept, max_treedepth : float, int
            NUTS settings; raise ``target_accept`` (e.g. 0.95) after divergences.
        cores : int, optional
            Chains run in parallel on this many cores.
        log_likelihood : bool or "auto"
            Store the pointwise log-likelihood (chains x draws x patients floats, for LOO
            and power-scaling). ``"auto"``: store it when it takes at most
            :data:`LOG_LIKELIHOOD_BUDGET` bytes (4000 draws of 30,000 patients), else
            leave it to be computed on demand from the stored draws
            (:func:`bayes_sarcoma.model.io.recompute_log_likelihood`,
            :func:`bayes_sarcoma.checks.compare.loo`); ``dt.attrs["log_likelihood"]`` says
            which.
        **sampler_kwargs
            Passed to the sampler.

        Returns
        -------
        xarray.DataTree
            ``posterior``, ``sample_stats``, ``observed_data``, ``constant_data`` and
            ``log_likelihood``; the specification and coding in ``attrs``.
        """
        if log_likelihood not in (True, False, "auto"):
            raise ValueError(f"log_likelihood={log_likelihood!r}: choose True, False or 'auto'")
        entry, values = self.compiled(data)
        if log_likelihood == "auto":
            size = 8 * chains * draws * len(self.prepared_.time)
            log_likelihood = size <= LOG_LIKELIHOOD_BUDGET
        if random_seed is None:
            random_seed = int(np.random.default_rng().integers(2**31 - 1))
        out = run_sampler(
            entry,
            values,
            sampler=sampler,
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            random_seed=random_seed,
            progressbar=progressbar,
            target_accept=target_accept,
            max_treedepth=max_treedepth,
            **sampler_kwargs,
        )
        sampling = {"tune": tune, "target_accept": target_accept, "max_treedepth": max_treedepth}
        dt = self._results(out, random_seed, log_likelihood, sampling)
        self._check_sampler(dt)
        return dt

    def _results(self, out, random_seed: int, log_likelihood: bool, sampling: dict) -> xr.DataTree:
        """Turn the sampler's output into the results DataTree (DESIGN.md section 4).

        ``sampling``: the NUTS settings (``tune``, ``target_accept``, ``max_treedepth``),
        kept in ``attrs`` with the sampler and the seed.
        """
        plan = self._plan()
        internal = internal_parameters(
            out.draws, plan.beta_groups, len(self.design.labels), self.baseline_
        )
        attrs = {"engine": self.engine if self.structure_.n_centers else "none"}
        if self.structure_.integrated:
            internal["center_deviation"] = draw_center_deviations(
                internal, self.prepared_, random_seed
            )
            attrs["quadrature_error"] = quadrature_error(
                internal, self.prepared_, self.quadrature_nodes
            )
        post = user_scale_posterior(
            internal, self.design, self.prepared_, self.treatment, self.baseline_
        )
        attrs |= {
            "log_likelihood": "stored" if log_likelihood else "on demand",
            "model": self.to_dict(),
            "design": self.design.to_dict(),
            "t_ref": self.prepared_.t_ref,
            "center_weight": self.prepared_.center_weight.tolist(),
            "sampler": out.sampler,
            **sampling,
            "random_seed": random_seed,
            "compile_seconds": out.compile_seconds,
            "sampling_seconds": out.sampling_seconds,
            "n_zero_times": self.prepared_.n_zero_times,
            "zero_time": resolve_zero_time(self.zero_time, self.time_unit)[0],
        }
        return build_datatree(
            post,
            self.prepared_,
            self.design,
            out.sample_stats,
            modifier=self.effect_modifier,
            baseline=self.baseline_,
            log_likelihood=log_likelihood,
            attrs=attrs,
        )

    def sample_prior(
        self, data: pd.DataFrame, *, draws: int = 1000, random_seed: int | None = None
    ) -> xr.DataTree:
        """Draw the parameters from their prior, on the user's scale, for ``data``.

        The prior of the intercept is on the reference-time scale of ``data`` (see
        :mod:`bayes_sarcoma.model.priors`), so the prior depends on the data only through
        ``t_ref`` and the covariate means and sds. Returns a DataTree whose ``prior`` group
        has the posterior's names and dims (one chain), plus ``constant_data``.
        """
        import pymc as pm

        entry, values = self.compiled(data)
        known = {var.name for var in entry.model.data_vars}
        with entry.model, warnings.catch_warnings():
            # Potentials (the likelihood) are rightly ignored when sampling the prior.
            warnings.filterwarnings("ignore", message=".*[Pp]otential.*", category=UserWarning)
            pm.set_data({k: v for k, v in values.items() if k in known})
            prior = pm.sample_prior_predictive(
                draws=draws, var_names=entry.free_names, random_seed=random_seed
            )
        raw = {name: prior["prior"][name].to_numpy() for name in entry.free_names}
        plan = self._plan()
        internal = internal_parameters(
            raw, plan.beta_groups, len(self.design.labels), self.baseline_
        )
        if self.structure_.integrated:
            rng = np.random.default_rng(random_seed)
            z = rng.standard_normal((1, draws, self.structure_.n_centers))
            internal["center_deviation"] = internal["center_sd"][..., None] * z
        post = user_scale_posterior(
            internal, self.design, self.prepared_, self.treatment, self.baseline_
        )
        stats = xr.Dataset(coords={"chain": [0], "draw": np.arange(draws)})
        dt = build_datatree(
            post,
            self.prepared_,
            self.design,
            stats,
            modifier=self.effect_modifier,
            baseline=self.baseline_,
            log_likelihood=False,
            attrs={
                "model": self.to_dict(),
                "design": self.design.to_dict(),
                "t_ref": self.prepared_.t_ref,
            },
        )
        tree = xr.DataTree.from_dict(
            {
                "prior": dt["posterior"].dataset,
                "constant_data": dt["constant_data"].dataset,
                "observed_data": dt["observed_data"].dataset,
            }
        )
        tree.attrs = dict(dt.attrs)
        return tree

    @staticmethod
    def _check_sampler(dt: xr.DataTree) -> None:
        """Diagnose the run (kept in ``dt.attrs["diagnosis"]``) and warn if it is unreliable."""
        diagnosis = diagnose(dt, max_centers=CHECKED_CENTERS)
        dt.attrs["diagnosis"] = diagnosis.to_json()
        if not diagnosis.ok:
            warnings.warn(
                "the sampler's run is not reliable yet:\n- "
                + "\n- ".join(diagnosis.messages)
                + "\n(bayes_sarcoma.inference.diagnose.diagnose(dt) shows the whole table)",
                SamplerWarning,
                stacklevel=3,
            )


def _checked_center_level(center_level: Sequence[str] | str, terms: tuple) -> tuple[str, ...]:
    """Return the declared centre-level terms (``"auto"``: ``expert_center`` if a term)."""
    if center_level == AUTO:
        return (schema.EXPERT,) if schema.EXPERT in terms else ()
    if isinstance(center_level, str):
        center_level = (center_level,)
    center_level = tuple(center_level or ())
    unknown = [t for t in center_level if t not in terms]
    if unknown:
        raise ValueError(f"center_level={unknown} must be among the terms {list(terms)}")
    return center_level


def _checked_time_unit(time_unit: str | None, time: str) -> str | None:
    """Return the time column's unit: ``"auto"`` is the unit its name states (or None)."""
    if time_unit == AUTO:
        return time_unit_from_name(time)  # the registry's lrfs_months ... are in months
    if time_unit is not None and time_unit not in TIME_UNITS:
        raise ValueError(f"time_unit={time_unit!r}: choose 'auto', one of {TIME_UNITS} or None")
    return time_unit


def _resolve_columns(endpoint, time, event, terms, cluster):
    """Return ``(endpoint, time, event, terms, cluster)`` with a registry endpoint's defaults.

    A registry endpoint supplies its time and event columns, the registry's terms and the
    centre column; otherwise ``time`` and ``event`` are required and there is no cluster
    unless one is named.
    """
    if endpoint is not None:
        endpoint = str(endpoint).upper()
        e_time, e_event = schema.endpoint_columns(endpoint)
        time = time or e_time
        event = event or e_event
        terms = schema.DEFAULT_TERMS if terms is None else terms
        if cluster == AUTO:
            cluster = schema.CENTER_ID
    if time is None or event is None:
        raise ValueError("give an endpoint ('LRFS', 'RFS', 'OS') or both time= and event=")
    if cluster == AUTO:
        cluster = None
    return endpoint, time, event, tuple(terms or ()), cluster


def _checked_engine(engine: str, quadrature_nodes: int | str) -> str:
    """Return ``engine`` after checking it and the quadrature's node count."""
    if engine not in ENGINES:
        raise ValueError(f"engine={engine!r}: choose one of {ENGINES}")
    if quadrature_nodes != "auto" and not (
        isinstance(quadrature_nodes, int | np.integer) and 1 <= quadrature_nodes <= 301
    ):
        raise ValueError(
            f"quadrature_nodes={quadrature_nodes!r}: give 'auto' or a number of nodes from 1 "
            "to 301, such as 61"
        )
    return engine
