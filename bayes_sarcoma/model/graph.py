"""The PyMC model: priors, centre effects and the PH log-likelihood in one expression.

The likelihood is written directly (DESIGN.md section 3), not with
``pm.Censored(pm.Weibull)``: one vectorised expression over patients, summed into a
``pm.Potential``. It is the sum over patients of

    d * (log alpha + (alpha - 1) log t + eta) - exp(alpha log t + eta) + exp(alpha log a + eta)

(the last term for delayed entry only), rearranged so that the per-patient work is one
matrix-vector product, one gather of the centre effects and one ``exp``:

    n_events * log alpha + (alpha - 1) * sum(d log t) + d . eta - sum(exp(alpha log t + eta))

Times enter divided by a reference time ``t_ref`` (the median observed time): on that
scale the intercept is nearly uncorrelated with the shape. The constant ``-d log t_ref``
that this drops is restored when the pointwise log-likelihood is stored
(:mod:`bayes_sarcoma.model.posterior`). Every input that may change between fits (data and prior
hyperparameters) is ``pm.Data``, so one compiled model serves many fits.

The flexible baselines (``"mspline"``, ``"piecewise"``; :mod:`bayes_sarcoma.model.baselines`)
enter as data too: the basis matrices ``M_k(t_i)`` and ``I_k(t_i) - I_k(a_i)`` are evaluated
once per data set and travel in the data vector, so the graph only takes dot products with
the coefficients ``p`` (a random walk on the simplex)::

    sum_i d_i (log(p . M_i) - log(p . I_ref) + eta_i) - sum_i exp(eta_i) (p . I_i) / (p . I_ref)

(``I_ref = I(t_ref)``).

By default the centre effects are *integrated out* (DESIGN.md 3.2, docs/engine.md): the
patients' cumulative hazards at ``u = 0`` are summed per centre into ``A_c`` and the
likelihood gains ``sum_c log I_c(A_c, D_c, m_c, sigma_u)`` from
:class:`~bayes_sarcoma.model.integrated.CenterIntegral`, where ``m_c`` is the intercept
plus the centre-level terms; no centre variable is sampled. With ``engine="sampled"``:

Centre effects use *partial non-centring* (Papaspiliopoulos, Roberts & Skold 2007):
``v_c ~ Normal(0, sigma_u ** w_c)`` and ``u_c = sigma_u ** (1 - w_c) * v_c``. With
``w_c = 0`` this is the usual non-centred form, with ``w_c = 1`` the centred one; each
centre gets ``w_c = I_c / (I_c + 1 / s**2)``, its data precision ``I_c`` (its number of
events, the Fisher information of a log-hazard offset) against a prior guess ``s`` of
``sigma_u``. Large, informative centres are (nearly) centred and the many tiny ones
non-centred, which keeps both the funnel and the ridge away at every registry size. The
weights are data, so they never force a recompilation.

Terms constant within every centre (the expert-centre flag) describe centres, not
patients. They are moved from the patient-level design into the centre effects' mean,
``m_c = x_c . beta_c`` (hierarchical centring, Gelfand, Sahu & Carlin 1995):
``v_c ~ Normal(w_c m_c, sigma_u ** w_c)`` and the centre's contribution to the linear
predictor is ``m_c + sigma_u ** (1 - w_c) * (v_c - w_c m_c)``, whose mean is ``m_c`` and
sd ``sigma_u`` for every ``w_c``. For a large (centred) centre the data pin ``v_c`` down and
``beta_c`` is learnt from the ``v_c`` as in a regression, instead of trading off against
them along a ridge. The posterior ``center_effect`` is always ``u_c`` itself (results.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayes_sarcoma.model.integrated import center_log_integral
from bayes_sarcoma.model.priors import FAMILIES, Prior, PriorPlan

#: Names of the free variables of the sampling model.
INTERCEPT = "intercept_c"
SHAPE = "shape"
BASELINE_SD = "baseline_sd"
BASELINE_RAW = "baseline_raw"
BETA = "beta_std"  # one variable per prior family: beta_std_<Family>
CENTER_SD = "center_sd"
CENTER_RAW = "center_raw"
INTERACTION_SD = "interaction_sd"
INTERACTION_RAW = "interaction_raw"
LOGLIK = "loglik"

#: Initial values (constrained space), independent of the data because times are scaled
#: by t_ref and covariates are centred: this is what lets vague priors initialise.
INITIAL = {
    "intercept": 0.0,
    "shape": 1.0,
    "beta": 0.0,
    "center_sd": 0.3,
    "interaction_sd": 0.1,
    "baseline_sd": 0.5,
}


@dataclass(frozen=True)
class Structure:
    """Everything that decides the compiled graph (and nothing that does not).

    Two fits with equal structures share one compiled model; data and prior
    hyperparameters are swapped in.
    """

    n_terms: int
    n_centers: int  # 0: no centre effects
    baseline: str  # "weibull", "exponential", "mspline" or "piecewise"
    has_entry: bool
    n_modifier_levels: int  # 0: no treatment-by-modifier interaction
    priors: tuple
    center_terms: tuple[int, ...] = ()  # design columns constant within every centre
    engine: str = "integrated"  # centre effects: "integrated" out or "sampled"
    quadrature_nodes: int | str = "auto"  # the integrated engine's nodes per centre
    n_basis: int = 0  # basis functions of a spline baseline (0: Weibull or exponential)

    @property
    def exponential(self) -> bool:
        """Whether the baseline hazard is constant (the exponential model)."""
        return self.baseline == "exponential"

    @property
    def spline(self) -> bool:
        """Whether the baseline is an M-spline or piecewise-constant one (``n_basis`` > 0)."""
        return self.n_basis > 0

    @property
    def integrated(self) -> bool:
        """Whether the centre effects are integrated out (not sampled)."""
        return bool(self.n_centers) and self.engine == "integrated"

    @property
    def patient_terms(self) -> tuple[int, ...]:
        """Design columns that vary within centres (all of them without centre effects)."""
        return tuple(j for j in range(self.n_terms) if j not in self.center_terms)


def sd_variable(slot: str, prior: Prior, hyper: Mapping[str, pt.TensorVariable]):
    """Create the prior of a standard-deviation slot and return the sd as a tensor."""
    init = INITIAL[slot]
    if prior.on == "sd":
        return random_variable(slot, prior, hyper, init)
    if prior.on == "precision":
        return random_variable(f"{slot}_precision", prior, hyper, init**-2) ** -0.5
    return random_variable(f"{slot}_variance", prior, hyper, init**2) ** 0.5


def random_variable(name: str, prior: Prior, hyper: Mapping, init: float, shape=None):
    """Create ``name ~ prior`` with hyperparameters ``hyper`` (``pm.Data``) and an initial value.

    Only the prior's family is read from ``prior`` (and a Uniform's bounds, which are part
    of the structure so that the initial value stays inside them).
    """
    params = {p: hyper[p] for p in FAMILIES[prior.distribution][1]}
    if prior.distribution == "Uniform":
        lower, upper = prior.parameters["lower"], prior.parameters["upper"]
        if not lower < init < upper:
            init = 0.5 * (lower + upper)
    initval = init if shape is None else np.full(shape, init)
    return getattr(pm, prior.distribution)(name, **params, shape=shape, initval=initval)


#: Rows of the per-patient float matrix ``patient``, by structure.
def patient_rows(structure: Structure) -> list[str]:
    """Names of the rows of the ``patient`` data matrix for ``structure``."""
    rows = ["log_t", "event"]
    rows += ["log_entry", "has_entry"] if structure.has_entry else []
    rows += ["treatment"] if structure.n_modifier_levels else []
    return rows


def index_rows(structure: Structure) -> list[str]:
    """Names of the rows of the per-patient integer matrix ``index``."""
    rows = ["center_idx"] if structure.n_centers else []
    return rows + (["modifier_idx"] if structure.n_modifier_levels else [])


def param_layout(structure: Structure, plan: PriorPlan) -> dict[str, slice]:
    """Where each hyperparameter, data summary and centre weight sits in ``params``."""
    used = ["prior_beta_", "prior_intercept_"]
    used += ["prior_shape_"] if structure.baseline == "weibull" else []
    used += ["prior_baseline_sd_"] if structure.spline else []
    used += ["prior_center_sd_"] if structure.n_centers else []
    used += ["prior_interaction_sd_"] if structure.n_modifier_levels else []
    sizes = {k: np.size(v) for k, v in plan.values.items() if k.startswith(tuple(used))}
    sizes |= {"n_events": 1, "sum_event_log_t": 1}
    if structure.spline:
        sizes |= {"cumbasis_ref": structure.n_basis, "baseline_log_p0": structure.n_basis}
    if structure.n_centers:
        weights = "center_events" if structure.integrated else "center_weight"
        sizes[weights] = structure.n_centers
        if structure.center_terms:
            sizes["X_center"] = structure.n_centers * len(structure.center_terms)
    layout, start = {}, 0
    for name, size in sizes.items():
        layout[name] = slice(start, start + size)
        start += size
    return layout


def pack_data(
    structure: Structure, arrays: Mapping[str, np.ndarray], plan: PriorPlan
) -> dict[str, np.ndarray]:
    """Pack model arrays and hyperparameters into the model's single ``pm.Data`` input.

    nutpie's compile time grows by about half a second per shared variable, so everything
    travels in one float vector ``data``: first the ``params`` block (hyperparameters, data
    summaries and centre weights, laid out by :func:`param_layout`), then a row-major
    (rows x patients) block whose rows are the design's columns, the float rows of
    :func:`patient_rows` and the integer rows of :func:`index_rows` (stored exactly as
    floats). The number of patients is read from the vector's length.
    """
    values = {**plan.values, **arrays}
    layout = param_layout(structure, plan)
    params = [np.ravel(values[name]).astype(float) for name in layout]
    x = np.asarray(arrays["X"], dtype=float)[:, list(structure.patient_terms)]
    rows = [x.T] if x.shape[1] else []
    rows += [np.asarray(arrays[name], dtype=float)[None, :] for name in patient_rows(structure)]
    if structure.spline:  # the basis matrices, basis functions x patients
        rows += [np.asarray(arrays[name], dtype=float).T for name in ("basis", "cumbasis")]
    rows += [np.asarray(arrays[name], dtype=float)[None, :] for name in index_rows(structure)]
    return {"data": np.concatenate([*params, np.vstack(rows).ravel()])}


def sampled_centre_effects(structure: Structure, sd, mean, get: Mapping):
    """Sample the centre effects (the "sampled" engine) and return ``mean + u_c``.

    Partial non-centring: ``v_c ~ Normal(w_c m_c, sd**w_c)`` and the effect is
    ``m_c + sd**(1 - w_c) (v_c - w_c m_c)`` (see the module docstring); ``sd**w`` as
    ``exp(w log sd)``, far cheaper than a pow.
    """
    w = get["center_weight"]
    prior_scale = pt.exp(w * pt.log(sd))
    raw = pm.Normal(
        CENTER_RAW,
        w * mean,
        prior_scale,
        shape=structure.n_centers,
        initval=np.zeros(structure.n_centers),
    )
    return mean + sd / prior_scale * (raw - w * mean)


def build_model(
    structure: Structure,
    data: Mapping[str, np.ndarray],
    plan: PriorPlan,
    priors: Mapping[str, Prior],
) -> pm.Model:
    """Build the sampling model for ``structure`` with initial packed ``data``.

    The random variables are created in a fixed order (intercept, coefficients, centre SD,
    centre effects, interaction SD and effects, shape): the order fixes the sampler's
    parameter vector, so changing it changes a seed's draws.

    Parameters
    ----------
    structure : Structure
        The graph's structure.
    data : mapping
        The packed inputs from :func:`pack_data`.
    plan : PriorPlan
        Prior layout (families; the values travel in ``data["params"]``).
    priors : mapping
        The merged priors (their families and ``on`` settings).
    """
    with pm.Model(check_bounds=False) as model:
        get, x_t, d = _unpack(structure, plan, pm.Data("data", np.asarray(data["data"])))
        intercept = random_variable(
            INTERCEPT, priors["intercept"], _slot_hyper(get, "intercept"), INITIAL["intercept"]
        )
        eta, beta = intercept, None
        if structure.n_terms:
            beta = _coefficients(plan, get)
            if structure.patient_terms:
                eta = eta + pt.dot(beta[list(structure.patient_terms)], x_t)
        eta, centres = _add_centres(structure, priors, get, d, intercept, beta, eta)
        if structure.n_modifier_levels:
            eta = eta + _modifier_effects(structure, priors, get, d)
        pm.Potential(LOGLIK, _log_likelihood(structure, priors, get, d, eta, centres))
    return model


def _unpack(structure: Structure, plan: PriorPlan, flat):
    """Split the packed data vector: parameters by name, patient design, patient rows."""
    layout = param_layout(structure, plan)
    n_params = max(sl.stop for sl in layout.values())
    float_rows, int_rows = patient_rows(structure), index_rows(structure)
    n_terms, n_basis = len(structure.patient_terms), structure.n_basis
    params = flat[:n_params]
    block = flat[n_params:].reshape((n_terms + len(float_rows) + 2 * n_basis + len(int_rows), -1))
    # Scalars as scalars; coefficient hyperparameters, centre weights, basis values stay vectors.
    vectors = {"center_weight", "center_events", "X_center", "cumbasis_ref", "baseline_log_p0"}
    vectors = {k for k in layout if k.startswith("prior_beta_") or k in vectors}
    get = {name: params[sl] if name in vectors else params[sl.start] for name, sl in layout.items()}
    k = n_terms
    d = {name: block[k + i] for i, name in enumerate(float_rows)}
    k += len(float_rows)
    if n_basis:
        d["basis"], d["cumbasis"] = block[k : k + n_basis], block[k + n_basis : k + 2 * n_basis]
        k += 2 * n_basis
    d |= {name: pt.cast(block[k + i], "int64") for i, name in enumerate(int_rows)}
    return get, block[:n_terms], d  # x_t: patient-level design, terms x patients


def _slot_hyper(get: Mapping, slot: str) -> dict:
    """Return the prior hyperparameters of ``slot`` (``prior_<slot>_<name>`` in the data vector)."""
    prefix = f"prior_{slot}_"
    return {k[len(prefix) :]: v for k, v in get.items() if k.startswith(prefix)}


def _coefficients(plan: PriorPlan, get: Mapping):
    """Return the coefficients (one random variable per prior family) in the terms' order."""
    parts = []
    for (fam, idx), prior in zip(plan.beta_groups, plan.beta_priors, strict=True):
        fam_hyper = {p: get[f"prior_beta_{fam}_{p}"] for p in FAMILIES[fam][1]}
        parts.append(
            random_variable(f"{BETA}_{fam}", prior, fam_hyper, INITIAL["beta"], shape=len(idx))
        )
    order = np.argsort(np.concatenate([idx for _, idx in plan.beta_groups]))
    return pt.concatenate(parts)[order] if len(parts) > 1 else parts[0]


def _add_centres(structure, priors, get, d, intercept, beta, eta):
    """Add the centre effects to ``eta`` (sampled) or return what integrates them out.

    Centre-level terms (the expert flag) and the intercept give the centre effects' mean
    ``m_c`` (hierarchical centring). Returns ``(eta, centres)``, ``centres`` being
    ``(sd, mean, events, index)`` for the integrated engine and None otherwise.
    """
    if not structure.n_centers:
        return eta, None
    sd = sd_variable(CENTER_SD, priors["center_sd"], _slot_hyper(get, "center_sd"))
    mean = intercept
    center_terms = list(structure.center_terms)
    if center_terms:
        x_c = get["X_center"].reshape((structure.n_centers, len(center_terms)))
        mean = intercept + pt.dot(x_c, beta[center_terms])
    if structure.integrated:
        # The intercept is in the mean, integrated with u_c.
        eta = eta - intercept if structure.patient_terms else pt.zeros_like(d["log_t"])
        return eta, (sd, mean, get["center_events"], d["center_idx"])
    effects = sampled_centre_effects(structure, sd, mean, get)
    return eta - intercept + effects[d["center_idx"]], None


def _modifier_effects(structure, priors, get, d):
    """Return the effect modifier's term: treatment x a shrunken effect per level."""
    tau = sd_variable(INTERACTION_SD, priors["interaction_sd"], _slot_hyper(get, "interaction_sd"))
    n = structure.n_modifier_levels
    z = pm.Normal(INTERACTION_RAW, 0.0, 1.0, shape=n, initval=np.zeros(n))
    return d["treatment"] * (tau * z)[d["modifier_idx"]]


def _weibull_terms(structure, priors, get, d, eta):
    """Return the Weibull baseline's event term and each patient's cumulative hazard."""
    if structure.exponential:
        log_shape, shape = 0.0, 1.0
    else:
        shape = random_variable(SHAPE, priors["shape"], _slot_hyper(get, "shape"), INITIAL["shape"])
        log_shape = pt.log(shape)
    exposure = pt.exp(shape * d["log_t"] + eta)
    if structure.has_entry:
        exposure = exposure - d["has_entry"] * pt.exp(shape * d["log_entry"] + eta)
    events = get["n_events"] * log_shape + (shape - 1.0) * get["sum_event_log_t"]
    return events, exposure


def _spline_terms(structure, priors, get, d, eta):
    """Return an M-spline (or piecewise) baseline's event term and cumulative hazards.

    ``p`` is proportional to ``p0 exp(delta)``, ``delta`` a random walk with steps
    ``baseline_sd * z`` (:mod:`bayes_sarcoma.model.baselines`); ``H0`` is divided by
    ``H0(t_ref)`` so that the intercept is the log cumulative hazard at ``t_ref``.
    """
    sd = sd_variable(BASELINE_SD, priors["baseline_sd"], _slot_hyper(get, "baseline_sd"))
    n = structure.n_basis - 1
    raw = pm.Normal(BASELINE_RAW, 0.0, 1.0, shape=n, initval=np.zeros(n))
    walk = pt.concatenate([pt.zeros(1), pt.cumsum(sd * raw)])
    p = pt.special.softmax(get["baseline_log_p0"] + walk)
    log_ref = pt.log(pt.dot(p, get["cumbasis_ref"]))
    events = pt.dot(d["event"], pt.log(pt.dot(p, d["basis"]))) - get["n_events"] * log_ref
    exposure = pt.exp(eta - log_ref) * pt.dot(p, d["cumbasis"])
    return events, exposure


def _log_likelihood(structure, priors, get, d, eta, centres):
    """Return the PH log-likelihood (delayed entry included), centres in or out."""
    terms = _spline_terms if structure.spline else _weibull_terms
    events, exposure = terms(structure, priors, get, d, eta)
    loglik = events + pt.dot(d["event"], eta)
    if centres is None:
        return loglik - pt.sum(exposure)
    sd, mean, events, index = centres
    a = pt.inc_subtensor(pt.zeros(structure.n_centers)[index], exposure)
    integral = center_log_integral(a, events, mean, sd, structure.quadrature_nodes)
    return loglik + pt.sum(integral)
