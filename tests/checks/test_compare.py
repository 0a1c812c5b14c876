"""Model comparison: the centre-effect integral, integrated LOO, leave-centre-out, refits."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from arviz_stats.utils import ELPDDataLOO
from conftest import FAST
from registry_factory import clustered_table
from scipy import integrate, optimize, special, stats

import bayes_sarcoma as bs
from bayes_sarcoma.checks import compare
from bayes_sarcoma.checks.ppc import fitted_inputs
from bayes_sarcoma.math import aghq, weibull

MODEL = dict(time="followup_years", event="died", cluster="site", terms=["dose_mg", "arm"])

# The shared small fits of conftest are too short to pass diagnose(); fit() says so
# with a SamplerWarning, which these checks of other things do not need to see.
pytestmark = pytest.mark.filterwarnings("ignore::bayes_sarcoma.model.hierarchical.SamplerWarning")


# -- the 1-D integral ----------------------------------------------------------------------
def integral_by_quad(d, a, sigma):
    """log E[exp(D u - A e^u)], u ~ Normal(0, sigma), by adaptive quadrature."""
    g = lambda u: d * u - a * np.exp(u) + stats.norm.logpdf(u, 0, sigma)  # noqa: E731
    mode = optimize.minimize_scalar(lambda u: -g(u), bounds=(-30, 30), method="bounded").x
    width = sigma / np.sqrt(1 + a * np.exp(mode) * sigma**2)
    value = integrate.quad(
        lambda u: np.exp(g(u) - g(mode)),
        mode - 40 * width,
        mode + 40 * width,
        points=[mode],
        epsabs=0,
        epsrel=1e-13,
        limit=500,
    )[0]
    return g(mode) + np.log(value)


def test_frailty_integral_matches_quadrature():
    grid = np.array(
        [
            (d, a, sigma)
            for d in (0, 1, 3, 50, 400, 5000)
            for a in (1e-3, 0.3, 3, 30, 6000)
            for sigma in (0.02, 0.15, 0.5, 1.0)
        ]
    )
    ours = compare.log_frailty_integral(grid[:, 0], grid[:, 1], grid[:, 2])
    expected = [integral_by_quad(*row) for row in grid]
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-8)
    # Closed forms: no hazard (a Gaussian moment generating function), no spread.
    np.testing.assert_allclose(compare.log_frailty_integral(3.0, 0.0, 0.4), 9 * 0.16 / 2)
    np.testing.assert_allclose(compare.log_frailty_integral(3.0, 2.5, 0.0), -2.5)
    x = np.linspace(-30, 700, 200)
    with np.errstate(over="ignore"):
        expected = special.lambertw(np.exp(x)).real
    finite = np.isfinite(expected)
    ours = np.array([aghq.lambertw_exp(v) for v in x])
    np.testing.assert_allclose(ours[finite], expected[finite], rtol=1e-13)
    assert np.isfinite([aghq.lambertw_exp(v) for v in (800.0, 5000.0)]).all()


def test_integrated_likelihood_matches_brute_force_integration(os_model_and_fit):
    """log p(y_c | theta) and log p(y_i | y_{c without i}, theta) by quadrature over u."""
    _, dt = os_model_and_fit
    per_center = compare.integrated_log_likelihood(dt, unit="center")
    per_patient = compare.integrated_log_likelihood(dt)
    assert per_center.dims == ("chain", "draw", "center")
    assert per_patient.dims == ("chain", "draw", "patient")
    fi = fitted_inputs(dt)
    obs = dt.observed_data
    time, event = obs["time"].to_numpy(), obs["event"].to_numpy()
    centers = dt.constant_data["center"].to_numpy()
    sizes = pd.Series(centers).value_counts()
    chosen = [sizes.index[0], sizes[sizes == 3].index[0], sizes[sizes == 1].index[0]]
    for sample in (0, 17, 450):
        chain, draw = divmod(sample, dt.posterior.sizes["draw"])
        eta = fi.eta(slice(sample, sample + 1), with_centers=False)[0]
        shape, sigma = fi.shape[sample], fi.center_sd[sample]

        def log_p(mask, eta=eta, shape=shape, sigma=sigma):
            ll = lambda u: weibull.log_likelihood(  # noqa: E731
                time[mask], event[mask], eta[mask] + u, shape
            ).sum()
            peak = optimize.minimize_scalar(
                lambda u: -(ll(u) + stats.norm.logpdf(u, 0, sigma)),
                bounds=(-5, 5),
                method="bounded",
            ).x
            top = ll(peak) + stats.norm.logpdf(peak, 0, sigma)
            f = lambda u: np.exp(ll(u) + stats.norm.logpdf(u, 0, sigma) - top)  # noqa: E731
            return top + np.log(integrate.quad(f, peak - 2, peak + 2, epsrel=1e-12, limit=200)[0])

        for center in chosen:
            members = centers == center
            ours = float(per_center.sel(chain=chain, draw=draw, center=center))
            assert ours == pytest.approx(log_p(members), abs=1e-6)
            first = np.flatnonzero(members)[0]
            rest = members.copy()
            rest[first] = False
            expected = log_p(members) - (log_p(rest) if rest.any() else 0.0)
            ours_i = float(per_patient.isel(chain=chain, draw=draw, patient=first))
            assert ours_i == pytest.approx(expected, abs=1e-6)


# -- LOO and the comparison of candidate models ---------------------------------------------
def shape_two_table():
    """A clustered table simulated from the model with Weibull shape 2 (far from 1)."""
    return clustered_table(shape=2.0, sd=0.3, random_seed=11, intercept=-8.0, censor=(10.0, 60.0))


@pytest.fixture(scope="module")
def shape_two_fits():
    df = shape_two_table()
    fits = compare.fit_candidates(
        df,
        model=bs.HierarchicalWeibull(**MODEL),
        candidates=["weibull", "exponential", "no centre effects"],
        random_seed=1,
        **FAST,
    )
    return df, fits


def test_loo_prefers_weibull_over_exponential_when_the_shape_is_two(shape_two_fits):
    _, fits = shape_two_fits
    comparison = compare.compare_models({name: dt for name, (_, dt) in fits.items()})
    table = comparison.table
    assert comparison.best == "weibull"
    assert table.loc["exponential", "elpd_diff"] < -4 * table.loc["exponential", "dse"]
    assert set(comparison.pareto.index) == {"weibull", "exponential", "no centre effects"}
    # PSIS is reliable for the true model; the misspecified exponential may have a patient
    # or two it cannot predict without them (a few bad Pareto k at most).
    assert comparison.pareto.loc["weibull", "n_bad"] == 0
    assert (comparison.pareto["n_bad"] <= 2).all()
    message = next(m for m in comparison.messages if m.startswith("exponential"))
    assert "worse than weibull, with probability 1.0000" in message
    # The comparison table is arviz-stats' own.
    assert {"elpd", "se", "elpd_diff", "dse", "p", "weight"} <= set(table.columns)


def test_leave_center_out_with_an_exact_refit(shape_two_fits):
    df, fits = shape_two_fits
    model, dt = fits["weibull"]
    psis = compare.leave_center_out(dt)
    assert psis.elpd_i.dims == ("center",)
    assert psis.n_data_points == 12
    # Without centre effects the same centres are the units.
    other = compare.leave_center_out(fits["no centre effects"][1], centers=df["site"])
    assert list(other.elpd_i["center"].values) == list(psis.elpd_i["center"].values)
    center = "site-03"
    exact = compare.leave_center_out(
        dt, model=model, data=df, refit=[center], fit_kwargs=dict(random_seed=2, **FAST)
    )
    assert float(exact.pareto_k.sel(center=center)) == 0.0
    approx, refit = (float(r.elpd_i.sel(center=center)) for r in (psis, exact))
    # PSIS (k well below 0.7 here) and the exact refit agree to Monte Carlo error.
    assert float(psis.pareto_k.sel(center=center)) < 0.7
    assert refit == pytest.approx(approx, abs=0.5)
    others = psis.elpd_i.drop_sel(center=center)
    np.testing.assert_allclose(exact.elpd_i.drop_sel(center=center), others)
    assert exact.elpd == pytest.approx(float(others.sum()) + refit)
    with pytest.raises(ValueError, match="needs the fitted model"):
        compare.leave_center_out(dt, refit=1)


def singletons_table(n_big=200, n_single=150, sd=1.0, random_seed=5):
    """Ten shared centres and 150 centres of one patient each, large centre sd."""
    rng = np.random.default_rng(random_seed)
    cl = np.concatenate([rng.integers(0, 10, n_big), 10 + np.arange(n_single)])
    u = rng.normal(0, sd, 10 + n_single)
    dose, arm = rng.normal(50, 10, cl.size), rng.integers(0, 2, cl.size)
    t = weibull.sample_times(rng, -4.0 + 0.03 * dose - 0.5 * arm + u[cl], 1.3)
    c = rng.uniform(5, 60, cl.size)
    return pd.DataFrame(
        {
            "site": [f"s{k:03d}" for k in cl],
            "dose_mg": dose,
            "arm": arm,
            "followup_years": np.minimum(t, c),
            "died": (t <= c).astype(int),
        }
    )


def test_integrated_loo_removes_the_pareto_k_problems_of_singleton_centres():
    df = singletons_table()
    dt = bs.HierarchicalWeibull(**MODEL).fit(df, random_seed=1, **FAST)
    integrated, conditional = compare.loo(dt), compare.loo(dt, integrated=False)
    table = compare.pareto_k_table({"integrated": integrated, "conditional": conditional})
    single = (df.groupby("site")["site"].transform("size") == 1).to_numpy()
    k = conditional.pareto_k.to_numpy()
    assert (k[single] > conditional.good_k).sum() >= 10  # the problem is real ...
    assert table.loc["conditional", "n_bad"] >= 10
    assert table.loc["integrated", "n_bad"] == 0  # ... and the integrated LOO has none
    assert table.loc["integrated", "max_k"] < 0.5


def test_compare_models_rejects_fits_of_different_patients(shape_two_fits, os_model_and_fit):
    _, fits = shape_two_fits
    with pytest.raises(ValueError, match="same patients"):
        compare.compare_models({"a": fits["weibull"][1], "b": os_model_and_fit[1]})
    with pytest.raises(ValueError, match="at least two"):
        compare.compare_models({"a": fits["weibull"][1]})


def test_stacking_weights_survive_very_negative_pointwise_elpds():
    """Whole large centres left out have pointwise ELPDs far below -745 (exp underflows)."""
    rng = np.random.default_rng(0)
    base = rng.normal(-900.0, 300.0, 200)

    def result(values):
        return ELPDDataLOO(
            elpd=float(values.sum()),
            se=float(np.sqrt(values.size * values.var())),
            p=3.0,
            n_samples=1000,
            n_data_points=values.size,
            scale="log",
            warning=False,
            good_k=0.7,
            elpd_i=xr.DataArray(values, dims="center"),
            pareto_k=xr.DataArray(np.zeros(values.size), dims="center"),
        )

    better, worse = result(base + rng.normal(0, 0.1, 200)), result(base - 0.5)
    table = compare._arviz_compare({"worse": worse, "better": better})  # no RuntimeWarning
    assert list(table.index) == ["better", "worse"]
    assert table["weight"].sum() == pytest.approx(1.0)
    assert table.loc["better", "weight"] > 0.9
    diff = better.elpd_i - worse.elpd_i
    assert table.loc["worse", "elpd_diff"] == pytest.approx(-float(diff.sum()))
    assert table.loc["worse", "dse"] == pytest.approx(float(np.sqrt(200 * diff.var())))
    assert table.loc["better", "elpd"] == pytest.approx(better.elpd)


def test_loo_on_fewer_draws_uses_exactly_those_draws(os_model_and_fit):
    """num_draws thins every chain evenly; the pointwise values are the full ones there."""
    _, dt = os_model_and_fit
    full = compare.integrated_log_likelihood(dt)
    few = compare.integrated_log_likelihood(dt, num_draws=150)
    assert few.sizes["chain"] * few.sizes["draw"] <= 150
    xr.testing.assert_allclose(few, full.sel(draw=few["draw"]), rtol=1e-12)
    result = compare.loo(dt, num_draws=150)
    assert result.n_samples == few.sizes["chain"] * few.sizes["draw"]
    assert abs(result.elpd - compare.loo(dt).elpd) < 2 * result.se / np.sqrt(10)


def test_log_integrals_on_several_threads_equal_one_thread():
    rng = np.random.default_rng(3)
    n = 2 * aghq.PARALLEL_MIN + 7
    a, d, s = rng.exponential(1.0, n), rng.integers(0, 6, n).astype(float), np.full(n, 0.3)
    threaded = aghq.log_integrals(a, d, 0.1, s)
    single = aghq.log_integrals_kernel(a, d, np.full(n, 0.1), s, *aghq.rule_set("auto"))
    for x, y in zip(threaded, single, strict=True):
        np.testing.assert_array_equal(x, y)


def test_loo_and_lco_at_once_equal_each_alone(shape_two_fits, monkeypatch):
    _, fits = shape_two_fits
    dts = {name: dt for name, (_, dt) in fits.items()}
    monkeypatch.setattr(compare, "CHUNK_ELEMENTS", 5_000)  # several chunks of draws
    both = compare.compare_loo_and_lco(dts, num_draws=300)
    for method in ("loo", "lco"):
        alone = compare.compare_models(dts, method=method, num_draws=300)
        pd.testing.assert_frame_equal(both[method].table, alone.table)
        pd.testing.assert_frame_equal(both[method].pareto, alone.pareto)
        assert both[method].messages == alone.messages
    # the per-patient and per-centre values are those computed one unit at a time
    dt = dts["weibull"]
    pair = compare.integrated_log_likelihoods(dt, num_draws=300)
    for unit in ("patient", "center"):
        xr.testing.assert_identical(
            pair[unit], compare.integrated_log_likelihood(dt, unit=unit, num_draws=300)
        )
    with pytest.raises(ValueError, match="choose 'patient' and/or 'center'"):
        compare.integrated_log_likelihoods(dt, units=("centre",))


def test_value_only_integrals_equal_the_fitting_kernel_bit_for_bit():
    rng = np.random.default_rng(4)
    n = 2 * aghq.PARALLEL_MIN + 11  # on several threads too
    a = rng.lognormal(0.0, 2.0, n)
    d = rng.integers(0, 40, n).astype(float)
    mu, sigma = rng.normal(0.0, 1.0, n), rng.uniform(0.01, 2.5, n)  # every rule size
    values = aghq.log_integral_values(a, d, mu, sigma)
    np.testing.assert_array_equal(values, aghq.log_integrals(a, d, mu, sigma)[0])
    assert len(np.unique(aghq.log_integrals(a[:2000], d[:2000], mu[:2000], sigma[:2000])[4])) > 5
    small = aghq.log_integral_values(a[:3].reshape(3, 1), 1.0, 0.0, 0.5)
    assert small.shape == (3, 1)
