"""Centre profiling: effects, shrunken hazard ratios, P(HR above/below a threshold), posterior
ranks, P(best/worst 10%), observed vs expected events, shrinkage of small centres, the smooth
funnel limits, and the caterpillar and funnel plots (on a fit and on a NETSARC-size profile)."""

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection
from scipy import stats

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
    assert list(profile.columns[:9]) == [
        "n_patients",
        "n_events",
        "expected",
        "o_e",
        "ratio",
        "ratio_lower",
        "ratio_upper",
        "p_above",
        "p_below",
    ]
    assert profile.attrs["threshold"] == 1.2
    assert profile.attrs["ci_prob"] == 0.95


def test_shrunken_ratios_and_threshold_probabilities(fit, profile):
    # Every centre at once: the (draws, centres) matrix of exp(u_c), summarised by hand.
    hr = np.exp(fit.posterior["center_effect"].to_numpy().reshape(-1, len(profile)))
    median, lower, upper = np.quantile(hr, [0.5, 0.025, 0.975], axis=0)
    np.testing.assert_allclose(profile["ratio"], median, rtol=1e-12)
    np.testing.assert_allclose(profile["ratio_lower"], lower, rtol=1e-12)
    np.testing.assert_allclose(profile["ratio_upper"], upper, rtol=1e-12)
    np.testing.assert_allclose(profile["p_above"], (hr > 1.2).mean(axis=0))
    np.testing.assert_allclose(profile["p_below"], (hr < 1 / 1.2).mean(axis=0))
    assert (profile["ratio_lower"] < profile["ratio"]).all()
    assert (profile["ratio"] < profile["ratio_upper"]).all()
    # Large centres can be told apart from the network more than tiny ones, which stay
    # near 1 whatever their raw ratio.
    extreme = profile[["p_above", "p_below"]].max(axis=1)
    tiny = profile[profile.n_patients == 1]
    assert extreme.max() > 0.2
    assert extreme[tiny.index].max() < extreme[profile.n_patients >= 20].max()
    assert (tiny["ratio"] - 1).abs().max() < 0.1
    assert (tiny["o_e"] - 1).abs().max() >= 1


def test_the_threshold_is_a_keyword(fit, profile):
    strict = centers.center_profile(fit, threshold=1.5, ci_prob=0.8)
    hr = np.exp(fit.posterior["center_effect"].to_numpy().reshape(-1, len(profile)))
    np.testing.assert_allclose(strict["p_above"], (hr > 1.5).mean(axis=0))
    np.testing.assert_allclose(strict["p_below"], (hr < 1 / 1.5).mean(axis=0))
    assert (strict["p_above"] <= profile["p_above"]).all()
    assert strict.attrs["threshold"] == 1.5
    np.testing.assert_allclose(strict["ratio_upper"], np.quantile(hr, 0.9, axis=0))
    with pytest.raises(ValueError, match="threshold"):
        centers.center_profile(fit, threshold=0.8)
    with pytest.raises(ValueError, match="ci_prob"):
        centers.center_profile(fit, ci_prob=95)


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


def test_total_effect_adds_the_expert_effect(fit, profile, registry_small):
    total = centers.center_profile(fit, effect="total")
    beta = float(fit.posterior["beta"].sel(term="expert_center").mean())
    shift = total["mean"] - profile["mean"]
    expert = profile["expert_center"] == 1
    np.testing.assert_allclose(shift[expert], beta, rtol=1e-10)
    np.testing.assert_allclose(shift[~expert], 0.0, atol=1e-12)
    # Its ratio is exp(u_c + beta_T) of each draw, against a typical non-expert centre ...
    b = fit.posterior["beta"].sel(term="expert_center").to_numpy().ravel()
    u = fit.posterior["center_effect"].sel(center="E01").to_numpy().ravel()
    assert total.loc["E01", "ratio"] == pytest.approx(np.median(np.exp(u + b)), rel=1e-12)
    assert total.loc["E01", "p_above"] == pytest.approx(np.mean(np.exp(u + b) > 1.2))
    # ... and so is its expected: the case mix only, the expert term left out.
    x = fit.constant_data["x"].copy()
    x.loc[{"term": "expert_center"}] = 0.0
    post = fit.posterior
    eta = post["intercept"].to_numpy()[..., None] + post["beta"].to_numpy() @ x.to_numpy().T
    t = fit.observed_data["time"].to_numpy()
    h = weibull.cumulative_hazard(t, eta, post["shape"].to_numpy()[..., None]).mean(axis=(0, 1))
    in_e01 = (registry_small.center_id == "E01").to_numpy()
    assert total.loc["E01", "expected"] == pytest.approx(h[in_e01].sum(), rel=1e-10)
    np.testing.assert_allclose(total["expected"][~expert], profile["expected"][~expert])
    assert total.attrs["effect"] == "total"
    with pytest.raises(ValueError, match="effect="):
        centers.center_profile(fit, effect="raw")
    with pytest.raises(ValueError, match="not terms of this fit"):
        centers.expected_events(fit, without=["expert"])


def test_plots_of_a_fit(os_model_and_fit, profile, tmp_path):
    fig = centers.plot_caterpillar(profile, title="OS: centre effects")
    ax, prob_ax = fig.axes
    assert ax.get_xlabel() == "hazard ratio vs a typical centre (log scale)"
    assert ax.get_xscale() == "log"
    assert "95% credible intervals" in ax.get_title()
    assert fig.get_suptitle() == "OS: centre effects"
    assert prob_ax.get_xlabel() == "posterior probability"
    fig.savefig(tmp_path / "caterpillar.png")
    _model, dt = os_model_and_fit
    fig = bs.plot_funnel(bs.center_profile(dt), title="OS: funnel plot")
    raw, model = fig.axes[:2]
    assert raw.get_xscale() == "log"
    assert raw.get_xlabel() == "expected events (case-mix model)"
    assert "observed / expected" in raw.get_ylabel()
    assert "O / E" in raw.get_ylabel()
    assert "95% credible interval" in model.get_title()
    fig.savefig(tmp_path / "funnel.png")
    total = centers.center_profile(dt, effect="total")
    fig = centers.plot_caterpillar(total)
    assert "non-expert" in fig.axes[0].get_xlabel()
    centers.plot_funnel(total).savefig(tmp_path / "funnel_total.png")


# Smooth funnel limits (Spiegelhalter 2005) ---------------------------------------------------


@pytest.mark.parametrize("prob", [0.95, 0.998])
def test_funnel_limits_interpolate_the_poisson_distribution(prob):
    e = np.geomspace(0.3, 3000, 157)
    lower, upper = centers.funnel_limits(e, prob)
    for limit, p in ((lower, (1 - prob) / 2), (upper, (1 + prob) / 2)):
        count = limit * e
        inside = count > 0  # a limit clipped at 0 events has no quantile to match
        for ei, c in zip(e[inside], count[inside], strict=True):
            # P(Poisson(E) <= count) brackets the level at the integers around the limit ...
            assert stats.poisson.cdf(np.floor(c), ei) <= p + 1e-12
            assert stats.poisson.cdf(np.ceil(c), ei) >= p - 1e-12
            # ... and the distribution function joined linearly crosses it at the limit.
            k = np.arange(np.floor(c) - 1, np.ceil(c) + 2)
            assert np.interp(c, k, stats.poisson.cdf(k, ei)) == pytest.approx(p, abs=1e-9)
    # Below E = -log(p): no lower limit (0 events is not below it); the clip is at 0.
    assert centers.funnel_limits(0.5, 0.95)[0] == 0.0


@pytest.mark.parametrize("prob", [0.95, 0.998])
def test_funnel_limits_are_smooth_and_monotone(prob):
    e = np.geomspace(1.0, 1e4, 40_001)
    lower, upper = centers.funnel_limits(e, prob)
    # Continuous: no jump on a fine grid, where the Poisson quantile itself is stairs.
    assert np.abs(np.diff(upper)).max() < 2e-3
    assert np.abs(np.diff(lower)).max() < 2e-3
    stairs = stats.poisson.ppf((1 + prob) / 2, e) / e
    assert np.abs(np.diff(stairs)).max() > 0.1
    # The funnel narrows: the lower limit rises, the upper falls (up to wiggles of
    # the linear interpolation far below any plotting resolution).
    assert np.diff(lower).min() > -1e-12
    assert np.diff(upper).max() < 5e-4
    assert np.diff(upper * e).min() > 0  # the limit in events rises with E
    assert upper[0] > 2
    assert upper[-1] > 1 > lower[-1] > lower[0]


@pytest.mark.parametrize("prob", [0.95, 0.998])
def test_funnel_limits_approach_the_normal_approximation(prob):
    z = stats.norm.ppf((1 + prob) / 2)
    e = np.array([1e3, 1e4, 1e5, 1e6])
    lower, upper = centers.funnel_limits(e, prob)
    half = z * np.sqrt(1 / e)
    # The difference is O(1/E), against a half-width O(1/sqrt(E)).
    np.testing.assert_array_less(np.abs(upper - (1 + half)), 2 / e)
    np.testing.assert_array_less(np.abs(lower - (1 - half)), 2 / e)
    assert np.abs(upper - 1 - half)[-1] / half[-1] < 1e-3


def test_funnel_limits_check_their_arguments():
    with pytest.raises(ValueError, match="prob"):
        centers.funnel_limits([1.0], 95)
    with pytest.raises(ValueError, match="> 0"):
        centers.funnel_limits([0.0, 1.0])


# A NETSARC-size profile: 2,343 centres, 26 expert, most with one or two patients ------------


def netsarc_profile(n_centers=2343, n_expert=26, n_draws=400, seed=11):
    """A profile of center_profile's form built from normal draws of u_c, no fit."""
    rng = np.random.default_rng(seed)
    n = np.concatenate(
        [
            rng.integers(120, 700, n_expert),
            rng.integers(30, 150, 30),
            rng.geometric(0.45, n_centers - n_expert - 30).clip(max=29),
        ]
    )
    expected = n * rng.uniform(0.25, 0.45, n_centers)
    observed = rng.poisson(expected * np.exp(rng.normal(0, 0.15, n_centers)))
    precision = 1 / 0.15**2 + expected
    mean = np.log((observed + 0.5) / (expected + 0.5)) * expected / precision
    hr = np.exp(mean + rng.standard_normal((n_draws, n_centers)) / np.sqrt(precision))
    names = [f"E{i:02d}" for i in range(n_expert)]
    names += [f"C{i:04d}" for i in range(n_centers - n_expert)]
    median, lower, upper = np.quantile(hr, [0.5, 0.025, 0.975], axis=0)
    profile = pd.DataFrame(
        {
            "n_patients": n,
            "n_events": observed,
            "expected": expected,
            "o_e": observed / expected,
            "ratio": median,
            "ratio_lower": lower,
            "ratio_upper": upper,
            "p_above": (hr > 1.2).mean(axis=0),
            "p_below": (hr < 1 / 1.2).mean(axis=0),
            "expert_center": np.arange(n_centers) < n_expert,
        },
        index=pd.Index(names, name="center"),
    )
    profile.attrs = {
        "ci_prob": 0.95,
        "threshold": 1.2,
        "treatment": "expert_center",
        "effect": "center",
    }
    return profile


@pytest.fixture(scope="module")
def netsarc():
    return netsarc_profile()


def test_caterpillar_rows_keep_the_centres_that_matter(netsarc):
    shown, rest = centers.caterpillar_rows(netsarc, min_patients=30)
    expert = netsarc.index[netsarc.expert_center]
    big = netsarc.index[netsarc.n_patients >= 30]
    assert set(shown.index) == set(expert) | set(big)
    assert len(shown) == 56
    assert len(rest) == len(netsarc) - len(shown)
    assert (rest.n_patients < 30).all()
    assert not rest.expert_center.any()
    assert shown["ratio"].is_monotonic_increasing
    # An expert centre is shown whatever its size.
    small = netsarc.copy()
    small.loc["E00", "n_patients"] = 3
    assert "E00" in centers.caterpillar_rows(small, 30)[0].index


def test_caterpillar_of_a_netsarc_size_registry(netsarc, tmp_path):
    fig = centers.plot_caterpillar(netsarc)
    ax, prob_ax = fig.axes
    shown, rest = centers.caterpillar_rows(netsarc, min_patients=30)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    # One row per expert or big centre, sorted by the shrunken ratio, and one for the rest.
    assert len(labels) == len(shown) + 1
    assert [label.split()[0] for label in labels[:-1]] == list(shown.index)
    assert labels[0] == f"{shown.index[0]}  (n={shown.n_patients.iloc[0]})"
    assert labels[-1] == f"{len(rest):,} other centres\n(< 30 patients each)"
    assert labels[-1].startswith("2,287 other centres")
    colours = [t.get_color() for t in ax.get_yticklabels()[:-1]]
    assert [c == "C3" for c in colours] == list(shown.expert_center)
    summary = " ".join(t.get_text() for t in ax.texts)
    assert f"medians, {rest.ratio.min():.2f} to {rest.ratio.max():.2f}" in summary
    assert "95% credible intervals" in ax.get_title()
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "hazard ratio vs a typical centre (log scale)"
    # Readable: a figure of 57 rows, not 2,343 lines: one interval per row drawn.
    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert sum(len(c.get_segments()) for c in lines) == len(shown) + 1
    assert fig.get_figheight() < 16
    legend = [t.get_text() for t in prob_ax.get_legend().get_texts()]
    assert legend == ["P(HR > 1.2)", "P(HR < 0.83)"]
    fig.savefig(tmp_path / "caterpillar.png", dpi=80)
    fewer = centers.plot_caterpillar(netsarc, min_patients=200)
    n_rest = int(((netsarc.n_patients < 200) & ~netsarc.expert_center).sum())
    assert fewer.axes[0].get_yticklabels()[-1].get_text().startswith(f"{n_rest:,} other")


def test_funnel_of_a_netsarc_size_registry(netsarc, tmp_path):
    fig = centers.plot_funnel(netsarc)
    raw, model = fig.axes[:2]
    assert raw.get_xscale() == raw.get_yscale() == "log"
    assert "shrunken hazard ratio" in model.get_title()
    # The limits drawn are funnel_limits', as lines, not stairs.
    limits = [line for line in raw.get_lines() if line.get_linestyle() in ("--", ":")]
    assert len(limits) == 4
    for line in limits:
        assert line.get_drawstyle() == "default"
    x, y = limits[0].get_xdata(), limits[0].get_ydata()
    np.testing.assert_allclose(y, np.where(y > 0, centers.funnel_limits(x, 0.95)[0], np.nan))
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "95% control limits (O ~ Poisson(E))" in legend
    assert "99.8% control limits (O ~ Poisson(E))" in legend
    assert "expert centre" in legend
    # Expert centres are diamonds, all 26 in each panel.
    for ax in (raw, model):
        points = [c for c in ax.collections if isinstance(c, PathCollection)]
        sizes = [len(c.get_offsets()) for c in points if c.get_sizes()[0] == 30]
        assert sizes == [26]
    fig.savefig(tmp_path / "funnel.png", dpi=80)
    # Centres expecting too few events to say anything are left out, and counted.
    fig = centers.plot_funnel(netsarc, min_expected=1.0)
    hidden = int((netsarc.expected < 1.0).sum())
    assert hidden > 100
    assert f"not shown: {hidden:,} centres expecting < 1 events" in fig.axes[0].texts[0].get_text()
    points = [c for c in fig.axes[0].collections if isinstance(c, PathCollection)]
    assert sum(len(c.get_offsets()) for c in points) == len(netsarc) - hidden


def test_a_fit_without_centres_has_no_profile(fit):
    tree = fit.copy()
    tree["posterior"] = fit["posterior"].to_dataset().drop_vars(["center_sd", "center_effect"])
    with pytest.raises(ValueError, match="no centre effects"):
        centers.center_profile(tree)
