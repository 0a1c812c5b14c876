"""The vectorised PSIS-LOO (checks/psis.py) against arviz-stats' own, observation by observation."""

import warnings

import arviz_stats as azs
import numpy as np
import pytest
import xarray as xr

from bayes_sarcoma.checks import psis


def pointwise(random_seed=0, chains=4, draws=250, n=60):
    """Log-likelihoods with tails from light to very heavy (Pareto k from < 0 to > 1)."""
    rng = np.random.default_rng(random_seed)
    scale = rng.gamma(1.0, 1.0, (1, 1, n))
    ll = rng.normal(-2.0, 1.0, (chains, draws, n)) * scale
    ll += 0.5 * rng.standard_t(2, (chains, draws, n)) * (np.arange(n) % 3 == 0)
    coords = {"chain": np.arange(chains), "draw": np.arange(draws), "patient": 100 + np.arange(n)}
    da = xr.DataArray(ll, dims=("chain", "draw", "patient"), coords=coords, name="time")
    # autocorrelated draws so that the relative ESS is not 1
    steps = rng.normal(size=(chains, draws, 2)).cumsum(axis=1) * 0.1
    post = xr.Dataset(
        {
            "a": (("chain", "draw"), rng.normal(size=(chains, draws))),
            "b": (("chain", "draw", "k"), steps),
        },
        coords={"chain": coords["chain"], "draw": coords["draw"]},
    )
    return da, post


def arviz_loo(da, post):
    tree = xr.DataTree.from_dict({"posterior": post, "log_likelihood": xr.Dataset({"time": da})})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return azs.loo(tree, pointwise=True, var_name="time")


@pytest.mark.parametrize(("random_seed", "draws"), [(0, 250), (1, 40), (2, 1000)])
def test_loo_equals_arviz_stats(random_seed, draws):
    da, post = pointwise(random_seed, draws=draws)
    expected = arviz_loo(da, post)
    n_samples = da.sizes["chain"] * da.sizes["draw"]
    r_eff = psis.relative_ess(post, n_samples)
    assert r_eff < 0.9  # the tail length's rule is exercised with r_eff != 1
    found = psis.loo_pointwise(da, r_eff=r_eff)
    k = expected.pareto_k.to_numpy()
    assert k.min() < 0.5  # good and bad tails both compared
    assert k.max() > 0.7
    for name in ("elpd", "se", "p"):
        assert getattr(found, name) == pytest.approx(getattr(expected, name), rel=0, abs=1e-10)
    for name in ("n_samples", "n_data_points", "warning", "good_k", "scale"):
        assert getattr(found, name) == getattr(expected, name)
    for name in ("elpd_i", "pareto_k", "log_weights"):
        xr.testing.assert_allclose(
            getattr(found, name), getattr(expected, name), rtol=0, atol=1e-10
        )


def test_log_weights_equal_arviz_stats_psislw_row_by_row():
    rng = np.random.default_rng(4)
    ll = rng.normal(0.0, 1.0, (7, 300)) * rng.gamma(2.0, 1.0, (7, 1))
    lw, k = psis.psis_log_weights(ll, r_eff=0.7)
    for i in range(ll.shape[0]):
        da = xr.DataArray(ll[i].reshape(3, 100), dims=("chain", "draw"))
        ref_lw, ref_k = da.azstats.psislw(r_eff=0.7, dim=["chain", "draw"])
        np.testing.assert_allclose(lw[i], ref_lw.to_numpy().ravel(), rtol=0, atol=1e-10)
        assert k[i] == pytest.approx(float(ref_k), abs=1e-10)


def test_blocks_do_not_change_the_result(monkeypatch):
    ll = np.random.default_rng(5).normal(size=(50, 200))
    whole = psis.psis_log_weights(ll)
    monkeypatch.setattr(psis, "_BLOCK", 7)
    for x, y in zip(whole, psis.psis_log_weights(ll), strict=True):
        np.testing.assert_array_equal(x, y)


def test_a_tail_of_equal_values_is_an_error_as_in_arviz_stats():
    with pytest.raises(ValueError, match="tail values are the same"):
        psis.psis_log_weights(np.zeros((2, 100)))
