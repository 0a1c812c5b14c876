"""The true model behind a simulated registry, and how its truth is computed.

A simulated patient has three latent causes (local relapse, distant relapse, death), each
a Weibull PH time with ``H_k(t) = t**shape_k * exp(eta_k + u_c)`` (months), where
``eta_k`` is the cause's linear predictor in the model terms of :data:`TERMS` and
``u_c ~ Normal(0, center_sd)`` is the centre effect shared by the three causes. This
module holds that model and the truth it implies; :mod:`bayes_sarcoma.simulate.registry` draws
registries from it.

- :func:`linear_predictors`: the cause-specific ``eta_k`` of a configuration.
- :func:`standardized_survival`: the survival if every patient were (not) treated at an
  expert centre, averaged over the patients and integrated over a new centre's effect
  (:func:`marginal_survival`, Gauss-Hermite). Because ``u_c`` multiplies every
  cause-specific hazard, ``S(t | x, u) = exp(-exp(u) * sum_k H_k(t | x))`` is exact for
  every endpoint.
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


def standardized_survival(
    x: ArrayLike, margin: ArrayLike, cfg: dict, times: ArrayLike = TRUTH_TIMES
) -> dict[str, dict[str, dict]]:
    """Return the exact standardized survival of each endpoint, expert vs other.

    Each patient (row of ``x``, other covariates as they are) gets the expert indicator 1
    (``"expert"``) or 0 (``"other"``). An endpoint's survival given the covariates and a
    centre effect ``u`` is ``exp(-exp(u) * sum_k H_k(t))`` over its causes ``k``; it is
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
    keys = [int(v) if float(v).is_integer() else float(v) for v in t]
    out: dict = {e: {} for e in ENDPOINT_CAUSES}
    for arm, flag in (("expert", 1.0), ("other", 0.0)):
        x[:, 0] = flag
        eta = linear_predictors(x, margin, cfg)
        cum = np.exp(np.log(t)[None, None, :] * shapes(cfg)[None, :, None] + eta[:, :, None])
        for endpoint, causes in ENDPOINT_CAUSES.items():
            h = cum[:, [CAUSES.index(c) for c in causes], :].sum(axis=1)
            s = marginal_survival(h, cfg["center_sd"]).mean(axis=0)
            out[endpoint][arm] = {k: float(v) for k, v in zip(keys, s, strict=True)}
    return out


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


def registry_truth(x: ArrayLike, margin: ArrayLike, cfg: dict, pseudo: dict | None) -> dict:
    """Return the truth of a registry: ``df.attrs["truth"]`` (DESIGN.md section 5).

    Parameters
    ----------
    x : array_like
        The registry's ``(n, len(TERMS))`` covariate matrix.
    margin : array_like
        Its margin codes 0-3.
    cfg : dict
        The simulation configuration.
    pseudo : dict or None
        The pseudo-true ``{"LRFS": ..., "RFS": ...}`` parameters (see
        ``bayes_sarcoma.simulate.registry.pseudo_true_parameters``); None gives NaN.

    Returns
    -------
    dict
        Per endpoint ``intercept``, ``shape``, ``center_sd``, ``beta``, ``standardized``,
        ``exact`` (and ``beta_expert_by_margin`` with margin-dependent effects).
    """
    std = standardized_survival(x, margin, cfg)
    sd = float(cfg["center_sd"])
    extra = cfg["expert_effect_by_margin"]
    death = cfg["causes"]["death"]
    truth = {
        "OS": {
            "intercept": float(death["intercept"]),
            "shape": float(death["shape"]),
            "center_sd": sd,
            "beta": {t: float(death["beta"][t]) for t in TERMS},
            "standardized": std["OS"],
            "exact": True,
        }
    }
    if extra:
        base = truth["OS"]["beta"]["expert_center"]
        truth["OS"]["beta_expert_by_margin"] = {m: base + extra[m] for m in MARGINS}
        truth["OS"]["beta"]["expert_center"] = base + extra[MARGINS[0]]
    nan = float("nan")
    for e in ("LRFS", "RFS"):
        v = (pseudo or {}).get(e, {})
        truth[e] = {
            "intercept": float(v.get("intercept", nan)),
            "shape": float(v.get("shape", nan)),
            "center_sd": sd,
            "beta": {t: float(v.get("beta", {}).get(t, nan)) for t in TERMS},
            "standardized": std[e],
            "exact": False,
        }
        if extra:
            by_m = v.get("beta_expert_by_margin", {})
            truth[e]["beta_expert_by_margin"] = {m: float(by_m.get(m, nan)) for m in MARGINS}
    return {e: truth[e] for e in ENDPOINT_CAUSES}
