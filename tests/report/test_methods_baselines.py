"""The report's Methods describe a flexible baseline (its knots) and its smoothing prior."""

from __future__ import annotations

from bayes_sarcoma.report.methods import baselines_text, methods_text, priors_text


def test_methods_describe_the_spline_baseline_and_its_prior(
    mspline_model_and_fit, os_model_and_fit
):
    model, dt = mspline_model_and_fit
    fits = {"OS": {"mspline": dt, "weibull": os_model_and_fit[1]}}
    lines = baselines_text(fits)
    knots = model.baseline_.knots
    assert lines[0].startswith("OS mspline: cubic M-spline baseline hazard with 6 basis functions")
    assert f"{knots[1]:.3g}" in lines[0]
    assert f"{knots[-1]:.3g}" in lines[0]
    assert lines[1] == "OS weibull: Weibull baseline hazard, h0(t) = alpha t^(alpha-1)"
    priors = priors_text({"OS": {"mspline": dt}})[0]
    assert "(baseline_sd; 0 is a constant hazard): HalfNormal(1)" in priors
    assert "Weibull shape" not in priors
    text = methods_text(ci_prob=0.95, horizon=60, draws_used={}, priors=[], baselines=lines)
    assert text["model"].startswith("Proportional-hazards model, h(t) = h0(t) exp(eta)")
    assert text["baselines"] == lines
    weibull = methods_text(ci_prob=0.95, horizon=60, draws_used={}, priors=[], baselines=lines[1:])
    assert weibull["model"].startswith("Weibull proportional-hazards model")
    assert weibull["baselines"] == []
