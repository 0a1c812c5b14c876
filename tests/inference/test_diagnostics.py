"""diagnose(): synthetic chains with known defects, real good and bad runs, fit's warning."""

import warnings

import arviz_stats as azs
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayes_sarcoma as bs
from bayes_sarcoma.inference.diagnose import (
    CHECKED_CENTERS,
    Diagnosis,
    diagnose,
    family_rhat_max,
    fit_diagnosis,
)
from bayes_sarcoma.math import weibull


# -- synthetic posteriors: the checks in isolation ----------------------------------------
def synthetic(
    *, chains=4, draws=500, n_centers=50, shift=0.0, divergent=0, treedepth=0, ar=0.0, random_seed=0
):
    """A DataTree shaped like a fit, with independent (or AR(1)) normal draws."""
    rng = np.random.default_rng(random_seed)

    def chain_draws(*shape):
        x = rng.normal(size=(chains, draws, *shape))
        if ar:
            for t in range(1, draws):
                x[:, t] = ar * x[:, t - 1] + np.sqrt(1 - ar**2) * x[:, t]
        return x

    intercept = chain_draws()
    intercept[0] += shift  # one chain stuck elsewhere
    post = xr.Dataset(
        {
            "intercept": (("chain", "draw"), intercept),
            "shape": (("chain", "draw"), 1.2 + 0.05 * chain_draws()),
            "beta": (("chain", "draw", "term"), chain_draws(2)),
            "center_sd": (("chain", "draw"), np.abs(0.2 + 0.02 * chain_draws())),
            "center_effect": (("chain", "draw", "center"), 0.1 * chain_draws(n_centers)),
        },
        coords={"term": ["expert_center", "age"], "center": [f"C{k}" for k in range(n_centers)]},
    )
    diverging = np.zeros((chains, draws), bool)
    diverging.flat[rng.choice(chains * draws, divergent, replace=False)] = True
    hit = np.zeros((chains, draws), bool)
    hit.flat[rng.choice(chains * draws, treedepth, replace=False)] = True
    sample_stats = xr.Dataset(
        {
            "diverging": (("chain", "draw"), diverging),
            "reached_max_treedepth": (("chain", "draw"), hit),
            "tree_depth": (("chain", "draw"), np.where(hit, 10, 4)),
            "energy": (("chain", "draw"), rng.normal(size=(chains, draws))),
        }
    )
    return xr.DataTree.from_dict({"posterior": post, "sample_stats": sample_stats})


def test_independent_draws_pass_and_the_table_matches_arviz():
    dt = synthetic()
    result = diagnose(dt)
    assert result.ok, result.messages
    assert result.problems == []
    assert "No problems" in result.messages[-1]
    table = result.table.set_index("quantity")
    assert list(table.index) == [
        "intercept",
        "shape",
        "beta[expert_center]",
        "beta[age]",
        "center_sd",
        "center_effect (worst of 50)",
    ]
    ref = azs.summary(dt, var_names=["intercept"], kind="all", round_to="none").loc["intercept"]
    for column in ("mean", "sd", "mcse_mean", "mcse_sd", "ess_bulk", "r_hat"):
        assert table.loc["intercept", column] == pytest.approx(ref[column], rel=1e-9)
    # tail ESS at the 5% and 95% quantiles (Vehtari et al. 2021, as Stan's posterior
    # package), not at arviz-stats' default of its ci_prob setting (0.89)
    x = dt.posterior.dataset["intercept"].to_numpy()
    tail = azs.ess(x, method="tail", prob=0.05)
    assert table.loc["intercept", "ess_tail"] == pytest.approx(tail, rel=1e-9)
    assert tail != pytest.approx(azs.ess(x, method="tail", prob=0.11), rel=1e-6)
    worst = dt.posterior.dataset[["center_effect"]].azstats.rhat()["center_effect"].max()
    assert table.loc["center_effect (worst of 50)", "r_hat"] == pytest.approx(float(worst))
    assert bool(result) is True
    assert str(result).startswith("Sampling diagnostics: OK")


def test_a_random_subset_of_centre_effects_can_be_summarised():
    dt = synthetic()
    rhat = dt.posterior.dataset[["center_effect"]].azstats.rhat()["center_effect"].to_numpy()
    table = diagnose(dt, max_centers=10).table.set_index("quantity")
    row = table.loc["center_effect (worst of 10 of 50, at random)"]
    assert np.isclose(rhat, row["r_hat"], rtol=1e-9).any()
    assert row["r_hat"] <= rhat.max()
    assert "center_effect (worst of 50)" in diagnose(dt, max_centers=50).table["quantity"].tolist()


def test_a_stuck_chain_is_flagged_with_advice():
    result = diagnose(synthetic(shift=0.5))
    assert not result.ok
    assert "r_hat" in result.problems
    message = next(m for m in result.messages if m.startswith("R-hat"))
    assert "intercept" in message
    assert "Run longer" in message
    assert not result.table.set_index("quantity").loc["intercept", "ok"]


def test_too_few_effective_draws_are_flagged_with_the_draws_needed():
    result = diagnose(synthetic(draws=300, ar=0.8))  # ESS about 1200 / 9 = 130
    assert "ess" in result.problems
    message = next(m for m in result.messages if m.startswith("Effective sample size"))
    assert "below 400" in message
    needed = int(message.split("draws=")[1].split(")")[0])
    lowest = result.table[["ess_bulk", "ess_tail"]].min(axis=1).min()
    assert needed >= 300 * 400 / lowest  # ESS grows linearly with the draws
    # Chains that barely move are not cured by more draws: the message says so.
    stuck = diagnose(synthetic(draws=300, ar=0.999))
    message = next(m for m in stuck.messages if m.startswith("Effective sample size"))
    assert "barely move" in message
    assert "draws=" not in message


def test_divergences_treedepth_and_energy_messages():
    dt = synthetic(divergent=3, treedepth=5)
    result = diagnose(dt)
    assert {"divergences", "treedepth"} <= set(result.problems)
    div = next(m for m in result.messages if "divergent" in m)
    assert div.startswith("3 divergent transitions")
    assert "target_accept=0.95" in div
    depth = next(m for m in result.messages if "tree depth" in m)
    assert depth.startswith("5 draws")
    assert "max_treedepth=12" in depth
    assert result.chains["divergences"].sum() == 3
    assert diagnose(dt, max_divergences=3).problems == ["treedepth"]
    # A random-walk energy has E-BFMI near 0.
    stats_rw = dt["sample_stats"].dataset.assign(
        energy=(("chain", "draw"), np.random.default_rng(1).normal(size=(4, 500)).cumsum(axis=1))
    )
    walk = xr.DataTree.from_dict({"posterior": dt.posterior.dataset, "sample_stats": stats_rw})
    low = diagnose(walk)
    assert "e_bfmi" in low.problems
    np.testing.assert_allclose(low.chains["e_bfmi"], azs.bfmi(walk)["energy"].to_numpy())


def test_family_limit_controls_false_alarms_over_many_converged_quantities():
    assert family_rhat_max(1.01, 1, 4) == 1.01
    limits = [family_rhat_max(1.01, k, 4) for k in (1, 10, 100, 1000)]
    assert limits == sorted(limits)
    assert family_rhat_max(1.01, 100, 2) > family_rhat_max(1.01, 100, 4)  # fewer chains
    # 1000 converged AR(1) coordinates whose ESS (~800) makes 1.01 about their 95% point:
    # about 3-5% of them exceed 1.01 by chance, their maximum does not exceed the limit.
    rng = np.random.default_rng(3)
    phi = 2 / 3
    x = rng.normal(size=(4, 1000, 1000))
    for t in range(1, 1000):
        x[:, t] = phi * x[:, t - 1] + np.sqrt(1 - phi**2) * x[:, t]
    rhat = azs.rhat(x, chain_axis=0, draw_axis=1)
    assert 0.01 < (rhat > 1.01).mean() < 0.1
    assert rhat.max() < family_rhat_max(1.01, 1000, 4)
    # One coordinate whose chains disagree is still caught.
    x[0, :, 0] += 0.5
    assert azs.rhat(x[..., 0], chain_axis=0, draw_axis=1) > family_rhat_max(1.01, 1000, 4)


def test_diagnose_needs_a_posterior():
    with pytest.raises(ValueError, match="posterior"):
        diagnose(xr.DataTree.from_dict({"sample_stats": xr.Dataset()}))
    with pytest.raises(ValueError, match="not in the posterior"):
        diagnose(synthetic(), var_names=["nope"])


# -- real runs --------------------------------------------------------------------------
def clustered(n=400, n_clusters=12, random_seed=0):
    rng = np.random.default_rng(random_seed)
    cl = rng.integers(0, n_clusters, n)
    dose, arm = rng.normal(50, 10, n), rng.integers(0, 2, n)
    t = weibull.sample_times(rng, -4.0 + 0.03 * dose - 0.5 * arm + rng.normal(0, 0.4, 12)[cl], 1.3)
    c = rng.uniform(5, 60, n)
    return pd.DataFrame(
        {
            "site": [f"site-{k:02d}" for k in cl],
            "dose_mg": dose,
            "arm": arm,
            "followup_years": np.minimum(t, c),
            "died": (t <= c).astype(int),
        }
    )


MODEL = dict(time="followup_years", event="died", cluster="site", terms=["dose_mg", "arm"])


def test_a_good_run_passes_and_fit_does_not_warn():
    # About 80 patients per centre: the centre effects are well identified (seeds 1-6 with
    # 4 x 1000 draws all pass; the smallest ESS was 596).
    with warnings.catch_warnings():
        warnings.simplefilter("error", bs.SamplerWarning)
        dt = bs.HierarchicalWeibull(**MODEL).fit(
            clustered(n=1000), draws=1500, tune=1000, chains=4, random_seed=2, progressbar=False
        )
    result = diagnose(dt)
    assert result.ok, result.messages
    assert (result.table["ess_bulk"] >= 400).all()
    assert result.table["r_hat"].max() < 1.02


def test_too_few_draws_is_flagged_and_fit_warns():
    with pytest.warns(bs.SamplerWarning, match="Effective sample size below 400"):
        dt = bs.HierarchicalWeibull(**MODEL).fit(
            clustered(), draws=40, tune=200, chains=2, random_seed=3, progressbar=False
        )
    result = diagnose(dt)
    assert not result.ok
    assert "ess" in result.problems


def test_a_run_forced_to_diverge_is_flagged():
    # A target acceptance of 5% makes NUTS adapt a step size far too large for the funnel.
    with pytest.warns(bs.SamplerWarning, match="divergent transitions"):
        dt = bs.HierarchicalWeibull(**MODEL).fit(
            clustered(),
            draws=300,
            tune=300,
            chains=2,
            random_seed=3,
            progressbar=False,
            target_accept=0.05,
        )
    result = diagnose(dt)
    assert "divergences" in result.problems
    assert result.chains["divergences"].sum() > 0
    assert any(
        m.startswith(f"{int(result.chains['divergences'].sum())} divergent")
        for m in result.messages
    )


def test_the_centre_row_is_the_worst_of_arviz_stats_per_centre():
    """The aggregated centre-effect row: max R-hat and MCSE, min ESS, over (sampled) centres."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 400, 12))
    for t in range(1, 400):
        x[:, t, 3:] = 0.95 * x[:, t - 1, 3:] + np.sqrt(1 - 0.95**2) * x[:, t, 3:]
    x[0, :, 1] += 1.0  # a chain stuck elsewhere
    x[:, :, 2] = np.round(x[:, :, 2])  # ties
    post = xr.Dataset({"center_effect": (("chain", "draw", "center"), x)})
    dt = xr.DataTree.from_dict({"posterior": post})
    per = {
        "r_hat": [azs.rhat(x[..., k]) for k in range(12)],
        "ess_bulk": [azs.ess(x[..., k], method="bulk") for k in range(12)],
        "ess_tail": [azs.ess(x[..., k], method="tail", prob=0.05) for k in range(12)],
        "mcse_mean": [azs.mcse(x[..., k], method="mean") for k in range(12)],
    }
    row = diagnose(dt).table.set_index("quantity").loc["center_effect (worst of 12)"]
    for name, reduce in [("r_hat", max), ("mcse_mean", max), ("ess_bulk", min), ("ess_tail", min)]:
        np.testing.assert_allclose(row[name], reduce(per[name]), rtol=1e-12, err_msg=name)
    assert row["r_hat"] == max(per["r_hat"]) > 1.1  # the stuck chain is the one found
    few = diagnose(dt, max_centers=5).table["quantity"]
    assert "center_effect (worst of 5 of 12, at random)" in set(few)


def test_the_fit_keeps_its_diagnosis_and_everyone_reads_the_same(os_model_and_fit, tmp_path):
    """Report, headline and summary read the fit's own diagnosis: the same numbers."""
    _, dt = os_model_and_fit
    stored = fit_diagnosis(dt)
    again = diagnose(dt, max_centers=CHECKED_CENTERS)
    pd.testing.assert_frame_equal(stored.table, again.table, check_dtype=False)
    pd.testing.assert_frame_equal(stored.chains, again.chains, check_dtype=False)
    assert (stored.ok, stored.messages, stored.problems) == (
        again.ok,
        again.messages,
        again.problems,
    )
    loaded = bs.load(bs.save(dt, tmp_path / "fit"))
    assert Diagnosis.from_json(loaded.attrs["diagnosis"]).messages == stored.messages
    bare = dt.copy()
    bare.attrs = {k: v for k, v in dt.attrs.items() if k != "diagnosis"}
    assert fit_diagnosis(bare).messages == stored.messages  # computed the same way
