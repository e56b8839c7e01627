"""Step: batch prediction of listings with the champion (or any model URI), streamed chunk by chunk.

The input (a CSV or Parquet file, or a folder of part files) is read `chunk_size` rows at a time
and each chunk's predictions are written before the next is read, so memory stays flat whatever
the input's size.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from rakuten_mlops.config import Settings
from rakuten_mlops.data.csv_export import safe_for_spreadsheets
from rakuten_mlops.data.loader import attach_image_paths, iter_listings, listings_source
from rakuten_mlops.data.schema import LayoutError
from rakuten_mlops.data.validation import EMPTY_DESIGNATION, validate
from rakuten_mlops.errors import InvalidInputError, MissingInputError
from rakuten_mlops.lifecycle.registry import CHAMPION, configure_mlflow
from rakuten_mlops.pipelines.progress import NullProgress, Progress

DEFAULT_CHUNK_SIZE = 10_000
OUTPUT_COLUMNS = ["prdtypecode", "probability", "category", "modalities", "model_version"]
_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


def champion_uri(settings: Settings) -> str:
    return f"models:/{settings.model_name}@{CHAMPION}"


def model_version_of(uri: str, settings: Settings) -> str:
    """The registry version a `models:/name@alias` or `models:/name/N` URI names; else the URI."""
    m = _REGISTRY_URI.match(uri)
    if m is None:
        return uri
    if m["version"]:
        return m["version"]
    from rakuten_mlops.lifecycle.registry import client

    return str(client(settings).get_model_version_by_alias(m["name"], m["alias"]).version)


def write_csv(frame: pd.DataFrame, path: Path, *, header: bool) -> None:
    """Write (header) or append (no header) rows to a CSV; every CSV of batch prediction goes here.

    Cells a spreadsheet would run as formulas are neutralised (see `infra.neutralise_cell`).
    """
    safe_for_spreadsheets(frame).to_csv(path, mode="w" if header else "a", header=header)


class PredictionWriter:
    """Writes prediction chunks as they come: a CSV, one Parquet file, or a folder of Parquet parts.

    Parquet when `path` ends in ``.parquet`` (one file) or is a folder or has no suffix (part files
    ``part-00000.parquet``, …); CSV otherwise. The rejects go to ``<path stem>.rejects.csv``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.suffix.lower() == ".parquet":
            self.kind = "parquet"
        elif path.is_dir() or not path.suffix:
            self.kind = "parts"
        else:
            self.kind = "csv"
        self.rejects_path = path.with_name(f"{path.stem if path.suffix else path.name}.rejects.csv")
        self.rows = 0
        self.rejected = 0
        self.started = False  # the header / schema is written by the first chunk, even an empty one
        self._parts = 0
        self._writer: Any = None  # pyarrow.parquet.ParquetWriter of the one-file output
        if self.kind == "parts":
            if path.is_dir() and any(path.glob("part-*.parquet")):
                raise InvalidInputError(f"{path} already holds part files: choose an empty or new folder")
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        if self.rejects_path.exists():
            self.rejects_path.unlink()  # a rerun must not append to the last run's rejects

    def write(self, table: pd.DataFrame) -> None:
        if self.kind == "csv":
            write_csv(table, self.path, header=not self.started)
        elif len(table) or not self.started:
            self._write_parquet(table)
        self.started = True
        self.rows += len(table)

    def write_rejects(self, rejects: pd.DataFrame) -> None:
        if len(rejects):
            write_csv(rejects, self.rejects_path, header=self.rejected == 0)
            self.rejected += len(rejects)

    def _write_parquet(self, table: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrow = pa.Table.from_pandas(table, preserve_index=True)
        if self.kind == "parts":
            pq.write_table(arrow, self.path / f"part-{self._parts:05d}.parquet")
            self._parts += 1
            return
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, arrow.schema)
        self._writer.write_table(arrow.cast(self._writer.schema))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _prediction_table(model: Any, chunk: pd.DataFrame, version: str, cache: Any = None) -> pd.DataFrame:
    if len(chunk):
        out = model.predict_frame(chunk, cache=cache) if cache is not None else model.predict_frame(chunk)
        out.index = chunk.index
    else:
        out = pd.DataFrame(
            index=chunk.index, columns=["prdtypecode", "probability", "category", "modalities"]
        )
    table = pd.DataFrame(
        {
            "prdtypecode": out["prdtypecode"].astype("int64"),
            "probability": out["probability"].astype("float64"),
            "category": out["category"].astype(str),
            "modalities": out["modalities"].astype(str),
            "model_version": pd.Series(version, index=out.index, dtype=str),
        },
        index=chunk.index,
    )
    table.index = chunk.index.astype("int64").rename(None)  # the challenge's empty header
    return table


def predict_file(
    input_path: str | Path,
    output_path: str | Path,
    settings: Settings,
    images_dir: str | Path | None = None,
    model_uri: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Predict every listing of a CSV/Parquet file or folder; unpredictable rows go to a rejects file.

    The output keeps the input's index and adds `prdtypecode`, `probability`, `category`,
    `modalities` (text, or text+image when the row's image was used) and `model_version`. Only a
    missing title makes a row unpredictable; a missing image means text-only for that row.
    """
    from mlflow.exceptions import MlflowException

    from rakuten_mlops.models.pyfunc import load_product_classifier

    progress = progress or NullProgress()
    source = listings_source(input_path)
    img = Path(images_dir) if images_dir is not None else None
    if img is not None and not img.is_dir():
        raise LayoutError("images folder does not exist", path=img)
    if chunk_size < 1:
        raise InvalidInputError(f"chunk size must be at least 1, not {chunk_size}")
    writer = PredictionWriter(Path(output_path))  # a bad output fails before the model loads
    configure_mlflow(settings)
    uri = model_uri or champion_uri(settings)
    try:
        model = load_product_classifier(uri)
        version = model_version_of(uri, settings)
    except MlflowException as exc:
        raise MissingInputError(
            f"cannot load model {uri}: {exc}. Train one with `rakuten-mlops pipeline run`"
        ) from exc
    cache = None
    if model.uses_images and model.embedder is not None:  # the home's table, shared with the pipeline
        from rakuten_mlops.features.images import EmbeddingCache

        cache = EmbeddingCache.for_embedder(settings.embeddings_dir, model.embedder)
    advance = progress.task("predicting", total=source.count_rows())
    try:
        for raw in iter_listings(source, chunk_size):
            frame = attach_image_paths(raw, img)
            result = validate(frame, check_images=False, require_labels=False)
            rejects = result.rejects[result.rejects["reason"] == EMPTY_DESIGNATION]
            writer.write(_prediction_table(model, frame.drop(index=rejects.index), version, cache))
            writer.write_rejects(rejects)
            advance(len(raw))
        if not writer.started:  # an input without rows still gets an output with the columns
            writer.write(_prediction_table(model, pd.DataFrame(index=pd.Index([], dtype="int64")), version))
    finally:
        writer.close()
    return {
        "model_uri": uri,
        "model_version": version,
        "output": str(writer.path),
        "format": writer.kind,
        "predicted": writer.rows,
        "rejected": writer.rejected,
        "rejects_path": str(writer.rejects_path) if writer.rejected else None,
    }
