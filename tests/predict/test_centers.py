"""Centre profiling: effects, posterior ranks, P(best/worst 10%), observed vs expected events,
shrinkage of small centres, and the caterpillar and funnel plots."""

import math

import matplotlib
import numpy as np
import pytest

import bayes_sarcoma as bs
from bayes_sarcoma.math import weibull
from bayes_sarcoma.predict import centers

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def fit(os_model_and_fit):
    return os_model_and_fit[1]


@pytest.fixture(scope="module")
def profile(fit):
    return centers.center_profile(fit)


def test_profile_table(fit, profile, registry_small):
    assert profile.index.name == "center"
    assert list(profile.index) == list(fit.posterior["center"].values)
    assert profile["n_patients"].sum() == len(registry_small)
    counts = registry_small.groupby("center_id").size()
    assert (profile["n_patients"] == counts.reindex(profile.index)).all()
    assert profile["n_events"].sum() == registry_small.os_event.sum()
    flags = registry_small.groupby("center_id").expert_center.first().reindex(profile.index)
    assert (profile["expert_center"].astype(bool) == flags).all()
    u = fit.posterior["center_effect"].sel(center="E01").to_numpy().ravel()
    assert profile.loc["E01", "mean"] == pytest.approx(u.mean())
    assert profile.loc["E01", "lower"] == pytest.approx(np.quantile(u, 0.025))  # 95%


def test_ranks_and_tail_probabilities(profile):
    n = len(profile)
    k = math.ceil(0.1 * n)
    assert profile.attrs["n_tail"] == k
    # Each draw puts exactly k centres in the best and k in the worst tail.
    assert profile["prob_best"].sum() == pytest.approx(k)
    assert profile["prob_worst"].sum() == pytest.approx(k)
    assert profile["rank_mean"].mean() == pytest.approx((n + 1) / 2)
    assert ((profile["rank_lower"] >= 1) & (profile["rank_upper"] <= n)).all()
    # Lower effect, better rank: the two orders agree on average.
    corr = np.corrcoef(profile["mean"], profile["rank_mean"])[0, 1]
    assert corr > 0.9


def test_expected_events_by_hand(fit, registry_small, profile):
    post = fit.posterior
    x = fit.constant_data["x"].to_numpy()
    eta = post["intercept"].to_numpy()[..., None] + post["beta"].to_numpy() @ x.T
    t = fit.observed_data["time"].to_numpy()
    h = weibull.cumulative_hazard(t, eta, post["shape"].to_numpy()[..., None])
    expected = h.mean(axis=(0, 1))
    in_e01 = (registry_small.center_id == "E01").to_numpy()
    assert profile.loc["E01", "expected"] == pytest.approx(expected[in_e01].sum(), rel=1e-10)
    # The score of the intercept: expected events sum to (about) the observed ones.
    assert profile["expected"].sum() == pytest.approx(profile["n_events"].sum(), rel=0.05)


def test_small_centres_are_shrunk_to_the_mean(fit, profile):
    sd = float(fit.posterior["center_sd"].mean())
    tiny = profile[profile.n_patients == 1]
    large = profile[profile.n_patients >= 20]
    assert len(tiny) > 50
    assert len(large) > 5
    # A one-patient centre keeps (nearly) its prior: median near 0 whatever its O/E.
    assert tiny["median"].abs().max() < 0.25 * sd
    assert (tiny["o_e"].max() > 3) or (tiny["o_e"].min() == 0)
    width = profile["upper"] - profile["lower"]
    assert width[tiny.index].mean() > width[large.index].mean()
    assert tiny["prob_best"].max() < 0.3
    assert tiny["prob_worst"].max() < 0.3


def test_total_effect_adds_the_expert_effect(fit, profile):
    total = centers.center_profile(fit, effect="total")
    beta = float(fit.posterior["beta"].sel(term="expert_center").mean())
    shift = total["mean"] - profile["mean"]
    expert = profile["expert_center"] == 1
    np.testing.assert_allclose(shift[expert], beta, rtol=1e-10)
    np.testing.assert_allclose(shift[~expert], 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="effect="):
        centers.center_profile(fit, effect="raw")


def test_plots(os_model_and_fit, profile, tmp_path):
    fig = centers.plot_caterpillar(profile)
    top, middle, bottom = fig.axes
    assert "log hazard ratio" in top.get_ylabel()
    assert "rank" in middle.get_ylabel()
    assert "centres" in bottom.get_xlabel()
    fig.savefig(tmp_path / "caterpillar.png")
    _model, dt = os_model_and_fit
    fig = bs.plot_funnel(bs.center_profile(dt))
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert "expected events" in ax.get_xlabel()
    assert "O / E" in ax.get_ylabel()
    fig.savefig(tmp_path / "funnel.png")


def test_a_fit_without_centres_has_no_profile(fit):
    tree = fit.copy()
    tree["posterior"] = fit["posterior"].to_dataset().drop_vars(["center_sd", "center_effect"])
    with pytest.raises(ValueError, match="no centre effects"):
        centers.center_profile(tree)
