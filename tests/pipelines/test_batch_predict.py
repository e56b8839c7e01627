"""Streaming batch prediction: chunked reads of CSV/Parquet files and folders, written as it goes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from rakuten_mlops.cli import app
from rakuten_mlops.config import Settings
from rakuten_mlops.data.schema import X_COLUMNS, X_TRAIN, LayoutError
from rakuten_mlops.data.validation import EMPTY_DESIGNATION
from rakuten_mlops.errors import InvalidInputError
from rakuten_mlops.pipelines.predict import OUTPUT_COLUMNS, predict_file
from tests.helpers import saved_pyfunc_model


@pytest.fixture(scope="module")
def model_uri(text_sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A text-only model saved as the registry stores it (models from code + the project's code)."""
    return saved_pyfunc_model(tmp_path_factory.mktemp("model"), text_sample_dir, with_image=False)


@pytest.fixture(scope="module")
def listings(text_sample_dir: Path) -> pd.DataFrame:
    """~400 listings with a non-contiguous index and two rows without a title."""
    x = pd.read_csv(text_sample_dir / X_TRAIN, dtype=str, keep_default_na=False, index_col=0)
    x.index = x.index.astype("int64") * 3 + 7
    x.index.name = None
    x.iloc[[5, 200], x.columns.get_loc("designation")] = ""
    return x


def run(inp: Path, out: Path, settings: Settings, uri: str, chunk: int) -> dict:
    return predict_file(inp, out, settings, model_uri=uri, chunk_size=chunk)


def read(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path, index_col=0)
    return pd.read_parquet(path)


def test_many_chunks_give_the_same_result_as_one(
    listings: pd.DataFrame, model_uri: str, settings: Settings, tmp_path: Path
) -> None:
    inp = tmp_path / "listings.csv"
    listings.to_csv(inp)
    one = run(inp, tmp_path / "one.csv", settings, model_uri, chunk=10_000)
    many = run(inp, tmp_path / "many.csv", settings, model_uri, chunk=37)  # ~11 chunks, uneven last
    assert one["predicted"] == many["predicted"] == len(listings) - 2
    a, b = read(tmp_path / "one.csv"), read(tmp_path / "many.csv")
    assert list(a.columns) == OUTPUT_COLUMNS
    pd.testing.assert_frame_equal(a, b)
    assert a.index.tolist() == listings.index.drop(listings.index[[5, 200]]).tolist()
    assert a["probability"].between(0, 1).all()
    assert (a["model_version"] == model_uri).all()  # a path URI has no registry version
    # Rejected rows keep every input column and their reason, in both runs.
    ra = pd.read_csv(one["rejects_path"], index_col=0, keep_default_na=False)
    rb = pd.read_csv(many["rejects_path"], index_col=0, keep_default_na=False)
    pd.testing.assert_frame_equal(ra, rb)
    assert ra.index.tolist() == listings.index[[5, 200]].tolist()
    assert (ra["reason"] == EMPTY_DESIGNATION).all()
    assert set(X_COLUMNS) <= set(ra.columns)


def test_a_folder_of_parquet_parts_matches_the_csv(
    listings: pd.DataFrame, model_uri: str, settings: Settings, tmp_path: Path
) -> None:
    inp = tmp_path / "listings.csv"
    listings.to_csv(inp)
    run(inp, tmp_path / "ref.csv", settings, model_uri, chunk=10_000)
    parts = tmp_path / "parts"
    parts.mkdir()
    typed = listings.assign(productid=listings["productid"].astype("int64"))  # Parquet keeps types
    for i, start in enumerate(range(0, len(typed), 150)):
        typed.iloc[start : start + 150].to_parquet(parts / f"part-{i:05d}.parquet")
    as_file = run(parts, tmp_path / "out.parquet", settings, model_uri, chunk=64)
    as_folder = run(parts, tmp_path / "out", settings, model_uri, chunk=64)
    assert (as_file["format"], as_folder["format"]) == ("parquet", "parts")
    ref = read(tmp_path / "ref.csv")
    for got in (read(tmp_path / "out.parquet"), read(tmp_path / "out")):
        assert got.index.tolist() == ref.index.tolist()
        pd.testing.assert_frame_equal(got, ref, check_dtype=False, check_index_type=False)
    assert len(list((tmp_path / "out").glob("part-*.parquet"))) > 1


def test_parquet_without_an_index_is_numbered_by_row(
    listings: pd.DataFrame, model_uri: str, settings: Settings, tmp_path: Path
) -> None:
    inp = tmp_path / "noindex.parquet"
    listings.reset_index(drop=True).to_parquet(inp, index=False)
    result = run(inp, tmp_path / "out.csv", settings, model_uri, chunk=50)
    got = read(tmp_path / "out.csv")
    assert result["rejected"] == 2
    assert got.index.tolist() == [i for i in range(len(listings)) if i not in (5, 200)]


def test_an_input_without_rows_writes_the_columns(model_uri: str, settings: Settings, tmp_path: Path) -> None:
    inp = tmp_path / "empty.csv"
    inp.write_text("," + ",".join(X_COLUMNS) + "\n")
    result = run(inp, tmp_path / "out.csv", settings, model_uri, chunk=10)
    assert result["predicted"] == 0
    assert list(read(tmp_path / "out.csv").columns) == OUTPUT_COLUMNS


@pytest.mark.parametrize(
    ("make", "chunk", "error", "message"),
    [
        (lambda d: d / "missing.csv", 10, LayoutError, "does not exist"),
        (lambda d: (d / "x.json").write_text("{}") and d / "x.json", 10, LayoutError, ".csv or .parquet"),
        (lambda d: d, 10, LayoutError, "no .csv or .parquet part file"),
        (lambda d: (d / "a.csv").write_text("x") and d / "a.csv", 0, InvalidInputError, "at least 1"),
    ],
)
def test_bad_inputs_are_clear_errors(
    make, chunk: int, error: type, message: str, model_uri: str, settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    with pytest.raises(error, match=message):
        run(make(folder), tmp_path / "out.csv", settings, model_uri, chunk=chunk)


def test_cli_streams_and_reports(listings: pd.DataFrame, model_uri: str, home: Path, tmp_path: Path) -> None:
    inp = tmp_path / "listings.csv"
    listings.to_csv(inp)
    out = tmp_path / "preds"
    result = CliRunner().invoke(
        app,
        [
            "predict",
            "--input",
            str(inp),
            "--output",
            str(out),
            "--model-uri",
            model_uri,
            "--chunk-size",
            "100",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "(parts)" in result.output and "2 rows rejected" in result.output
    assert len(pd.read_parquet(out)) == len(listings) - 2
    again = CliRunner().invoke(
        app, ["predict", "--input", str(inp), "--output", str(out), "--model-uri", model_uri]
    )
    assert again.exit_code == 2 and "already holds part files" in " ".join(again.output.split())
    assert "Traceback" not in again.output
