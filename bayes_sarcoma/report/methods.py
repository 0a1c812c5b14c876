"""The report's Methods in words: the model, the priors of every fit, the draws behind each number.

- :func:`priors_text`: each fitted model's priors as stored in the fit
  (``dt.attrs["model"]``, merged over the defaults by
  :func:`~bayes_sarcoma.model.priors.merge_priors`), in the words a biostatistician reads:
  ``log hazard ratios: Normal(0, 2.5) per SD of continuous terms (age: SD 15.7 years) ...``.
- :func:`draws_text`: how many posterior draws a computation used, and whether they were
  thinned (evenly within chains), so that no number of the report is thinned silently.
- :func:`baselines_text`: each fitted model's baseline hazard (a spline's knots included);
- :func:`methods_text`: the Methods paragraph.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import xarray as xr

from bayes_sarcoma.model.baselines import Baseline
from bayes_sarcoma.model.priors import Prior, merge_priors
from bayes_sarcoma.predict.survival import draws, fitted_design

__all__ = [
    "baselines_text",
    "describe_prior",
    "draws_text",
    "methods_text",
    "n_draws",
    "priors_text",
]

#: Units of the registry's continuous columns, for "per SD (15.7 years)".
_UNITS = {"age": "years", "tumor_size_cm": "cm"}


def describe_prior(prior: Prior) -> str:
    """Return a prior as a reader writes it, e.g. ``Normal(0, 1)`` or ``HalfNormal(0.5)``.

    Examples
    --------
    >>> describe_prior(Prior("Normal", mu=0, sigma=1.25))
    'Normal(0, 1.25)'
    >>> describe_prior(Prior("Gamma", alpha=0.001, beta=0.001, on="precision"))
    'Gamma(0.001, 0.001) on the precision 1/sd^2'
    """
    args = ", ".join(f"{v:g}" for v in prior.parameters.values())
    on = {"sd": "", "precision": " on the precision 1/sd^2", "variance": " on the variance sd^2"}
    return f"{prior.distribution}({args}){on[prior.on]}"


def _continuous_scales(dt: xr.DataTree) -> str:
    """Return ``"age: SD 15.7 years; tumor_size_cm: SD 4.1 cm"`` for the fit's continuous terms."""
    parts = [
        f"{term.name}: SD {term.scale[0]:.3g} {_UNITS.get(term.name, 'units')}"
        for term in fitted_design(dt).terms
        if term.kind == "continuous"
    ]
    return "; ".join(parts)


def _fit_priors(dt: xr.DataTree) -> list[str]:
    """Return one fit's priors, one phrase per slot, as stored in ``dt.attrs["model"]``."""
    spec = json.loads(dt.attrs["model"])
    priors = merge_priors(spec.get("priors"))
    phrases = [
        f"intercept (log cumulative hazard at the reference time of an average patient at a "
        f"typical centre): {describe_prior(priors['intercept'])}"
    ]
    if spec.get("baseline", "weibull") == "weibull":
        phrases.append(f"Weibull shape: {describe_prior(priors['shape'])}")
    if spec.get("baseline") in ("mspline", "piecewise"):
        phrases.append(
            "SD of the random walk of the baseline's log coefficients (baseline_sd; 0 is a "
            f"constant hazard): {describe_prior(priors['baseline_sd'])}"
        )
    scales = _continuous_scales(dt)
    phrases.append(
        f"log hazard ratios: {describe_prior(priors['beta'])} per SD of continuous terms"
        + (f" ({scales})" if scales else "")
        + ", per unit of binary and dummy terms"
    )
    for slot, prior in priors.items():
        if slot.startswith("beta:"):
            phrases.append(
                f"log hazard ratio of {slot[5:]}: {describe_prior(prior)} per unit of its column"
            )
    if spec.get("center_effects", True) and spec.get("cluster"):
        phrases.append(
            f"SD of the centre effects (log hazard): {describe_prior(priors['center_sd'])}"
        )
    if spec.get("effect_modifier"):
        phrases.append(
            f"SD of the expert effect across {spec['effect_modifier']} levels (interaction_sd): "
            f"{describe_prior(priors['interaction_sd'])}"
        )
    return phrases


def priors_text(fits: Mapping[str, Mapping[str, xr.DataTree]]) -> list[str]:
    """Return the priors of every fit, fits with the same priors in one line.

    Parameters
    ----------
    fits : mapping
        Endpoint -> {model name -> fit}.

    Returns
    -------
    list of str
        One line per distinct prior set: ``"LRFS weibull, RFS weibull: intercept ...; ..."``.

    Examples
    --------
    >>> priors_text({"OS": {"weibull": dt}})  # doctest: +SKIP
    ['OS weibull: intercept (log cumulative hazard ...): Normal(0, 1.25); ...']
    """
    groups: dict[str, list[str]] = {}
    for endpoint, named in fits.items():
        for name, dt in named.items():
            groups.setdefault("; ".join(_fit_priors(dt)), []).append(f"{endpoint} {name}")
    return [f"{', '.join(names)}: {text}" for text, names in groups.items()]


def baselines_text(fits: Mapping[str, Mapping[str, xr.DataTree]]) -> list[str]:
    """Return each fit's baseline hazard (its knots for a spline), equal ones in one line.

    Examples
    --------
    >>> baselines_text({"OS": {"weibull": dt}})  # doctest: +SKIP
    ['OS weibull: Weibull baseline hazard, h0(t) = alpha t^(alpha-1)']
    """
    groups: dict[str, list[str]] = {}
    for endpoint, named in fits.items():
        for name, dt in named.items():
            groups.setdefault(Baseline.from_fit(dt).describe(), []).append(f"{endpoint} {name}")
    return [f"{', '.join(names)}: {text}" for text, names in groups.items()]


def n_draws(dt: xr.DataTree, num_draws: int | None = None) -> int:
    """Return how many posterior draws a computation with ``num_draws`` uses.

    Thinning keeps every k-th draw of each chain
    (:func:`~bayes_sarcoma.predict.survival.draws`), so the count can be below ``num_draws``.

    Examples
    --------
    >>> n_draws(dt), n_draws(dt, 1000)  # doctest: +SKIP
    (4000, 1000)
    """
    post = draws(dt, num_draws=num_draws)
    return int(post.sizes["chain"] * post.sizes["draw"])


def draws_text(dt: xr.DataTree, num_draws: int | None = None) -> str:
    """Return ``"all 4000 posterior draws"`` or ``"1000 of the 4000 posterior draws (thinned)"``.

    Examples
    --------
    >>> draws_text(dt, 1000)  # doctest: +SKIP
    '1000 of the 4000 posterior draws (thinned evenly within chains)'
    """
    used, total = n_draws(dt, num_draws), n_draws(dt)
    if used == total:
        return f"all {total} posterior draws"
    return f"{used} of the {total} posterior draws (thinned evenly within chains)"


def methods_text(
    *,
    ci_prob: float,
    horizon: float,
    draws_used: Mapping[str, str],
    priors: list[str],
    baselines: list[str] | None = None,
    patient_level: Sequence[str] = (),
) -> dict[str, object]:
    """Return the Methods: the model paragraph, the priors and the draws behind each number.

    Parameters
    ----------
    ci_prob : float
        Probability of every interval.
    horizon : float
        RMST horizon (months).
    draws_used : mapping
        Computation (``"standardized survival"``, ``"predictive checks"``, ``"PSIS-LOO"``)
        -> :func:`draws_text`'s phrase.
    priors : list of str
        :func:`priors_text`'s lines.
    baselines : list of str, optional
        :func:`baselines_text`'s lines (default: every fit has the Weibull baseline).
    patient_level : sequence of str
        Treatments of the fits that vary within centres (patient-level terms; the expert
        flag is centre-level).

    Returns
    -------
    dict
        ``model`` (a paragraph, the baselines included), ``priors`` and ``draws`` (lists of
        sentences).
    """
    weibull_only = not baselines or all("Weibull baseline" in b for b in baselines)
    if weibull_only:
        hazard = "Weibull proportional-hazards model, h(t) = alpha t^(alpha-1) exp(eta)"
    else:
        hazard = (
            "Proportional-hazards model, h(t) = h0(t) exp(eta), with the baseline hazards h0 "
            "listed below (M-spline and piecewise baselines: knots at quantiles of the event "
            "times, the hazard held constant past the longest follow-up, so predictions "
            "beyond it extrapolate that constant)"
        )
    model = (
        f"{hazard}, with a normal random intercept per centre (non-centred where centres are "
        "small), fitted by NUTS (nutpie). Continuous covariates are standardised for "
        "sampling; their hazard ratios are reported per 10 years of age and per 5 cm of "
        "tumour size. "
        + _treatment_sentence(patient_level)
        + f"Every interval is an equal-tailed {ci_prob:.0%} posterior (credible) interval around "
        "the posterior median. Standardized survival: g-computation over the registry's "
        "covariates with a new centre's effect integrated out (Gauss-Hermite); RMST to "
        f"{horizon:g} months. Posterior predictive checks censor replicated times at each "
        "patient's censoring time (for patients with an event, drawn from the reverse "
        "Kaplan-Meier estimate beyond their event time, assuming censoring independent of the "
        "covariates). Model comparison: PSIS-LOO (arviz-stats) with the centre effect "
        "integrated out by adaptive Gauss-Hermite quadrature (exact leave-one-out predictive "
        "within a centre), and leave-centre-out PSIS with a new centre's effect integrated out."
    )
    used = [f"{what}: {text}." for what, text in draws_used.items()]
    out = {"model": model, "priors": priors, "draws": used}
    out["baselines"] = [] if weibull_only else list(baselines or [])
    return out


def _treatment_sentence(patient_level: Sequence[str]) -> str:
    """Return the Methods' sentence on how the treatment's effect is identified."""
    if not patient_level:
        return "The expert-centre effect is a centre-level attribute, identified between centres. "
    names = ", ".join(dict.fromkeys(patient_level))
    return (
        f"The treatment ({names}) varies within centres: it is a patient-level term, its "
        "effect identified by comparing patients within centres as well as between them. "
    )
