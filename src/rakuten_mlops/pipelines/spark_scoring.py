"""Step: score a whole catalog on Apache Spark with the champion (`batch score --engine spark`).

The listings (CSV or Parquet, a file or a folder of part files, local or any URI Spark reads) become
a DataFrame; images, when given, are read with Spark's ``binaryFile`` source and joined on the
``image_<imageid>_product_<productid>.jpg`` name; the registered model runs in every executor as
``mlflow.pyfunc.spark_udf`` (Arrow batches of ``chunk_size`` rows); the output is Parquet
partitioned by ``prdtypecode``. pyspark is imported only here, inside the functions, so the
project works without the ``[spark]`` extra.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rakuten_mlops.config import Settings
from rakuten_mlops.data.loader import listings_source
from rakuten_mlops.data.schema import INDEX, X_COLUMNS, LayoutError
from rakuten_mlops.data.validation import EMPTY_DESIGNATION
from rakuten_mlops.errors import InvalidInputError, MissingInputError
from rakuten_mlops.features.images import EmbeddingCache, MissingExtraError
from rakuten_mlops.lifecycle.registry import configure_mlflow
from rakuten_mlops.pipelines.predict import DEFAULT_CHUNK_SIZE, champion_uri, model_version_of

# What the UDF returns of the model's output (top_k stays out: a nested list per row).
RESULT_TYPE = "prdtypecode long, probability double, category string, modalities string"
PREDICTED = ("prdtypecode", "probability", "category", "modalities")
# Where a listings file keeps the challenge's index: Spark names an empty CSV header `_c0`.
_INDEX_NAMES = ("_c0", "__index_level_0__", INDEX, "Unnamed: 0")
IMAGE_NAME = r"image_(\d+)_product_(\d+)\.jpg$"

EMBEDDINGS_ENV = EmbeddingCache.ENV


def require_spark() -> Any:
    """Import pyspark, or fail with a message naming the extra to install."""
    try:
        import pyspark
    except ImportError as exc:
        raise MissingExtraError(
            "the Spark engine needs the 'spark' extra: pip install 'rakuten-mlops[spark]' "
            "(or use --engine local)"
        ) from exc
    return pyspark


def require_java() -> str:
    """The `java` that Spark will start, or fail saying how to install Java 17."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).is_file():
        raise MissingExtraError(
            "the Spark engine needs a Java 17 runtime: `make system-deps` installs it on Debian/Ubuntu "
            "(default-jre-headless), or set JAVA_HOME (or use --engine local)"
        )
    return java


@dataclass(frozen=True)
class SparkInput:
    """The listings as Spark reads them: the paths (or URIs) and their format."""

    paths: tuple[str, ...]
    fmt: str  # "csv" | "parquet"


def is_uri(path: str | Path) -> bool:
    return "://" in str(path) and not str(path).startswith("file://")


def spark_input(path: str | Path) -> SparkInput:
    """Local files are checked like `predict` checks them; a folder of Hive-style partitions
    (``key=value/part-*.parquet``) and a URI (s3a://, hdfs://) are read as Spark reads them."""
    if is_uri(path):
        fmt = "csv" if str(path).lower().endswith(".csv") else "parquet"
        return SparkInput((str(path),), fmt)
    p = Path(path)
    if p.is_dir() and any(p.glob("*=*/**/*.parquet")):  # Hive-style partitions, as Spark writes them
        return SparkInput((str(p.resolve()),), "parquet")
    source = listings_source(p)
    return SparkInput(tuple(str(f.resolve()) for f in source.files), source.fmt)


def _check_output(output: str | Path) -> None:
    if is_uri(output):
        return
    out = Path(output)
    if out.suffix.lower() == ".csv":
        raise InvalidInputError(f"{out}: the Spark engine writes a Parquet folder; give a path without .csv")
    if out.exists() and (out.is_file() or any(out.iterdir())):
        raise InvalidInputError(f"{out} already exists: choose an empty or new folder")


def spark_session(master: str | None, chunk_size: int, app_name: str = "rakuten-batch-score") -> Any:
    """A SparkSession scoring in Arrow batches of `chunk_size` rows.

    `master` None keeps what `spark-submit` set. A local master runs its Python workers with this
    interpreter (the one that has the model's dependencies).
    """
    require_spark()
    from pyspark.sql import SparkSession

    # MLflow's per-file download bar would print one line per artefact file of the model
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # py4j logs each connection it closes at INFO, some from finalizers at interpreter exit, when
    # the streams may be closed already ("--- Logging error ---" after a run)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        require_java()
        builder = builder.master(master)
        if master.startswith("local"):
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            builder = builder.config("spark.ui.enabled", "false")
    if os.environ.get(EMBEDDINGS_ENV):  # executors read and extend the same embedding table
        builder = builder.config(f"spark.executorEnv.{EMBEDDINGS_ENV}", os.environ[EMBEDDINGS_ENV])
    return (
        builder.config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(chunk_size))
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )


def read_listings(spark: Any, source: SparkInput) -> Any:
    """The listings with `designation`, `description`, `productid`, `imageid` (and `index` when stored)."""
    from pyspark.sql import functions as F

    if source.fmt == "csv":
        frame = spark.read.csv(list(source.paths), header=True, multiLine=True, escape='"', quote='"')
    else:
        frame = spark.read.parquet(*source.paths)
    missing = [c for c in X_COLUMNS if c not in frame.columns]
    if missing:
        raise LayoutError(f"missing column(s) {missing}; found {frame.columns}", path=source.paths[0])
    index = next((c for c in _INDEX_NAMES if c in frame.columns), None)
    keys = [F.col(index).cast("long").alias(INDEX)] if index else []
    return frame.select(
        *keys,
        F.coalesce(F.col("designation").cast("string"), F.lit("")).alias("designation"),
        F.coalesce(F.col("description").cast("string"), F.lit("")).alias("description"),
        F.col("productid").cast("string").alias("productid"),
        F.col("imageid").cast("string").alias("imageid"),
    )


def attach_images(spark: Any, listings: Any, images_dir: str | Path) -> Any:
    """Add an `image` column (bytes, null when the listing has no image file) from a folder of JPEGs."""
    from pyspark.sql import functions as F

    if not is_uri(images_dir) and not Path(images_dir).is_dir():
        raise LayoutError("images folder does not exist", path=images_dir)
    location = str(images_dir) if is_uri(images_dir) else str(Path(images_dir).resolve())
    images = (
        spark.read.format("binaryFile")
        .option("pathGlobFilter", "image_*_product_*.jpg")
        .load(location)
        .select(
            F.regexp_extract("path", IMAGE_NAME, 1).cast("long").alias("_imageid"),
            F.regexp_extract("path", IMAGE_NAME, 2).cast("long").alias("_productid"),
            F.col("content").alias("image"),
        )
    )
    on = (F.col("imageid").cast("long") == F.col("_imageid")) & (
        F.col("productid").cast("long") == F.col("_productid")
    )
    return listings.join(images, on, "left").drop("_imageid", "_productid")


def _is_empty(column: str) -> Any:
    """The rows `predict` rejects: a title made of whitespace only ((?U): Unicode spaces as Python's)."""
    from pyspark.sql import functions as F

    return F.length(F.regexp_replace(F.col(column), r"(?U)\s", "")) == 0


def score_with_spark(
    input_path: str | Path,
    output_path: str | Path,
    settings: Settings,
    images_dir: str | Path | None = None,
    model_uri: str | None = None,
    master: str | None = "local[*]",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> dict[str, Any]:
    """Score every listing with `mlflow.pyfunc.spark_udf`; returns a summary like `predict_file`'s.

    The output (Parquet, partitioned by `prdtypecode`) holds the input's keys (`index` when the
    input stores one, `productid`, `imageid`), `prdtypecode`, `probability`, `category`,
    `modalities` and `model_version`. Rows without a title go to ``<output>.rejects`` (Parquet,
    with a `reason` column).
    """
    require_spark()
    if master is not None:
        require_java()
    if chunk_size < 1:
        raise InvalidInputError(f"chunk size must be at least 1, not {chunk_size}")
    source = spark_input(input_path)  # bad inputs fail before Spark starts
    _check_output(output_path)
    if images_dir is not None and not is_uri(images_dir) and not Path(images_dir).is_dir():
        raise LayoutError("images folder does not exist", path=images_dir)
    configure_mlflow(settings)
    uri = model_uri or champion_uri(settings)
    version = _version(uri, settings)
    if images_dir is not None and master is not None and master.startswith("local"):
        # local executors share this machine's disk: they use the home's embedding table, as the
        # pipeline and `predict` do (on a cluster, set RAKUTEN_EMBEDDINGS_DIR to a shared path)
        os.environ.setdefault(EMBEDDINGS_ENV, str(settings.embeddings_dir))
    spark = spark_session(master, chunk_size)
    try:
        return _score(spark, source, str(output_path), images_dir, uri, version)
    finally:
        if master is not None:  # under spark-submit the session belongs to the job
            spark.stop()


def _model_error(uri: str, exc: Exception) -> MissingInputError:
    return MissingInputError(f"cannot load model {uri}: {exc}. Train one with `rakuten-mlops pipeline run`")


def _version(uri: str, settings: Settings) -> str:
    from mlflow.exceptions import MlflowException

    try:
        return model_version_of(uri, settings)
    except MlflowException as exc:
        raise _model_error(uri, exc) from exc


def _score(spark: Any, source: SparkInput, output: str, images_dir: Any, uri: str, version: str) -> dict:
    import mlflow
    from mlflow.exceptions import MlflowException
    from pyspark.sql import functions as F

    listings = read_listings(spark, source)
    rejected = listings.filter(_is_empty("designation"))
    kept = listings.filter(~_is_empty("designation"))
    if images_dir is not None:
        kept = attach_images(spark, kept, images_dir)
    try:
        udf = mlflow.pyfunc.spark_udf(spark, uri, result_type=RESULT_TYPE, env_manager="local")
    except MlflowException as exc:
        raise _model_error(uri, exc) from exc
    inputs = ["designation", "description"] + (["image"] if images_dir is not None else [])
    keys = [c for c in (INDEX, "productid", "imageid") if c in listings.columns]
    scored = kept.withColumn("_prediction", udf(F.struct(*inputs))).select(
        *keys,
        *(F.col(f"_prediction.{c}").alias(c) for c in PREDICTED),
        F.lit(version).alias("model_version"),
    )
    scored.write.mode("errorifexists").partitionBy("prdtypecode").parquet(output)
    rejects_path = f"{output.rstrip('/')}.rejects"
    rejected.withColumn("reason", F.lit(EMPTY_DESIGNATION)).write.mode("overwrite").parquet(rejects_path)
    n_rejected = spark.read.parquet(rejects_path).count()
    if n_rejected == 0 and not is_uri(rejects_path):
        shutil.rmtree(rejects_path, ignore_errors=True)
    return {
        "engine": "spark",
        "master": spark.sparkContext.master,
        "model_uri": uri,
        "model_version": version,
        "output": output,
        "format": "parquet partitioned by prdtypecode",
        "predicted": spark.read.parquet(output).count(),
        "rejected": n_rejected,
        "rejects_path": rejects_path if n_rejected else None,
    }
