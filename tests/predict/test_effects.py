"""Hazard and time ratio tables, and the expert effect by resection margin (partial pooling):
recovery of a truly margin-dependent effect, shrinkage to a common effect when there is none,
and standardized survival that switches the interaction with the treatment."""

import warnings

import matplotlib
import numpy as np
import pytest
from conftest import FAST

import bayes_sarcoma as bs
from bayes_sarcoma.data import schema
from bayes_sarcoma.data.design import Design
from bayes_sarcoma.predict import effects, standardize
from bayes_sarcoma.predict import survival as predict
from bayes_sarcoma.simulate import truth

matplotlib.use("Agg")

#: Extra expert log hazard ratio by margin: the benefit vanishes at R1, doubles at Rx.
BY_MARGIN = {"R1": 0.6, "Rx": -0.4}


def fit_by_margin(df, **kw):
    model = bs.HierarchicalWeibull("OS", effect_modifier="margin", **kw)
    with warnings.catch_warnings():
        # A few divergences in the 4-level interaction sd are possible with short chains;
        # the recovery checks below are what matter here.
        warnings.simplefilter("ignore", bs.SamplerWarning)
        dt = model.fit(df, random_seed=3, target_accept=0.95, **FAST)
    assert int(dt.sample_stats["diverging"].sum()) <= 6
    return model, dt


@pytest.fixture(scope="module")
def margin_fits():
    """OS fits with an expert-by-margin interaction: a margin-dependent truth and a common one.

    Both registries share their random_seed, so centres and covariates (and the compiled model)
    are the same; only the outcomes differ.
    """
    varying = bs.simulate_registry(3000, random_seed=11, expert_effect_by_margin=BY_MARGIN)
    common = bs.simulate_registry(3000, random_seed=11)
    return {
        "varying": (varying, *fit_by_margin(varying)),
        "common": (common, *fit_by_margin(common)),
    }


# -- hazard and time ratios ----------------------------------------------------------------
def test_hazard_ratio_table(os_model_and_fit):
    _model, dt = os_model_and_fit
    table = bs.hazard_ratios(dt, ci_prob=0.9)
    assert list(table.index) == list(dt.posterior["term"].values)
    assert table.index.name == "term"
    hr = np.exp(dt.posterior["beta"].sel(term="grade[3]").to_numpy().ravel())
    row = table.loc["grade[3]"]
    assert row["mean"] == pytest.approx(hr.mean())
    assert row["median"] == pytest.approx(np.median(hr))
    assert row["lower"] == pytest.approx(np.quantile(hr, 0.05))
    assert row["upper"] == pytest.approx(np.quantile(hr, 0.95))
    assert row["prob_lt_1"] == pytest.approx((hr < 1).mean())
    assert table.loc["expert_center", "prob_lt_1"] > 0.95  # true HR 0.65
    wider = effects.hazard_ratios(dt, ci_prob=0.99)
    assert (wider["upper"] - wider["lower"] > table["upper"] - table["lower"]).all()


def test_time_ratio_table(os_model_and_fit):
    _, dt = os_model_and_fit
    table = effects.time_ratios(dt)
    post = dt.posterior
    tr = np.exp(-post["beta"] / post["shape"]).sel(term="expert_center").to_numpy().ravel()
    assert table.loc["expert_center", "mean"] == pytest.approx(tr.mean())
    hr = effects.hazard_ratios(dt)
    np.testing.assert_allclose(table["prob_gt_1"], hr["prob_lt_1"])
    # A patient's median scales by the time ratio when only the term changes.
    row = bs.simulate_registry(5, random_seed=1).iloc[[0]]
    med = [
        predict.predict_median(dt, row.assign(expert_center=v), center="typical")
        for v in (True, False)
    ]
    ratio = (med[0] / med[1]).to_numpy().ravel()
    np.testing.assert_allclose(ratio, tr, rtol=1e-10)


def test_plots_have_labelled_log_axes(os_model_and_fit, margin_fits, tmp_path):
    _, dt = os_model_and_fit
    fig = effects.plot_hazard_ratios(dt)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert "hazard ratio" in ax.get_xlabel()
    fig.savefig(tmp_path / "hr.png")
    _, _, dt_margin = margin_fits["varying"]
    fig = effects.plot_effect_by_modifier(dt_margin)
    ax = fig.axes[0]
    assert "expert_center" in ax.get_xlabel()
    assert ax.get_xscale() == "log"
    assert [t.get_text().split()[1] for t in ax.get_yticklabels()] == ["R0", "R1", "R2", "Rx"]
    fig.savefig(tmp_path / "by_margin.png")
    assert (tmp_path / "by_margin.png").stat().st_size > 0


def test_effect_by_modifier_needs_a_modifier(os_model_and_fit):
    _, dt = os_model_and_fit
    with pytest.raises(ValueError, match="effect_modifier='margin'"):
        effects.effect_by_modifier(dt)


# -- the expert effect by margin -------------------------------------------------------------
def test_effect_by_margin_table(margin_fits):
    df, _model, dt = margin_fits["varying"]
    table = bs.effect_by_modifier(dt)
    assert list(table.index) == ["R0", "R1", "R2", "Rx", "common"]
    assert table.loc["R1", "n_patients"] == (df.margin == "R1").sum()
    assert table.loc["R1", "n_treated"] == (df.expert_center & (df.margin == "R1")).sum()
    assert table.loc["common", "n_events"] == df.os_event.sum()
    hr = dt.posterior["treatment_hazard_ratio"].sel(margin="Rx").to_numpy().ravel()
    assert table.loc["Rx", "median"] == pytest.approx(np.median(hr))
    assert set(table.attrs["interaction_sd"]) == {"mean", "lower", "upper"}


def test_recovers_a_margin_dependent_expert_effect(margin_fits):
    df, _, dt = margin_fits["varying"]
    true = df.attrs["truth"]["OS"]["beta_expert_by_margin"]
    log_hr = dt.posterior["treatment_log_hr"]
    for margin, value in true.items():
        draws = log_hr.sel(margin=margin).to_numpy().ravel()
        lo, hi = np.quantile(draws, [0.03, 0.97])
        assert lo <= value <= hi, (margin, value, lo, hi)
    # The data say the effects differ: R1 (no benefit) against Rx (a large one).
    diff = (log_hr.sel(margin="R1") - log_hr.sel(margin="Rx")).to_numpy()
    assert (diff > 0).mean() > 0.99
    common_sd = margin_fits["common"][2].posterior["interaction_sd"]
    assert float(dt.posterior["interaction_sd"].median()) > 2 * float(common_sd.median())


def unpooled_log_hr_by_margin(df):
    """Maximum-likelihood expert log HR per margin (separate effects, no centre effects)."""
    design = Design.learn(df, schema.DEFAULT_TERMS)
    x = design.raw_matrix(df)
    margin = np.asarray(df.margin)
    inter = np.column_stack([x[:, 0] * (margin == m) for m in truth.MARGINS[1:]])
    fit = truth.weibull_ph_mle(
        df.os_months.clip(lower=0.5 / schema.DAYS_PER_MONTH), df.os_event, np.hstack([x, inter])
    )
    base = fit["beta"][0]
    return np.array([base, *(base + fit["beta"][-3:])])


def test_shrinks_to_a_common_effect_when_margins_do_not_differ(margin_fits):
    df, _model, dt = margin_fits["common"]
    post = dt.posterior
    assert float(post["interaction_sd"].quantile(0.97)) < 0.45
    pooled = post["treatment_log_hr"].mean(("chain", "draw")).to_numpy()
    unpooled = unpooled_log_hr_by_margin(df)
    assert np.std(pooled) < 0.5 * np.std(unpooled)
    # Every margin's interval holds the common truth.
    true = df.attrs["truth"]["OS"]["beta"]["expert_center"]
    table = bs.effect_by_modifier(dt)
    assert ((table["lower"] < np.exp(true)) & (np.exp(true) < table["upper"])).all()


def test_standardized_survival_switches_the_interaction(margin_fits):
    df, _, dt = margin_fits["varying"]
    sub = df[df.margin.isin(["R1", "Rx"])]
    std = standardize.standardized_survival(dt, sub, [24.0, 60.0], num_draws=30)
    post = predict.draws(dt, num_draws=30)
    flat = {k: post[k].to_numpy().reshape(-1, *post[k].shape[2:]) for k in post.data_vars}
    design = predict.fitted_design(dt)
    levels = list(post["margin"].values)
    m = np.array([levels.index(v) for v in sub.margin])
    z, w = predict.quadrature(predict.nodes_for(flat["center_sd"]))
    for arm, flag in (("treated", 1.0), ("control", 0.0)):
        x = design.raw_matrix(sub.assign(expert_center=flag))
        # eta by hand: the interaction applies to treated patients only.
        eta = flat["intercept"][:, None] + flat["beta"] @ x.T
        eta = eta + flag * flat["interaction_effect"][:, m]
        u = flat["center_sd"][:, None] * z
        t = np.array([24.0, 60.0])
        log_h = flat["shape"][:, None, None, None] * np.log(t)[None, None, :, None]
        s = np.exp(-np.exp(log_h + eta[:, :, None, None] + u[:, None, None, :])) @ w
        np.testing.assert_allclose(
            std[arm].to_numpy().reshape(-1, 2), s.mean(axis=1), rtol=0, atol=1e-12
        )


@pytest.mark.slow
def test_margin_recovery_at_netsarc_size():
    df = bs.simulate_registry(random_seed=2026, expert_effect_by_margin=BY_MARGIN)
    model = bs.HierarchicalWeibull("OS", effect_modifier="margin")
    dt = model.fit(df, random_seed=5, progressbar=False, target_accept=0.95)
    true = df.attrs["truth"]["OS"]["beta_expert_by_margin"]
    # Four margins checked at once: each at 98.5%, a family-wise 94% (Bonferroni). With this
    # random_seed R0 falls just outside its own 94% interval (HR 0.75 vs the true 0.65); the
    # maximum-likelihood fit without centre effects finds 0.74 too: it is the data.
    table = effects.effect_by_modifier(dt, ci_prob=1 - 0.06 / 4)
    for margin, value in true.items():
        assert table.loc[margin, "lower"] < np.exp(value) < table.loc[margin, "upper"], margin
    diff = dt.posterior["treatment_log_hr"].sel(margin="R1") - dt.posterior["treatment_log_hr"].sel(
        margin="Rx"
    )
    assert float((diff > 0).mean()) > 0.999
