"""The example scripts run end to end (with --quick: the suite's small registry and tiny
draws) and produce what they promise."""

from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# Tiny draws: divergences and high Pareto k are expected; the scripts' logic is tested here.
pytestmark = [
    pytest.mark.filterwarnings("ignore::bayes_sarcoma.model.hierarchical.SamplerWarning"),
    pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto:UserWarning"),
]


def example(name: str):
    """Load an example script as a module (its ``main`` is not run on import)."""
    import runpy

    return runpy.run_path(str(EXAMPLES / f"{name}.py"))


def test_every_example_is_tested():
    scripts = {p.stem for p in EXAMPLES.glob("*.py")}
    assert scripts == {"fit_and_inspect", "predict_new_patients", "compare_priors"}


def test_fit_and_inspect(tmp_path, capsys):
    model, dt = example("fit_and_inspect")["main"](["--quick", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert dt.posterior.sizes["draw"] == 100
    assert "elpd_loo" in out
    assert "Sampling diagnostics" in out
    assert (tmp_path / "lrfs_hazard_ratios.png").stat().st_size > 10_000
    assert (tmp_path / "lrfs.zarr").is_dir()
    assert model.endpoint == "LRFS"


def test_predict_new_patients(tmp_path, capsys):
    table, curves = example("predict_new_patients")["main"](["--quick", "--out", str(tmp_path)])
    assert len(table) == 8  # 2 profiles x (2 known + 2 new centres)
    assert (tmp_path / "new_patients_survival.png").stat().st_size > 10_000
    for s in curves.values():
        median_curve = s.median(("chain", "draw")).to_numpy()
        # S(0) = 1 up to the rounding of the new-centre quadrature weights' sum
        assert median_curve[0] == pytest.approx(1.0, abs=1e-12)
        assert np.all(np.diff(median_curve) <= 1e-12)

    def median_months(pid):
        return float(table.loc[pid, "median months"].split()[0])

    for setting in ("known expert centre", "new hospital"):
        assert median_months(f"high risk @ {setting}") < median_months(f"low risk @ {setting}")


def test_compare_priors(tmp_path, capsys):
    argv = ["--quick", "--out", str(tmp_path), "--prior-sets", "weakly_informative,sceptical"]
    result = example("compare_priors")["main"](argv)
    hr = result.table.query("quantity == 'log_hr_expert'").set_index("prior_set")["mean"]
    # The sceptical prior (Normal(0, 0.2) on the log HR) pulls the effect towards 0.
    assert hr["weakly_informative"] < hr["sceptical"] < 0
    assert (tmp_path / "prior_sensitivity.png").stat().st_size > 10_000
    assert (tmp_path / "prior_predictive.png").stat().st_size > 10_000
    assert "expert HR posterior mean" in capsys.readouterr().out
