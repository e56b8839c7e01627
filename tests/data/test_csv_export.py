"""CSV files written for people: no cell a spreadsheet would run, numbers unchanged."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rakuten_mlops.data.csv_export import safe_for_spreadsheets, write_csv_for_users


def test_text_starting_like_a_formula_is_quoted_and_numbers_stay_numbers() -> None:
    frame = pd.DataFrame(
        {"designation": ["=1+1", "+33 6", "@SUM(A1)", "Robot -5"], "=cmd": [-3, 0, 2, 1]},
        index=pd.Index(["-x", "a", "b", "c"]),
    )
    safe = safe_for_spreadsheets(frame)
    assert safe["designation"].tolist() == ["'=1+1", "'+33 6", "'@SUM(A1)", "Robot -5"]
    assert list(safe.columns) == ["designation", "'=cmd"]
    assert safe["'=cmd"].tolist() == [-3, 0, 2, 1]
    assert list(safe.index) == ["'-x", "a", "b", "c"]
    assert frame["designation"].iloc[0] == "=1+1"  # the frame given is left as it was


def test_written_file_holds_the_neutralised_cells(tmp_path: Path) -> None:
    frame = pd.DataFrame({"designation": ['=HYPERLINK("http://x")'], "reason": ["unknown_code"]}, index=[7])
    write_csv_for_users(frame, tmp_path / "rejects.csv")
    back = pd.read_csv(tmp_path / "rejects.csv", index_col=0, keep_default_na=False)
    assert back.loc[7, "designation"] == '\'=HYPERLINK("http://x")'
    assert back.loc[7, "reason"] == "unknown_code"


def test_data_validate_writes_its_rejects_neutralised(text_sample_dir: Path, tmp_path: Path) -> None:
    import shutil

    from typer.testing import CliRunner

    from rakuten_mlops.cli import app
    from rakuten_mlops.data.schema import X_TRAIN, Y_TRAIN

    d = tmp_path / "data"
    shutil.copytree(text_sample_dir, d)
    x = pd.read_csv(d / X_TRAIN, index_col=0, dtype=str, keep_default_na=False)
    y = pd.read_csv(d / Y_TRAIN, index_col=0, dtype=str, keep_default_na=False)
    row = x.index[0]
    x.loc[row, "designation"] = "=1+1"
    y.loc[row, "prdtypecode"] = "99999"  # rejected: unknown code
    x.to_csv(d / X_TRAIN)
    y.to_csv(d / Y_TRAIN)
    result = CliRunner().invoke(
        app, ["data", "validate", "--data-dir", str(d), "--rejects", str(tmp_path / "r.csv")]
    )
    assert result.exit_code == 1, result.output
    rejects = pd.read_csv(tmp_path / "r.csv", index_col=0, dtype=str, keep_default_na=False)
    assert rejects.loc[row, "designation"] == "'=1+1"
    assert rejects["reason"].tolist() == ["unknown_code"]
