"""The bayes-sarcoma command line: help, exit codes, one-line errors, and each command
against the Python API it wraps (same random_seed, same numbers)."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import FAST

import bayes_sarcoma as bs
from bayes_sarcoma.cli import main as cli
from bayes_sarcoma.model import io
from bayes_sarcoma.predict.survival import predict_survival, summarize

COMMANDS = ["demo", "simulate", "validate", "fit", "summary", "predict", "sensitivity", "report"]
SAMPLER = ["--draws", str(FAST["draws"]), "--tune", str(FAST["tune"]), "--chains", "2"]


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def registry_csv(tmp_path_factory):
    """registry_small (1500 patients, random_seed 7) written by `bayes-sarcoma simulate`."""
    path = tmp_path_factory.mktemp("cli") / "registry.csv"
    assert (
        cli.main(["simulate", "--patients", "1500", "--random-seed", "7", "-o", str(path), "-q"])
        == 0
    )
    return path


@pytest.fixture(scope="module")
def os_fit_file(registry_csv):
    path = registry_csv.with_name("os.zarr")
    argv = [
        "fit",
        registry_csv,
        "--endpoint",
        "os",
        "--random-seed",
        "1",
        "-o",
        path,
        "-q",
        *SAMPLER,
    ]
    assert cli.main([str(a) for a in argv]) == 0
    return path


# -- help, usage and errors ------------------------------------------------------------------
def test_help_lists_every_command_with_examples(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in COMMANDS:
        assert f"    {command}" in out
    assert "examples:" in out
    assert "exit codes:" in out
    for command in COMMANDS:
        code, out, _ = run(capsys, command, "--help")
        assert code == 0
        assert "example" in out, command
        assert "--traceback" in out, command


def test_usage_errors_exit_2(capsys):
    assert run(capsys, "fly")[0] == 2
    assert run(capsys, "fit")[0] == 2  # missing the table and --out
    code, _, err = run(capsys, "validate", "a.csv", "--bogus")
    assert code == 2
    assert "unrecognized arguments: --bogus" in err
    assert run(capsys, "--version")[0] == 0


def test_simulate_writes_the_registry_and_its_truth(registry_csv, registry_small):
    df = cli.read_table(registry_csv)
    assert pd.api.types.is_datetime64_any_dtype(df["surgery_date"])
    pd.testing.assert_frame_equal(df, registry_small, check_dtype=False, check_exact=True)
    truth = json.loads(registry_csv.with_suffix(".truth.json").read_text())
    want = registry_small.attrs["truth"]["OS"]["beta"]["expert_center"]
    assert truth["truth"]["OS"]["beta"]["expert_center"] == want


def test_validate_ok_and_a_broken_registry_as_one_line(registry_csv, tmp_path, capsys):
    code, out, _ = run(capsys, "validate", registry_csv, "--calibration")
    assert code == 0
    assert out.startswith(f"ok: {registry_csv}: 1500 patients, 453 centres (26 expert")
    assert "LRFS median (KM)" in out
    bad = pd.read_csv(registry_csv)
    bad.loc[3, "age"] = 9
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    code, out, err = run(capsys, "validate", path)
    assert code == 1
    assert err.count("\n") == 1  # one line, no traceback
    assert err.startswith("bayes-sarcoma validate: error: column 'age'")
    assert "P000004" in err
    code, _, err = run(capsys, "validate", path, "--traceback")
    assert code == 1
    assert "Traceback (most recent call last)" in err
    assert "RegistryError" in err


def test_bad_files_are_user_errors(tmp_path, capsys, os_fit_file):
    code, _, err = run(capsys, "validate", tmp_path / "missing.csv")
    assert (code, err) == (
        1,
        f"bayes-sarcoma validate: error: {tmp_path / 'missing.csv'}: no such file\n",
    )
    notes = tmp_path / "notes.xlsx"
    notes.write_text("x")
    code, _, err = run(capsys, "validate", notes)
    assert code == 1
    assert "read tables from .csv" in err
    code, _, err = run(capsys, "summary", notes)
    assert code == 1
    assert "neither a Zarr folder nor a NetCDF-4 file" in err
    code, _, err = run(
        capsys, "fit", notes.with_suffix(".csv"), "--endpoint", "OS", "-o", os_fit_file
    )
    assert code == 1
    assert "no such file" in err


def test_internal_errors_exit_3(monkeypatch, capsys, registry_csv):
    def broken(path):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "read_table", broken)
    code, _, err = run(capsys, "validate", registry_csv)
    assert code == 3
    assert "internal error: RuntimeError: boom (rerun with --traceback" in err


# -- fit, summary, predict -------------------------------------------------------------------
def test_cli_fit_equals_the_api_fit(os_fit_file, os_model_and_fit):
    # The same registry, sampler settings and random_seed as the session's OS fit.
    model, dt = os_model_and_fit
    loaded = io.load(os_fit_file)
    loaded_model = bs.HierarchicalWeibull.from_datatree(loaded)
    assert loaded_model.to_dict() == model.to_dict()
    np.testing.assert_array_equal(loaded.posterior["beta"], dt.posterior["beta"])
    assert io.read_metadata(os_fit_file)["data_sha256"] == io.data_fingerprint(dt)


def test_fit_refuses_to_overwrite(os_fit_file, registry_csv, capsys):
    code, _, err = run(capsys, "fit", registry_csv, "--endpoint", "OS", "-o", os_fit_file)
    assert code == 1
    assert "pass --overwrite" in err


def test_summary_prints_hazard_ratios_and_diagnostics(os_fit_file, registry_csv, capsys):
    code, out, _ = run(capsys, "summary", os_fit_file, "--data", registry_csv)
    assert code == 0
    assert "the data match the fit" in out
    assert "OS: 1500 patients" in out
    dt = io.load(os_fit_file)
    hr = bs.hazard_ratios(dt, ci_prob=cli.CI_PROB)
    hr = hr.loc["expert_center"]
    line = next(s for s in out.splitlines() if s.startswith("expert_center"))
    assert line.split()[1:5] == [f"{hr[c]:.3f}" for c in ("median", "lower", "upper", "prob_lt_1")]
    assert "Sampling diagnostics" in out


def test_summary_refuses_another_table(os_fit_file, registry_csv, tmp_path, capsys):
    other = tmp_path / "other.csv"
    pd.read_csv(registry_csv).head(100).to_csv(other, index=False)
    code, _, err = run(capsys, "summary", os_fit_file, "--data", other)
    assert code == 1
    assert "not the one the model was fitted on" in err


def test_predict_matches_the_api(os_fit_file, registry_small, tmp_path, capsys):
    patients = registry_small.iloc[[0, 7, 99]]
    src = tmp_path / "patients.csv"
    patients.to_csv(src, index=False)
    out = tmp_path / "pred.csv"
    code, _, _ = run(
        capsys, "predict", os_fit_file, src, "--times", "12,60", "--center", "known", "-o", out
    )
    assert code == 0
    table = pd.read_csv(out)
    assert len(table) == 3 * 2 + 3  # survival at two times, then the median
    dt = io.load(os_fit_file)
    want = summarize(predict_survival(dt, patients, [12, 60], center="known"), ci_prob=cli.CI_PROB)
    got = table[table.quantity == "survival"].reset_index(drop=True)
    np.testing.assert_allclose(got[["mean", "lower", "upper"]], want[["mean", "lower", "upper"]])
    assert got.patient.tolist() == want.patient.tolist()
    med = table[table.quantity == "median_time"]
    assert (med["lower"] < med["median"]).all()
    assert (med["median"] < med["upper"]).all()


def test_predict_at_an_unknown_centre_is_a_user_error(
    os_fit_file, registry_small, tmp_path, capsys
):
    src = tmp_path / "elsewhere.csv"
    registry_small.head(2).assign(center_id="ZZ99").to_csv(src, index=False)
    code, _, err = run(capsys, "predict", os_fit_file, src, "--center", "known")
    assert code == 1
    assert "not in the fit" in err
    code, out, _ = run(capsys, "predict", os_fit_file, src, "--center", "new")
    assert code == 0
    assert "survival" in out


# -- model options ---------------------------------------------------------------------------
def _model(*argv):
    args = cli.make_parser().parse_args(["fit", "table.csv", "-o", "x.zarr", *argv])
    return cli.build_model(args)


def test_fit_options_build_the_model():
    own = _model(
        "--time", "years", "--event", "died", "--cluster", "site", "--terms", "arm, age",
        "--baseline", "exponential", "--id-column", "pid",
    )  # fmt: skip
    assert (own.time, own.event, own.cluster, own.terms) == (
        "years",
        "died",
        "site",
        ("arm", "age"),
    )
    assert own.baseline == "exponential"
    assert own.id_column == "pid"
    assert _model("--time", "t", "--event", "d", "--cluster", "none").cluster is None
    spec = _model(
        "--spec", "netsarc_margin_interaction", "--endpoint", "lrfs", "--priors", "sceptical"
    )
    assert (spec.endpoint, spec.effect_modifier) == ("LRFS", "margin")
    assert spec.priors["beta:expert_center"] == bs.Prior("Normal", mu=0.0, sigma=0.2)
    # An option given on the command line overrides the spec's.
    assert (
        _model(
            "--spec", "netsarc_weibull", "--endpoint", "OS", "--baseline", "exponential"
        ).baseline
        == "exponential"
    )
    with pytest.raises(cli.CommandError, match="give --endpoint"):
        _model()


# -- the demo --------------------------------------------------------------------------------
def test_demo_runs_end_to_end_with_tiny_draws(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = [
        "demo",
        "--patients",
        1500,
        "--random-seed",
        7,
        "--draws",
        60,
        "--tune",
        100,
        "--chains",
        2,
    ]
    argv.append("--no-report")  # the report command is tested on its own
    code, stdout, stderr = run(capsys, *argv, "--out", out)
    assert code == 0, stderr
    for section in ("1. Crude median", "2. Adjusted", "3. Standardized", "4. LRFS", "5. Sampling"):
        assert section in stdout
    for name in ("lrfs", "rfs", "os", "lrfs_margin"):
        dt = io.load(out / f"{name}.zarr")
        assert dt.posterior.sizes["draw"] == 60
    assert (out / "headline.txt").read_text().strip() == stdout.strip()
    assert (out / "registry.truth.json").exists()
    assert "[2/4] fit 4 of 4" in stderr
    # Published medians beside the simulated ones.
    row = next(line for line in stdout.splitlines() if line.startswith("LRFS") and "60.0" in line)
    assert "41.0" in row


def test_report_from_a_saved_fit(os_fit_file, registry_csv, tmp_path, capsys):
    pytest.importorskip("bayes_sarcoma.report.analysis")
    out = tmp_path / "report.html"
    argv = ["report", registry_csv, "--fits", os_fit_file, "--candidates", "weibull", "-o", out]
    code, stdout, stderr = run(capsys, *argv, "-q")
    assert code == 0, stderr
    assert stdout.strip() == f"wrote {out}"
    html = out.read_text()
    assert "<html" in html.lower()
    assert "data:image/png;base64," in html
