"""read_table: each file problem gets a message that names the file, the cause and the fix;
what can be read safely (another separator, encoding, day-first dates) is read, with a note.
"""

from __future__ import annotations

import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest
from registry_factory import tiny_registry

import bayes_sarcoma.data.files as files
from bayes_sarcoma.data import schema
from bayes_sarcoma.data.errors import TableFileError, TableReadNote
from bayes_sarcoma.data.files import read_table


def fails(path, cause: str, fix: str = "", **kw) -> TableFileError:
    """Assert reading ``path`` fails naming the file, ``cause`` and ``fix``."""
    with pytest.raises(TableFileError) as info:
        read_table(path, **kw)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert cause in info.value.cause, message
    assert fix in info.value.fix, message
    return info.value


def read_noting(path, **kw) -> tuple[pd.DataFrame, str]:
    """Read ``path``; return the table and its notes (TableReadNote only, no other warning)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        df = read_table(path, **kw)
    assert all(issubclass(w.category, TableReadNote) for w in seen), [str(w) for w in seen]
    return df, "\n".join(str(w.message) for w in seen)


@pytest.fixture
def registry():
    return tiny_registry()


def _dates_as(df: pd.DataFrame, fmt: str) -> pd.DataFrame:
    out = df.copy()
    for c in schema.DATE_COLUMNS:
        out[c] = out[c].dt.strftime(fmt)
    return out


# -- what reads ----------------------------------------------------------------------------------
def test_a_csv_written_by_pandas_reads_back_exactly(registry, tmp_path):
    path = tmp_path / "registry.csv"
    registry.to_csv(path, index=False)
    df, notes = read_noting(path)
    assert notes == ""
    pd.testing.assert_frame_equal(df, registry, check_exact=True)


def test_semicolon_csv_with_decimal_commas_is_read_with_a_note(registry, tmp_path):
    # French spreadsheets save CSV with ';' between fields and ',' as the decimal mark.
    path = tmp_path / "export.csv"
    registry.to_csv(path, index=False, sep=";", decimal=",")
    df, notes = read_noting(path)
    pd.testing.assert_frame_equal(df, registry, check_exact=True)
    assert f"{path}: read it as ';'-separated" in notes
    assert "',' as the decimal mark" in notes


def test_tab_separated_csv_is_read_with_a_note(registry, tmp_path):
    path = tmp_path / "export.csv"
    registry.to_csv(path, index=False, sep="\t")
    df, notes = read_noting(path)
    assert df.shape == registry.shape
    assert "tab-separated" in notes


def test_tsv_is_tab_separated_without_a_note(registry, tmp_path):
    path = tmp_path / "registry.tsv"
    registry.to_csv(path, index=False, sep="\t")
    df, notes = read_noting(path)
    pd.testing.assert_frame_equal(df, registry, check_exact=True)
    assert notes == ""


def test_latin1_file_is_read_as_cp1252_and_the_note_says_so(registry, tmp_path):
    path = tmp_path / "export.csv"
    registry.assign(center_id="Hôpital Béclère").to_csv(path, index=False, encoding="latin-1")
    df, notes = read_noting(path)
    assert (df["center_id"] == "Hôpital Béclère").all()
    assert "not UTF-8 (line 2 holds" in notes
    assert "read it as cp1252" in notes
    assert "--encoding" in notes
    # Told to read UTF-8, it says the file is not, and how to say what it is.
    fails(path, "is not utf-8 text (line 2", "--encoding", encoding="utf-8")
    df, notes = read_noting(path, encoding="latin-1")
    assert (df["center_id"] == "Hôpital Béclère").all()
    assert notes == ""


def test_utf16_text_is_recognised_by_its_byte_order_mark(registry, tmp_path):
    path = tmp_path / "unicode.txt"
    path.write_text(registry.to_csv(index=False, sep="\t"), encoding="utf-16")
    df, notes = read_noting(path)
    pd.testing.assert_frame_equal(df, registry, check_exact=True)
    assert "UTF-16" in notes


def test_a_whole_number_written_3_0_is_read_as_an_integer_naming_its_row(registry, tmp_path):
    path = tmp_path / "registry.csv"
    text = registry.to_csv(index=False).splitlines()
    row = 3  # P03's line
    cells = text[row].split(",")
    grade = registry.columns.get_loc("grade")
    cells[grade] = f"{cells[grade]}.0"
    text[row] = ",".join(cells)
    path.write_text("\n".join(text) + "\n")
    df, notes = read_noting(path)
    assert df["grade"].dtype == np.int64
    pd.testing.assert_frame_equal(df, registry, check_exact=True)
    assert "column 'grade' holds whole numbers, 1 of them written with a decimal point" in notes
    assert "P03:" in notes


def test_a_column_of_floats_stays_floats(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("t,d\n1.0,1\n2.0,0\n")
    df, notes = read_noting(path)
    assert df["t"].dtype == np.float64
    assert notes == ""


def test_parquet_and_stata(registry, tmp_path):
    registry.to_parquet(tmp_path / "r.parquet")
    pd.testing.assert_frame_equal(read_table(tmp_path / "r.parquet"), registry)
    registry.assign(expert_center=registry["expert_center"].astype(int)).to_stata(
        tmp_path / "r.dta", write_index=False
    )
    df = read_table(tmp_path / "r.dta")
    assert df["patient_id"].tolist() == registry["patient_id"].tolist()
    assert pd.api.types.is_datetime64_any_dtype(df["surgery_date"])


def test_sas_is_read_with_pandas(registry, tmp_path, monkeypatch):
    # pandas reads SAS but cannot write it: check the dispatch and the decoding of bytes.
    seen = {}

    def fake_read_sas(path, format):
        seen["format"] = format
        return pd.DataFrame({"centre": [b"H\xf4pital", b"C1"], "t": [1.0, 2.0]})

    monkeypatch.setattr(pd, "read_sas", fake_read_sas)
    (tmp_path / "r.sas7bdat").write_bytes(b"\x00" * 64)
    df = read_table(tmp_path / "r.sas7bdat")
    assert seen["format"] == "sas7bdat"
    assert df["centre"].tolist() == ["Hôpital", "C1"]


# -- the file is not there, or not a file --------------------------------------------------------
def test_missing_file_suggests_the_closest_name(tmp_path):
    (tmp_path / "registry.csv").write_text("a,b\n1,2\n")
    fails(tmp_path / "registry.cvs", "no such file", "did you mean 'registry.csv'?")
    fails(tmp_path / "other.csv", "no such file", f"looked in {tmp_path}")
    fails(tmp_path / "nowhere" / "r.csv", "no such file", "does not exist")


def test_a_folder_is_not_a_table(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    fails(folder, "is a folder, not a table file", "give the table's file")
    (folder / "registry.csv").write_text("a,b\n1,2\n")
    fails(folder, "is a folder", f"e.g. {folder / 'registry.csv'}")


def test_unknown_extension_lists_what_is_read(tmp_path):
    path = tmp_path / "registry.json"
    path.write_text("{}")
    fails(path, "cannot read .json files", ".csv, .txt, .tsv")


# -- the file is not a table ---------------------------------------------------------------------
def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    fails(path, "the file is empty (0 bytes)", "export")
    path.write_text("\n \n\n")
    fails(path, "no table (only blank lines)")


def test_header_without_rows(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("patient_id,age,grade\n")
    fails(path, "column names (patient_id, age, grade) but no rows")


def test_binary_data_is_not_a_text_table(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(bytes(range(256)) * 4)
    fails(path, "is not a text table: it holds binary data", "export it as CSV")


def test_a_workbook_or_parquet_under_a_text_extension_is_named(registry, tmp_path):
    path = tmp_path / "book.csv"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
    fails(path, "it is a zip archive (an .xlsx Excel workbook is one)", "the .xlsx extension")
    registry.to_parquet(path)
    fails(path, "it is a Parquet file", ".parquet extension")


def test_prose_is_not_a_table(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("Notes from the meeting about the study\nWe will export the table later.\n")
    fails(path, "is not a table: its first lines do not split", "a header line of column names")


def test_lines_of_unequal_length_name_the_line(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b,c\n" + "1,2,3\n" * 39 + "1,2,3,4,5,6,7\n")
    fails(path, "line 41 has 7 fields where the lines before have 3", "check line 41")


def test_text_under_a_binary_extension(tmp_path):
    path = tmp_path / "table.xlsx"
    path.write_text("a,b\n1,2\n")
    fails(path, "is text, not an Excel workbook", "rename it .csv")
    path = tmp_path / "table.parquet"
    path.write_text("a,b\n1,2\n")
    fails(path, "is text, not a Parquet file", "rename it .csv")


def test_a_corrupt_binary_file_names_the_format(tmp_path):
    path = tmp_path / "r.sas7bdat"
    path.write_bytes(b"\x00" * 200)
    fails(path, "could not be read as a SAS data set", "export it again")


@pytest.mark.parametrize(
    ("suffix", "package"), [(".xlsx", "openpyxl"), (".xls", "xlrd"), (".parquet", "pyarrow")]
)
def test_a_missing_optional_reader_says_what_to_install(tmp_path, monkeypatch, suffix, package):
    module = files.BINARY_SUFFIXES[suffix][1]
    real = files.importlib.util.find_spec
    monkeypatch.setattr(
        files.importlib.util, "find_spec", lambda name: None if name == module else real(name)
    )
    path = tmp_path / f"book{suffix}"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    fails(path, f"needs the optional package {package}", f"pip install {package}")


def test_excel_reads_the_first_sheet_and_notes_the_others(registry, tmp_path):
    pytest.importorskip("openpyxl")
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as writer:
        registry.to_excel(writer, sheet_name="patients", index=False)
        registry.head(2).to_excel(writer, sheet_name="notes", index=False)
    df, notes = read_noting(path)
    assert df["patient_id"].tolist() == registry["patient_id"].tolist()
    assert "read its first sheet, 'patients'; it has 2 sheets" in notes


# -- dates ---------------------------------------------------------------------------------------
def test_day_first_dates_are_detected_with_a_note(registry, tmp_path):
    path = tmp_path / "export.csv"
    _dates_as(registry, "%d/%m/%Y").to_csv(path, index=False)
    df, notes = read_noting(path)
    pd.testing.assert_frame_equal(df, registry, check_exact=True)
    assert "as day/month/year" in notes


def test_month_first_dates_are_detected_with_a_note(registry, tmp_path):
    path = tmp_path / "export.csv"
    _dates_as(registry, "%m/%d/%Y").to_csv(path, index=False)
    df, notes = read_noting(path)
    pd.testing.assert_frame_equal(df, registry, check_exact=True)
    assert "as month/day/year" in notes


def test_ambiguous_dates_are_refused_until_the_format_is_given(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(
        "patient_id,surgery_date,last_followup_date\nP1,03/04/2012,05/06/2015\n"
        "P2,01/02/2011,12/12/2014\n"
    )
    fails(
        path,
        "could be day/month/year or month/day/year: no day number is above 12 (e.g. '03/04/2012')",
        "--date-format (date_format=) %d/%m/%Y or %m/%d/%Y",
    )
    df = read_table(path, date_format="%d/%m/%Y")
    assert df["surgery_date"].tolist() == [pd.Timestamp("2012-04-03"), pd.Timestamp("2011-02-01")]
    df = read_table(path, dayfirst=False)
    assert df["surgery_date"][0] == pd.Timestamp("2012-03-04")


def test_mixed_day_and_month_first_dates_are_refused(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("patient_id,surgery_date\nP1,13/04/2012\nP2,01/22/2011\n")
    fails(path, "mix day/month/year ('13/04/2012') and month/day/year ('01/22/2011')")


def test_dates_that_do_not_parse_are_named_by_row(registry, tmp_path):
    path = tmp_path / "export.csv"
    bad = registry.astype({"surgery_date": object})
    bad.loc[4, "surgery_date"] = "unknown"
    bad.to_csv(path, index=False)
    err = fails(path, "surgery_date: 1 of 9 are not ISO 8601 (2012-03-31) (P05: 'unknown')")
    assert "--date-format" in err.fix
    # A wrong format given: most dates do not read, and the message says to check it.
    _dates_as(registry, "%m/%d/%Y").to_csv(path, index=False)
    fails(path, "are not %d/%m/%Y", "most of them do not read so", date_format="%d/%m/%Y")


def test_unknown_date_layout_asks_for_the_format(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("patient_id,surgery_date\nP1,March 3 2012\nP2,April 1 2011\n")
    fails(path, "cannot tell the format of the dates of surgery_date", "--date-format")


def test_other_columns_than_registry_dates_are_left_alone(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("visit,t,d\n03/04/2012,1.5,1\n05/06/2015,2.0,0\n")
    df, notes = read_noting(path)
    assert df["visit"].tolist() == ["03/04/2012", "05/06/2015"]
    assert notes == ""
