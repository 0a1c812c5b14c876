"""The bayes-sarcoma command line: help, exit codes, one-line errors, and each command
against the Python API it wraps (same random_seed, same numbers)."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import FAST

import bayes_sarcoma as bs
from bayes_sarcoma.cli import main as cli
from bayes_sarcoma.data import schema
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
        f"bayes-sarcoma validate: error: {tmp_path / 'missing.csv'}: no such file; check the "
        f"path (looked in {tmp_path})\n",
    )
    notes = tmp_path / "notes.json"
    notes.write_text("x")
    code, _, err = run(capsys, "validate", notes)
    assert code == 1
    assert f"{notes}: cannot read .json files; save the table as one of .csv" in err
    code, _, err = run(capsys, "summary", notes)
    assert code == 1
    assert "neither a Zarr folder nor a NetCDF-4 file" in err
    code, _, err = run(
        capsys, "fit", notes.with_suffix(".csv"), "--endpoint", "OS", "-o", os_fit_file
    )
    assert code == 1
    assert "no such file" in err


def test_internal_errors_exit_3(monkeypatch, capsys, registry_csv):
    def broken(path, **kw):
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
    np.testing.assert_allclose(
        got[["median", "lower", "upper"]], want[["median", "lower", "upper"]]
    )
    assert got.patient_id.tolist() == want.patient.tolist()
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
    for name in ("lrfs", "rfs", "os"):
        assert io.load(out / f"{name}.zarr").posterior.sizes["draw"] == 60
    margin = io.load(out / "lrfs_margin.zarr")  # the slowly mixing interaction: 40% more
    assert margin.posterior.sizes["draw"] == 84
    assert margin.attrs["target_accept"] == 0.95
    assert "target_accept 0.95, 2 chains x 84 draws" in stdout
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


# -- file problems (issue 16): the message names the file, the cause and the fix -------------
def test_file_problems_name_the_file_and_the_cause(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    folder = tmp_path / "exports"
    folder.mkdir()
    binary = tmp_path / "data.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    ragged = tmp_path / "notes.csv"
    ragged.write_text("a,b,c\n" + "1,2,3\n" * 39 + "1,2,3,4,5,6,7\n")
    cases = {
        empty: "the file is empty (0 bytes)",
        folder: "is a folder, not a table file",
        binary: "is not a text table: it holds binary data",
        ragged: "line 41 has 7 fields where the lines before have 3",
    }
    for path, cause in cases.items():
        code, _, err = run(capsys, "validate", path)
        assert code == 1, err
        assert err.startswith(f"bayes-sarcoma validate: error: {path}: "), err
        assert cause in err
        assert err.count("\n") == 1


def test_a_french_csv_is_read_with_a_warning(registry_csv, tmp_path, capsys):
    path = tmp_path / "export.csv"
    df = cli.read_table(registry_csv)
    df.to_csv(path, index=False, sep=";", decimal=",", encoding="cp1252")
    code, out, err = run(capsys, "validate", path)
    assert code == 0, err
    assert out.startswith(f"ok: {path}: 1500 patients")
    assert f"bayes-sarcoma: warning: {path}: read it as ';'-separated" in err


def test_date_format_option_reads_ambiguous_dates(registry_csv, tmp_path, capsys):
    dates = ["surgery_date", "local_relapse_date", "distant_relapse_date", "death_date",
             "last_followup_date"]  # fmt: skip
    df = cli.read_table(registry_csv).head(40).drop(columns=list(schema.DERIVED_COLUMNS))
    for c in dates:  # every day number <= 12, order kept (a monotone map of the days)
        d = df[c]
        df[c] = pd.to_datetime(
            {"year": d.dt.year, "month": d.dt.month, "day": 1 + (d.dt.day - 1) * 12 // 31}
        )
    written = df.copy()
    for c in dates:
        written[c] = written[c].dt.strftime("%d/%m/%Y")
    path = tmp_path / "export.csv"
    written.to_csv(path, index=False)
    code, _, err = run(capsys, "validate", path)
    assert code == 1
    assert f"{path}: the dates of surgery_date, local_relapse_date" in err
    assert "could be day/month/year or month/day/year" in err
    assert "say which with --date-format" in err
    code, out, err = run(capsys, "validate", path, "--date-format", "%d/%m/%Y")
    assert code == 0, err
    assert out.startswith(f"ok: {path}: 40 patients")
    read = cli.read_table(path, date_format="%d/%m/%Y")
    pd.testing.assert_frame_equal(read[dates], df[dates])


def test_one_decimal_grade_is_read_naming_its_row(registry_csv, tmp_path, capsys):
    text = registry_csv.read_text().splitlines()
    header = text[0].split(",")
    cells = text[5].split(",")
    grade = header.index("grade")
    cells[grade] += ".0"
    text[5] = ",".join(cells)
    path = tmp_path / "grade.csv"
    path.write_text("\n".join(text) + "\n")
    code, _, err = run(capsys, "validate", path)
    assert code == 0, err
    assert "column 'grade' holds whole numbers, 1 of them written with a decimal point" in err
    assert f"{cells[0]}: '{cells[grade]}'" in err


# -- validate any table ----------------------------------------------------------------------
@pytest.fixture
def own_table(tmp_path):
    """A clustered survival table with its own column names (not a registry)."""
    rng = np.random.default_rng(3)
    n = 60
    df = pd.DataFrame(
        {
            "subject": [f"S{i:02d}" for i in range(n)],
            "site": [f"site-{i % 6}" for i in range(n)],
            "years": rng.exponential(3.0, n).round(2) + 0.01,
            "died": rng.integers(0, 2, n),
            "arm": np.arange(n) % 6 % 2,
            "age": rng.normal(60, 10, n).round(),
        }
    )
    path = tmp_path / "own.csv"
    df.to_csv(path, index=False)
    return df, path


OWN = ["--time", "years", "--event", "died", "--cluster", "site", "--terms", "arm,age",
       "--id-column", "subject"]  # fmt: skip


def test_validate_any_table_with_the_checks_of_fit(own_table, capsys):
    df, path = own_table
    code, out, err = run(capsys, "validate", path, *OWN)
    assert code == 0, err
    assert out.startswith(f"ok: {path}: 60 rows, {df['died'].sum()} events (died)")
    assert "6 clusters (site); terms arm, age" in out
    assert err == ""
    # The same problems fit would refuse, named by the table's own ids.
    bad = df.copy()
    bad.loc[4, "died"] = 2
    bad.loc[7, "years"] = -1.0
    bad.to_csv(path, index=False)
    code, _, err = run(capsys, "validate", path, *OWN)
    assert code == 1
    assert "column 'died'" in err
    assert "S04" in err
    assert "column 'years'" in err
    assert "S07" in err


def test_validate_refuses_a_table_that_is_no_registry_with_the_way_out(own_table, capsys):
    _, path = own_table
    code, _, err = run(capsys, "validate", path)
    assert code == 1
    assert "is not a registry: it lacks 13 of the 14 registry columns" in err
    assert "--time <column> --event <column>" in err
    assert err.count("\n") == 1  # not 13 x "required column is missing"
    code, _, err = run(capsys, "validate", path, "--time", "years")
    assert code == 1
    assert "give both --time and --event" in err
    code, _, err = run(capsys, "validate", path, "--time", "yrs", "--event", "died")
    assert code == 1
    assert "column 'yrs'" in err
    assert "did you mean 'years'?" in err


def test_validate_warns_about_implausible_values_without_failing(
    own_table, registry_csv, tmp_path, capsys
):
    df, path = own_table
    df.loc[3, "age"] = 150
    df.to_csv(path, index=False)
    code, out, err = run(capsys, "validate", path, *OWN)
    assert code == 0
    assert "(1 warning: values to check)" in out
    assert f"warning: {path}: column 'age': age outside 15-100 years is implausible" in err
    assert "S03" in err
    # A registry: within its hard limits, but implausible.
    reg = cli.read_table(registry_csv)
    reg.loc[2, "age"] = 105.0
    reg.loc[4, "tumor_size_cm"] = 62.0
    reg_path = tmp_path / "registry.csv"
    reg.to_csv(reg_path, index=False)
    code, out, err = run(capsys, "validate", reg_path)
    assert code == 0, err
    assert "(2 warnings: values to check)" in out
    assert "column 'age': age outside 15-100 years is implausible (1 row breaks it: " in err
    assert reg.loc[2, "patient_id"] in err
    assert "tumor_size_cm above 50 cm is implausible" in err
    # A date in the future (a Parquet table keeps its datetime column).
    df["visit_date"] = pd.Timestamp("2012-01-01")
    df.loc[5, "visit_date"] = pd.Timestamp("2099-01-01")
    parquet = tmp_path / "own.parquet"
    df.to_parquet(parquet)
    code, _, err = run(capsys, "validate", parquet, *OWN)
    assert code == 0
    assert "column 'visit_date': visit_date is in the future" in err
    assert "S05" in err


# -- predict: a tidy, labelled table -----------------------------------------------------------
def test_predict_table_is_tidy_and_labelled(os_fit_file, registry_small, tmp_path, capsys):
    patients = registry_small.iloc[[0, 7, 99]]
    src = tmp_path / "patients.csv"
    patients.to_csv(src, index=False)
    times = [12, 60, 240]
    out = tmp_path / "pred.csv"
    code, stdout, err = run(capsys, "predict", os_fit_file, src, "--times", "12,60,240", "-o", out)
    assert code == 0, err
    table = pd.read_csv(out)
    assert list(table.columns) == [
        "endpoint", "center", "ci_prob", "patient_id", "quantity", "time", "median", "lower",
        "upper", "beyond_follow_up",
    ]  # fmt: skip
    assert (table["endpoint"] == "OS").all()
    assert (table["center"] == "new").all()
    assert (table["ci_prob"] == cli.CI_PROB).all()
    ids = patients["patient_id"].tolist()
    # Per patient: the survival at each time, then the median.
    assert table["patient_id"].tolist() == [i for i in ids for _ in range(len(times) + 1)]
    assert table["quantity"].tolist() == (["survival"] * len(times) + ["median_time"]) * 3
    dt = io.load(os_fit_file)
    follow_up = float(dt["observed_data"]["time"].max())
    assert follow_up < 240
    surv = table[table["quantity"] == "survival"]
    assert (surv["beyond_follow_up"] == (surv["time"] > follow_up)).all()
    med = table[table["quantity"] == "median_time"]
    assert med["time"].isna().all()
    assert (med["beyond_follow_up"] == (med["median"] > follow_up)).all()
    assert f"wrote {out}: 3 patients, 12 rows" in stdout
    assert "95% interval (ci_prob 0.95)" in stdout
    assert f"longest follow-up is {follow_up:.1f}" in stdout


def test_predict_on_screen_says_what_the_table_holds(os_fit_file, registry_small, tmp_path, capsys):
    patients = registry_small.iloc[[3, 5]].drop(columns="patient_id")
    src = tmp_path / "patients.csv"
    patients.to_csv(src, index=False)
    code, out, err = run(
        capsys, "predict", os_fit_file, src, "--times", "24", "--center", "typical",
        "--ci-prob", "0.8",
    )  # fmt: skip
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("OS: survival S(t) and median event-free time")
    assert "months since surgery" in lines[0]
    assert lines[1].startswith("centre: typical")
    assert "80% interval (ci_prob 0.8)" in lines[2]
    assert "row: the patient's row in the table" in out
    header = next(line for line in lines if line.lstrip().startswith("endpoint"))
    assert header.split() == [
        "endpoint", "center", "ci_prob", "row", "quantity", "time", "median", "lower", "upper",
        "beyond_follow_up",
    ]  # fmt: skip
    rows = [line.split() for line in lines[lines.index(header) + 1 :]]
    assert [r[3] for r in rows] == ["1", "1", "2", "2"]


def test_predict_flags_medians_beyond_follow_up_and_implausible_ages(
    os_fit_file, registry_small, tmp_path, capsys
):
    # A young, low-risk patient: a median OS far beyond the fit's follow-up.
    low = registry_small.iloc[[0]].assign(
        patient_id="LOW", age=20.0, grade=1, tumor_size_cm=2.0, depth="superficial", margin="R0"
    )
    old = registry_small.iloc[[1]].assign(patient_id="OLD", age=150.0)
    src = tmp_path / "patients.csv"
    pd.concat([low, old]).to_csv(src, index=False)
    out = tmp_path / "pred.csv"
    code, _, err = run(capsys, "predict", os_fit_file, src, "--times", "12", "-o", out)
    assert code == 0, err
    table = pd.read_csv(out)
    med = table[table["quantity"] == "median_time"].set_index("patient_id")
    assert med.loc["LOW", "beyond_follow_up"]
    assert "predicted medians lie beyond the fit's longest follow-up" in err
    assert f"warning: {src}: column 'age': age outside 15-100 years is implausible" in err
    assert "OLD" in err


def test_predict_id_column_option(os_fit_file, registry_small, tmp_path, capsys):
    patients = registry_small.iloc[[0, 1]].assign(name=["Ann", "Bob"])
    src = tmp_path / "patients.csv"
    patients.to_csv(src, index=False)
    out = tmp_path / "pred.csv"
    code, _, err = run(
        capsys, "predict", os_fit_file, src, "--times", "12", "--id-column", "name", "-o", out
    )
    assert code == 0, err
    assert pd.read_csv(out)["name"].tolist() == ["Ann", "Ann", "Bob", "Bob"]
    code, _, err = run(capsys, "predict", os_fit_file, src, "--id-column", "nom")
    assert code == 1
    assert "--id-column 'nom' is not a column" in err
    patients.assign(name="Ann").to_csv(src, index=False)
    code, _, err = run(capsys, "predict", os_fit_file, src, "--id-column", "name")
    assert code == 1
    assert "ids must be unique" in err


def test_fit_options_choose_a_flexible_baseline():
    flexible = _model("--endpoint", "OS", "--baseline", "mspline", "--n-basis", "8")
    assert (flexible.baseline, flexible.n_basis) == ("mspline", 8)
    spec = _model("--spec", "netsarc_mspline", "--endpoint", "OS")
    assert (spec.baseline, spec.n_basis) == ("mspline", 10)
    # Another baseline on the command line drops the spec's spline options.
    weibull = _model("--spec", "netsarc_mspline", "--endpoint", "OS", "--baseline", "weibull")
    assert (weibull.baseline, weibull.n_basis) == ("weibull", None)
