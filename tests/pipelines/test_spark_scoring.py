"""Catalog scoring on Spark (`batch score --engine spark`): the same answers as `predict`, row for row."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pytest
from typer.testing import CliRunner

from rakuten_mlops.cli import app
from rakuten_mlops.config import Settings
from rakuten_mlops.data.schema import TRAIN_IMAGES_DIR, X_TRAIN
from rakuten_mlops.pipelines.predict import predict_file
from rakuten_mlops.pipelines.spark_scoring import score_with_spark
from tests.helpers import saved_pyfunc_model

HAS_PYSPARK = importlib.util.find_spec("pyspark") is not None
HAS_JAVA = shutil.which("java") is not None
NO_PYSPARK = "pyspark missing: pip install 'rakuten-mlops[spark]'"
NO_JAVA = "no Java runtime: `make system-deps` installs Java 17"


def needs_spark(test: F) -> F:
    """Slow (starts a JVM); skipped, with the reason, without pyspark or Java."""
    for mark in (
        pytest.mark.slow,
        pytest.mark.skipif(not HAS_PYSPARK, reason=NO_PYSPARK),
        pytest.mark.skipif(not HAS_JAVA, reason=NO_JAVA),
    ):
        test = mark(test)
    return test


F = TypeVar("F", bound=Callable[..., Any])


@pytest.fixture(scope="module")
def model_uri(image_sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A text + image + fusion model saved as the registry stores it (models from code + the code)."""
    return saved_pyfunc_model(tmp_path_factory.mktemp("spark-model"), image_sample_dir, with_image=True)


@pytest.fixture(scope="module")
def listings(image_sample_dir: Path) -> pd.DataFrame:
    """The sample's listings, a non-contiguous index, one blank title, one listing without an image."""
    x = pd.read_csv(image_sample_dir / X_TRAIN, dtype=str, keep_default_na=False, index_col=0)
    x.index = x.index.astype("int64") * 5 + 3
    x.index.name = None
    x.iloc[7, x.columns.get_loc("designation")] = "  \t "
    x.iloc[11, x.columns.get_loc("imageid")] = "999999999"  # no such file: scored from its text
    return x


def spark_output(path: Path) -> pd.DataFrame:
    """The partitioned Parquet output as one frame (the partition column back to an integer)."""
    frame = pd.read_parquet(path)
    frame["prdtypecode"] = frame["prdtypecode"].astype("int64")
    return frame


def assert_same_predictions(local: pd.DataFrame, spark: pd.DataFrame) -> None:
    """Same rows, codes and modalities; probabilities equal up to float noise of the CNN.

    The CNN embeds the images in batches of different composition in the two engines (Arrow
    batches in Spark), which moves the embeddings in their last float bits.
    """
    assert len(spark) == len(local)
    joined = local.join(spark.set_index("index"), rsuffix="_spark", how="inner")
    assert len(joined) == len(local)
    assert (joined["prdtypecode"] == joined["prdtypecode_spark"]).all()
    assert (joined["modalities"] == joined["modalities_spark"]).all()
    assert (joined["category"] == joined["category_spark"]).all()
    assert (joined["probability"] - joined["probability_spark"]).abs().max() < 1e-4


def csv_parts(listings: pd.DataFrame, folder: Path) -> Path:
    """The listings as a folder of CSV part files in the challenge's format."""
    folder.mkdir()
    for i, start in enumerate(range(0, len(listings), 100)):
        listings.iloc[start : start + 100].to_csv(folder / f"part-{i:05d}.csv")
    return folder


@needs_spark
def test_spark_local2_scores_a_folder_with_images_like_predict(
    listings: pd.DataFrame, model_uri: str, image_sample_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    folder = csv_parts(listings, tmp_path / "listings")
    images = image_sample_dir / TRAIN_IMAGES_DIR
    local = predict_file(folder, tmp_path / "local.parquet", settings, images, model_uri)
    result = score_with_spark(folder, tmp_path / "scores", settings, images, model_uri, "local[2]", 32)
    assert result["predicted"] == local["predicted"] == len(listings) - 1
    assert result["rejected"] == local["rejected"] == 1
    expected = pd.read_parquet(tmp_path / "local.parquet")
    scores = spark_output(tmp_path / "scores")
    assert set(scores.columns) == {
        "index", "productid", "imageid", "prdtypecode", "probability", "category", "modalities",
        "model_version",
    }  # fmt: skip
    assert_same_predictions(expected, scores)
    # the listing whose image file is missing was scored from its text, every other one with its image
    by_index = scores.set_index("index")["modalities"]
    assert by_index[listings.index[11]] == "text"
    assert (by_index.drop(listings.index[11]) == "text+image").all()
    assert (scores["model_version"] == model_uri).all()
    # partitioned by code, as a cluster job writes it
    codes = {p.name for p in (tmp_path / "scores").glob("prdtypecode=*")}
    assert codes == {f"prdtypecode={c}" for c in scores["prdtypecode"].unique()}
    rejects = pd.read_parquet(tmp_path / "scores.rejects")
    assert rejects["index"].tolist() == [listings.index[7]]
    assert rejects["reason"].tolist() == ["empty_designation"]


@needs_spark
def test_a_partitioned_parquet_input_and_the_cli(
    listings: pd.DataFrame, model_uri: str, settings: Settings, home: Path, tmp_path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    text_only = listings.iloc[:120].assign(shard=[i % 3 for i in range(120)])
    pq.write_to_dataset(pa.Table.from_pandas(text_only), tmp_path / "catalog", partition_cols=["shard"])
    assert len(list((tmp_path / "catalog").glob("shard=*/*.parquet"))) == 3
    local = predict_file(
        csv_parts(listings.iloc[:120], tmp_path / "csv"), tmp_path / "local.parquet", settings,
        model_uri=model_uri,
    )  # fmt: skip
    out = tmp_path / "scores"
    args = ["batch", "score", "--engine", "spark", "--master", "local[2]", "--model-uri", model_uri]
    result = CliRunner().invoke(app, [*args, "--input", str(tmp_path / "catalog"), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 119 predictions" in flat(result.output) and "local[2]" in flat(result.output)
    assert local["predicted"] == 119
    assert_same_predictions(pd.read_parquet(tmp_path / "local.parquet"), spark_output(out))
    assert (spark_output(out)["modalities"] == "text").all()  # no --images: text only
    # a second run does not overwrite the first one's scores
    again = CliRunner().invoke(app, [*args, "--input", str(tmp_path / "catalog"), "--output", str(out)])
    assert again.exit_code == 2
    assert "already exists: choose an empty or new folder" in flat(again.output)
    assert "Traceback" not in flat(again.output)


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["batch", "score", *args])


def flat(output: str) -> str:
    """The output with Rich's line wrapping undone."""
    return " ".join(output.split())


@pytest.mark.slow
def test_the_local_engine_is_the_streaming_predict(
    listings: pd.DataFrame, model_uri: str, settings: Settings, home: Path, tmp_path: Path
) -> None:
    inp = tmp_path / "listings.csv"
    listings.iloc[:80].to_csv(inp)
    predict_file(inp, tmp_path / "predict.csv", settings, model_uri=model_uri)
    out = tmp_path / "batch.csv"
    result = invoke("--input", str(inp), "--output", str(out), "--model-uri", model_uri, "--chunk-size", "30")
    assert result.exit_code == 0, result.output
    expected = pd.read_csv(tmp_path / "predict.csv", index_col=0)
    pd.testing.assert_frame_equal(pd.read_csv(out, index_col=0), expected)
    assert len(expected) == 79  # the blank title went to the rejects
    missing = invoke("--input", str(tmp_path / "missing.csv"), "--output", str(tmp_path / "o.csv"))
    assert missing.exit_code == 2
    assert "input file or folder does not exist" in flat(missing.output) and "Traceback" not in flat(
        missing.output
    )


def test_an_unknown_engine_is_a_clean_error(tmp_path: Path, home: Path) -> None:
    result = invoke("--input", "x.csv", "--output", str(tmp_path / "o"), "--engine", "dask")
    assert result.exit_code == 2
    assert "--engine must be 'local' or 'spark', not 'dask'" in flat(result.output)
    assert "Traceback" not in flat(result.output)


def test_without_pyspark_the_error_names_the_extra(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark -> ImportError
    result = invoke("--input", "x.csv", "--output", str(tmp_path / "o"), "--engine", "spark")
    assert result.exit_code == 2
    # the extra is printed as written (Rich markup escaped), not swallowed as a style tag
    assert "pip install 'rakuten-mlops[spark]'" in flat(result.output)
    assert "Traceback" not in flat(result.output)


@pytest.mark.skipif(not HAS_PYSPARK, reason=NO_PYSPARK)
def test_without_java_the_error_says_how_to_install_it(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    result = invoke("--input", "x.csv", "--output", str(tmp_path / "o"), "--engine", "spark")
    assert result.exit_code == 2
    assert "needs a Java 17 runtime: `make system-deps`" in flat(result.output)
    assert "Traceback" not in flat(result.output)


@pytest.mark.skipif(not HAS_PYSPARK, reason=NO_PYSPARK)
def test_the_spark_submit_entry_point_reports_user_errors_in_one_line(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rakuten_mlops.pipelines.spark_job import main

    code = main(["--input", str(tmp_path / "missing"), "--output", str(tmp_path / "scores")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "input file or folder does not exist" in err
    with pytest.raises(SystemExit):  # argparse: --output is required
        main(["--input", "x"])
