"""The true model behind a simulated registry, and how its truth is computed.

A simulated patient has three latent causes (local relapse, distant relapse, death), each
a PH time with ``H_k(t | x, u_c) = H0_k(t) * exp(eta_k + u_c)`` (months), where ``eta_k``
is the cause's linear predictor in the model terms of :data:`TERMS`, ``u_c ~ Normal(0,
center_sd)`` is the centre effect shared by the three causes and ``H0_k(t) =
t**shape_k`` (Weibull) in the default scenario; the other scenarios
(:mod:`bayes_sarcoma.simulate.scenarios`) change ``H0_k`` or make the expert effect
depend on time. This module holds that model and the truth it implies;
:mod:`bayes_sarcoma.simulate.registry` draws registries from it.

- :func:`linear_predictors`: the cause-specific ``eta_k`` of a configuration.
- :func:`cause_cumulative_hazards`, :func:`sample_latent_times`: the scenario's hazards
  and exact draws from them.
- :func:`standardized_survival`: the survival if every patient were (not) treated at an
  expert centre, averaged over the patients and integrated over a new centre's effect
  (:func:`marginal_survival`, Gauss-Hermite). Because ``u_c`` multiplies every
  cause-specific hazard, ``S(t | x, u) = exp(-exp(u) * sum_k H_k(t | x))`` is exact for
  every endpoint and every scenario.
- :func:`log_hazard_ratios`, :func:`expert_hazard_ratios`: the exact hazard ratios of an
  endpoint, where it has them.
- :func:`weibull_ph_mle`: the maximum-likelihood Weibull PH fit with a known offset (the
  centre effects), analytic gradient and Hessian, ``scipy.optimize``: the pseudo-true
  values of the endpoints that are not exactly Weibull PH (LRFS, RFS).
- :func:`registry_truth`: the ``df.attrs["truth"]`` dict of DESIGN.md section 5.
- :func:`config_hash`, :func:`stored_pseudo_truth`: the precomputed pseudo-true values of
  the default configuration (``bayes_sarcoma/data/pseudo_truth.json``, written by
  ``scripts/compute_pseudo_truth.py``) and the hash of the configuration they belong to.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bayes_sarcoma.data import schema
from bayes_sarcoma.math.gauss_hermite import N_QUADRATURE_NODES as N_QUADRATURE_NODES
from bayes_sarcoma.math.gauss_hermite import gauss_hermite_normal as gauss_hermite_normal
from bayes_sarcoma.math.gauss_hermite import marginal_survival as marginal_survival
from bayes_sarcoma.math.mle import weibull_ph_mle as weibull_ph_mle
from bayes_sarcoma.math.weibull import sample_times as weibull_times
from bayes_sarcoma.simulate import scenarios

#: The latent causes of a simulated patient.
CAUSES = ("local", "distant", "death")
#: Which latent causes end each endpoint (the first to occur).
ENDPOINT_CAUSES = {
    "LRFS": ("local", "death"),
    "RFS": ("local", "distant", "death"),
    "OS": ("death",),
}
#: Months at which the standardized (counterfactual) survival truth is given.
TRUTH_TIMES = (12, 24, 60)
#: Model term labels (DESIGN.md section 4), reference levels omitted.
TERMS = tuple(
    label
    for term in schema.DEFAULT_TERMS
    for label in (
        [f"{term}[{lvl}]" for lvl in schema.CATEGORICAL_COVARIATES[term][1:]]
        if term in schema.CATEGORICAL_COVARIATES
        else [term]
    )
)
#: Margin levels (R0 first, the reference).
MARGINS = schema.CATEGORICAL_COVARIATES["margin"]
#: Labels of the expert-by-margin interaction terms of a margin-dependent fit.
INTERACTION_TERMS = tuple(f"expert_center:margin[{m}]" for m in MARGINS[1:])

#: Where the precomputed pseudo-true values of the default simulation live.
PSEUDO_TRUTH_PATH = Path(__file__).parent / "pseudo_truth.json"


def config_hash(config: dict) -> str:
    """Return the SHA-256 of a JSON-serialisable configuration (canonical key order).

    Examples
    --------
    >>> config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    True
    """
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def _read_stored(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def stored_pseudo_truth(path: str | Path | None = None) -> dict | None:
    """Return the precomputed pseudo-truth file's content, or None if it does not exist.

    Parameters
    ----------
    path : str or Path, optional
        The JSON file (default :data:`PSEUDO_TRUTH_PATH`).

    Returns
    -------
    dict or None
        ``{"config": ..., "config_hash": ..., "endpoints": {"LRFS": ..., "RFS": ...}, ...}``.
    """
    path = Path(PSEUDO_TRUTH_PATH if path is None else path)
    if not path.exists():
        return None
    return _read_stored(str(path.resolve()))


# --------------------------------------------------------------------------- the true model


def shapes(cfg: dict) -> NDArray[np.float64]:
    """Return the Weibull shapes of the causes, in :data:`CAUSES` order."""
    return np.array([cfg["causes"][k]["shape"] for k in CAUSES], dtype=float)


def linear_predictors(x: ArrayLike, margin: ArrayLike, cfg: dict) -> NDArray[np.float64]:
    """Return the ``(n, 3)`` cause-specific linear predictors, without the centre effect.

    Parameters
    ----------
    x : array_like
        The ``(n, len(TERMS))`` covariate matrix in :data:`TERMS` order (column 0 is the
        expert indicator).
    margin : array_like
        Margin codes 0-3 (R0, R1, R2, Rx), for ``cfg["expert_effect_by_margin"]``.
    cfg : dict
        A simulation configuration (``bayes_sarcoma.simulate.registry.make_config``).

    Returns
    -------
    numpy.ndarray
        ``eta[:, k] = intercept_k + x . beta_k (+ expert * extra[margin])``.
    """
    x = np.asarray(x, dtype=float)
    coef = np.array([[cfg["causes"][k]["beta"][t] for t in TERMS] for k in CAUSES])
    icpt = np.array([cfg["causes"][k]["intercept"] for k in CAUSES])
    eta = x @ coef.T + icpt
    extra = cfg["expert_effect_by_margin"]
    if extra:
        by_code = np.array([extra[m] for m in MARGINS])
        eta += (x[:, 0] * by_code[np.asarray(margin)])[:, None]
    return eta


def _cause_values(cfg: dict, key: str) -> NDArray[np.float64]:
    return np.array([cfg["causes"][k][key] for k in CAUSES], dtype=float)


def _expert_betas(cfg: dict) -> NDArray[np.float64]:
    return np.array([cfg["causes"][k]["beta"]["expert_center"] for k in CAUSES], dtype=float)


def cause_cumulative_hazards(
    eta: ArrayLike, expert: ArrayLike, times: ArrayLike, cfg: dict
) -> NDArray[np.float64]:
    """Return the ``(n, 3, len(times))`` cause-specific cumulative hazards at ``u = 0``.

    Parameters
    ----------
    eta : array_like
        The ``(n, 3)`` linear predictors (:func:`linear_predictors`, expert term included).
    expert : array_like
        The expert indicator of each patient (used by ``"waning_expert"``).
    times : array_like
        Months (> 0).
    cfg : dict
        A simulation configuration.

    Returns
    -------
    numpy.ndarray
        ``H_k(t | x) = H0_k(t) exp(eta_k)`` for ``"weibull"`` and ``"rise_fall"``;
        ``exp(eta0_k) I_k(t)`` for the experts of ``"waning_expert"`` (``eta0_k`` without
        the constant expert term, ``I_k`` from
        :func:`~bayes_sarcoma.simulate.scenarios.waning_integral`).
    """
    eta = np.asarray(eta, dtype=float)
    t = np.asarray(times, dtype=float)
    name = scenarios.scenario_name(cfg)
    if name == "weibull":
        return np.exp(np.log(t)[None, None, :] * shapes(cfg)[None, :, None] + eta[:, :, None])
    if name == "rise_fall":
        h0 = scenarios.loglogistic_cumulative_hazard(
            t[None, :], _cause_values(cfg, "scale")[:, None], shapes(cfg)[:, None]
        )
        return np.exp(eta)[:, :, None] * h0[None]
    expert = np.asarray(expert, dtype=float)
    beta, tau = _expert_betas(cfg), cfg["scenario"]["expert_waning_months"]
    eta0 = eta - expert[:, None] * beta[None, :]
    weib = t[None, :] ** shapes(cfg)[:, None]
    wan = np.stack(
        [scenarios.waning_integral(t, b, a, tau) for b, a in zip(beta, shapes(cfg), strict=True)]
    )
    base = np.where(expert[:, None, None] > 0, wan[None], weib[None])
    return np.exp(eta0)[:, :, None] * base


def sample_latent_times(
    rng: np.random.Generator, eta: ArrayLike, expert: ArrayLike, cfg: dict
) -> NDArray[np.float64]:
    """Draw the ``(n, 3)`` latent cause times (months) by inverting ``H_k(T) = E ~ Exp(1)``.

    Parameters
    ----------
    rng : numpy.random.Generator
        The random generator; one ``standard_exponential((n, 3))`` call in every scenario.
    eta : array_like
        The ``(n, 3)`` linear predictors, centre effect included.
    expert : array_like
        The expert indicator of each patient.
    cfg : dict
        A simulation configuration.

    Returns
    -------
    numpy.ndarray
        The latent times (see :mod:`bayes_sarcoma.simulate.scenarios` for each inversion).
    """
    eta = np.asarray(eta, dtype=float)
    name = scenarios.scenario_name(cfg)
    if name == "weibull":
        return weibull_times(rng, eta, shapes(cfg))
    e = rng.standard_exponential(eta.shape)
    if name == "rise_fall":
        return scenarios.loglogistic_times(e, eta, _cause_values(cfg, "scale"), shapes(cfg))
    expert = np.asarray(expert, dtype=bool)
    out = np.exp((np.log(e) - eta) / shapes(cfg))  # Weibull times of the other patients
    beta, tau = _expert_betas(cfg), cfg["scenario"]["expert_waning_months"]
    for k, (b, a) in enumerate(zip(beta, shapes(cfg), strict=True)):
        eta0 = eta[expert, k] - b
        out[expert, k] = scenarios.waning_times(e[expert, k], eta0, b, a, tau)
    return out


def standardized_survival(
    x: ArrayLike, margin: ArrayLike, cfg: dict, times: ArrayLike = TRUTH_TIMES
) -> dict[str, dict[str, dict]]:
    """Return the exact standardized survival of each endpoint, expert vs other.

    Each patient (row of ``x``, other covariates as they are) gets the expert indicator 1
    (``"expert"``) or 0 (``"other"``). An endpoint's survival given the covariates and a
    centre effect ``u`` is ``exp(-exp(u) * sum_k H_k(t))`` over its causes ``k``
    (:func:`cause_cumulative_hazards`, in closed form in every scenario); it is
    integrated over a new centre's ``u ~ Normal(0, center_sd)`` by Gauss-Hermite
    quadrature and averaged over the patients.

    Parameters
    ----------
    x : array_like
        The ``(n, len(TERMS))`` covariate matrix.
    margin : array_like
        Margin codes 0-3.
    cfg : dict
        A simulation configuration.
    times : array_like
        Months at which to evaluate the survival.

    Returns
    -------
    dict
        ``{endpoint: {"expert": {t: s, ...}, "other": {t: s, ...}}}``.
    """
    x = np.array(x, dtype=float)
    t = np.asarray(times, dtype=float)
    keys = _time_keys(t)
    out: dict = {e: {} for e in ENDPOINT_CAUSES}
    for arm, flag in (("expert", 1.0), ("other", 0.0)):
        x[:, 0] = flag
        eta = linear_predictors(x, margin, cfg)
        cum = cause_cumulative_hazards(eta, x[:, 0], t, cfg)
        for endpoint, causes in ENDPOINT_CAUSES.items():
            h = cum[:, [CAUSES.index(c) for c in causes], :].sum(axis=1)
            s = marginal_survival(h, cfg["center_sd"]).mean(axis=0)
            out[endpoint][arm] = {k: float(v) for k, v in zip(keys, s, strict=True)}
    return out


def _time_keys(t: ArrayLike) -> list:
    return [int(v) if float(v).is_integer() else float(v) for v in np.asarray(t, dtype=float)]


def log_hazard_ratios(cfg: dict, endpoint: str) -> dict[str, float | None]:
    """Return the exact log hazard ratio of each term for an endpoint, None where it has none.

    An endpoint's hazard is ``sum_k h0_k(t) exp(x . beta_k + u)`` over its causes. It is
    proportional in a term, with log hazard ratio ``b``, exactly when the term's
    coefficient is ``b`` in every one of these causes and does not change with time (then
    ``exp(x_j b)`` factors out of the sum), whatever the baselines. So OS (one cause) has
    every term's, except the waning expert term of ``"waning_expert"``; a composite
    endpoint has those of the terms whose coefficients its causes share (in the default
    configuration LRFS has ``tumor_size_cm`` and ``depth[deep]``). With
    ``expert_effect_by_margin`` the expert term's is the effect at the reference margin.

    Parameters
    ----------
    cfg : dict
        A simulation configuration.
    endpoint : str
        ``"LRFS"``, ``"RFS"`` or ``"OS"``.

    Returns
    -------
    dict
        ``{term: log HR or None}`` in :data:`TERMS` order (None: the endpoint's hazard is
        not proportional in the term, so it has no log hazard ratio; None rather than NaN
        so that two truths compare equal and arithmetic on it fails loudly).
    """
    causes = ENDPOINT_CAUSES[endpoint]
    waning = scenarios.scenario_name(cfg) == "waning_expert"
    extra = cfg["expert_effect_by_margin"]
    out = {}
    for term in TERMS:
        values = {float(cfg["causes"][k]["beta"][term]) for k in causes}
        constant = not (waning and term == "expert_center")
        value = values.pop() if len(values) == 1 and constant else None
        if value is not None and term == "expert_center" and extra:
            value += extra[MARGINS[0]]
        out[term] = value
    return out


def expert_hazard_ratios(cfg: dict, endpoint: str, times: ArrayLike = TRUTH_TIMES) -> dict:
    """Return the exact expert-centre hazard ratio of an endpoint at each time, or None.

    ``exp(beta(t))``: ``beta(t) = beta`` in the PH scenarios and ``beta * exp(-t / tau)``
    in ``"waning_expert"``, where the endpoint's causes share the expert coefficient
    ``beta`` (so that the ratio is the same for every patient; see
    :func:`log_hazard_ratios`), None otherwise. With ``expert_effect_by_margin``, at the
    reference margin.

    Parameters
    ----------
    cfg : dict
        A simulation configuration.
    endpoint : str
        ``"LRFS"``, ``"RFS"`` or ``"OS"``.
    times : array_like
        Months.

    Returns
    -------
    dict
        ``{t: HR(t) or None}``.
    """
    t = np.asarray(times, dtype=float)
    values = {float(cfg["causes"][k]["beta"]["expert_center"]) for k in ENDPOINT_CAUSES[endpoint]}
    if len(values) > 1:
        return dict.fromkeys(_time_keys(t))
    beta = values.pop()
    log_hr = np.full(t.shape, beta)
    if scenarios.scenario_name(cfg) == "waning_expert":
        log_hr = scenarios.waning_log_hazard_ratio(t, beta, cfg["scenario"]["expert_waning_months"])
    extra = cfg["expert_effect_by_margin"]
    if extra:
        log_hr = log_hr + extra[MARGINS[0]]
    return {k: float(v) for k, v in zip(_time_keys(t), np.exp(log_hr), strict=True)}


def fit_endpoint(
    time: ArrayLike, event: ArrayLike, x: ArrayLike, offset: ArrayLike, *, by_margin: bool
) -> dict:
    """Fit the Weibull PH model with a known offset; return it in the truth's terms.

    Parameters
    ----------
    time, event : array_like
        The endpoint's times (months) and event flags.
    x : array_like
        The ``(n, len(TERMS))`` covariate matrix.
    offset : array_like
        The patients' true centre effects.
    by_margin : bool
        Add expert-by-margin interactions and report ``beta_expert_by_margin``.

    Returns
    -------
    dict
        ``intercept``, ``shape``, ``beta`` (dict by term; ``expert_center`` is the effect
        at margin R0 when ``by_margin``), ``se`` (dict of standard errors) and, when
        ``by_margin``, ``beta_expert_by_margin``.
    """
    x = np.asarray(x, dtype=float)
    terms = list(TERMS)
    if by_margin:
        x = np.column_stack([x, x[:, :1] * x[:, -3:]])
        terms += INTERACTION_TERMS
    fit = weibull_ph_mle(time, event, x, offset)
    beta = dict(zip(terms, fit["beta"].tolist(), strict=True))
    out = {
        "intercept": fit["intercept"],
        "shape": fit["shape"],
        "beta": {t: beta[t] for t in TERMS},
        "se": dict(zip(["intercept", "shape", *terms], fit["se"].tolist(), strict=True)),
    }
    if by_margin:
        base = beta["expert_center"]
        out["beta_expert_by_margin"] = {MARGINS[0]: base} | {
            m: base + beta[f"expert_center:margin[{m}]"] for m in MARGINS[1:]
        }
    return out


def _exact_os(cfg: dict, sd: float) -> dict:
    """Return the OS truth of the default scenario, where OS is exactly the Weibull PH model."""
    death, extra = cfg["causes"]["death"], cfg["expert_effect_by_margin"]
    out = {
        "intercept": float(death["intercept"]),
        "shape": float(death["shape"]),
        "center_sd": sd,
        "beta": {t: float(death["beta"][t]) for t in TERMS},
    }
    if extra:
        base = out["beta"]["expert_center"]
        out["beta_expert_by_margin"] = {m: base + extra[m] for m in MARGINS}
        out["beta"]["expert_center"] = base + extra[MARGINS[0]]
    return out


def _pseudo_true(values: dict, sd: float, by_margin: bool) -> dict:
    """Return an endpoint's pseudo-true Weibull PH values (NaN where not computed)."""
    nan = float("nan")
    out = {
        "intercept": float(values.get("intercept", nan)),
        "shape": float(values.get("shape", nan)),
        "center_sd": sd,
        "beta": {t: float(values.get("beta", {}).get(t, nan)) for t in TERMS},
    }
    if by_margin:
        by_m = values.get("beta_expert_by_margin", {})
        out["beta_expert_by_margin"] = {m: float(by_m.get(m, nan)) for m in MARGINS}
    return out


def registry_truth(
    x: ArrayLike,
    margin: ArrayLike,
    cfg: dict,
    pseudo: dict | None,
    times: ArrayLike = TRUTH_TIMES,
) -> dict:
    """Return the truth of a registry: ``df.attrs["truth"]`` (DESIGN.md section 5).

    Per endpoint: ``intercept``, ``shape``, ``beta`` (and ``beta_expert_by_margin``) are
    the Weibull PH model's values, true where the endpoint is exactly that model
    (``exact``: OS of the default scenario) and pseudo-true otherwise (what the Weibull PH
    fit converges to); ``center_sd`` is true; ``standardized`` (the survival of both
    arms), ``log_hazard_ratio`` and ``expert_hazard_ratio`` are exact in every scenario.

    Parameters
    ----------
    x : array_like
        The registry's ``(n, len(TERMS))`` covariate matrix.
    margin : array_like
        Its margin codes 0-3.
    cfg : dict
        The simulation configuration.
    pseudo : dict or None
        The pseudo-true ``{"LRFS": ..., "RFS": ...}`` parameters (and ``"OS"`` outside
        the default scenario; see ``bayes_sarcoma.simulate.registry.pseudo_true_parameters``);
        None gives NaN.
    times : array_like
        Months of ``standardized`` and ``expert_hazard_ratio`` (default :data:`TRUTH_TIMES`).

    Returns
    -------
    dict
        Per endpoint ``intercept``, ``shape``, ``center_sd``, ``beta``, ``standardized``,
        ``exact`` (and ``beta_expert_by_margin`` with margin-dependent effects),
        ``log_hazard_ratio`` (:func:`log_hazard_ratios`) and ``expert_hazard_ratio``
        (:func:`expert_hazard_ratios`).
    """
    std = standardized_survival(x, margin, cfg, times)
    sd = float(cfg["center_sd"])
    by_margin = cfg["expert_effect_by_margin"] is not None
    default = scenarios.scenario_name(cfg) == "weibull"
    truth = {}
    for e in ENDPOINT_CAUSES:
        exact = default and e == "OS"
        v = _exact_os(cfg, sd) if exact else _pseudo_true((pseudo or {}).get(e, {}), sd, by_margin)
        by_m = {"beta_expert_by_margin": v.pop("beta_expert_by_margin")} if by_margin else {}
        truth[e] = v | {"standardized": std[e], "exact": exact} | by_m
        truth[e]["log_hazard_ratio"] = log_hazard_ratios(cfg, e)
        truth[e]["expert_hazard_ratio"] = expert_hazard_ratios(cfg, e, times)
    return truth
