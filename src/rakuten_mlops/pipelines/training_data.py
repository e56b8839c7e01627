"""The training data the Data page summarises: the last pipeline run's splits, the champion's kept rows,
the streams' training pool.

The pipeline writes its splits to ``<home>/pipeline/splits/<part>.parquet`` (`rakuten-mlops pipeline
run`); monitoring keeps a sample of each champion's training rows under
``<home>/monitoring/reference/v<version>/rows.parquet``; `rakuten-mlops streams next` grows
``<home>/streams/pool``. The API's data routes serve the summaries below (no listing leaves in bulk).
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rakuten_mlops.data.schema import IMAGE_PATH, LABEL, X_TRAIN
from rakuten_mlops.data.split import PARTS
from rakuten_mlops.infra import read_json_or_none
from rakuten_mlops.pipelines.layout import WorkDir
from rakuten_mlops.pipelines.monitoring_reference import PART
from rakuten_mlops.pipelines.monitoring_store import MonitoringDir

TEXT_FIELDS = ("designation", "description")
EXAMPLE_COLUMNS = ("designation", "description", "productid", "imageid")
LENGTH_BINS = 40


@dataclass(frozen=True)
class DataSource:
    """One readable training data set: a stable id for the API, a label for people, where it lies."""

    id: str
    label: str
    path: Path
    kind: str  # "pipeline", "champion" or "streams"


def pipeline_version(home: Path) -> str | None:
    """Version the last pipeline run registered (its splits are that version's training data)."""
    registered = read_json_or_none(WorkDir(Path(home) / "pipeline").registry_dir / "registered.json")
    return str(registered["version"]) if registered and registered.get("version") else None


def data_sources(home: Path, champion: str | None = None) -> list[DataSource]:
    """Readable training data: the champion's kept rows, the pipeline's splits, the streams pool.

    The champion's rows (a sample monitoring keeps) come first only when the last pipeline run
    did not produce the champion.
    """
    home = Path(home)
    work = WorkDir(home / "pipeline")
    out = [
        DataSource(
            f"split-{part}", f"{part} split of the last pipeline run", work.split_path(part), "pipeline"
        )
        for part in PARTS
    ]
    out = [s for s in out if s.path.is_file()]
    snapshot = MonitoringDir.of_home(home).reference / f"v{champion}" / "rows.parquet"
    if champion and champion != pipeline_version(home) and snapshot.is_file():
        label = f"champion v{champion} training data (sample kept by monitoring)"
        out.insert(0, DataSource(f"champion-v{champion}", label, snapshot, "champion"))
    reference = MonitoringDir.of_home(home).reference
    kept = (
        sorted(reference.glob("v*/rows.parquet"), key=lambda p: p.parent.name) if reference.is_dir() else []
    )
    for rows in kept:  # other versions' training data, for comparison (the champion's is above)
        version = rows.parent.name.removeprefix("v")
        if version.isdigit() and version != champion and version != pipeline_version(home):
            label = f"version {version} training data (sample kept by monitoring)"
            out.append(DataSource(f"version-v{version}", label, rows, "version"))
    pool = home / "streams" / "pool"
    if (pool / X_TRAIN).is_file():
        out.append(DataSource("streams-pool", "streams training pool", pool, "streams"))
    return out


def find_source(home: Path, source_id: str, champion: str | None = None) -> DataSource | None:
    return next((s for s in data_sources(home, champion) if s.id == source_id), None)


def _mtime(path: Path) -> float:
    target = path / X_TRAIN if path.is_dir() else path
    return target.stat().st_mtime


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> pd.DataFrame:
    source = Path(path)
    if source.suffix == ".parquet":
        frame = pd.read_parquet(source)
        return frame[frame[PART] == "train"] if PART in frame.columns else frame
    from rakuten_mlops.data.loader import load_dataset

    frame = load_dataset(source).frame
    frame = frame[frame[LABEL].astype(str).str.strip() != ""].copy()
    frame[LABEL] = frame[LABEL].astype(int)
    return frame


def load_source(path: Path) -> pd.DataFrame:
    """Listings with labels (and image paths when the data has images); the last few stay in memory."""
    return _load(str(path), _mtime(path))


def class_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows and share of each class, largest first (columns: code, rows, share)."""
    counts = frame[LABEL].astype(int).value_counts()
    return pd.DataFrame(
        {
            "code": counts.index.astype(int),
            "rows": counts.to_numpy(),
            "share": (counts / counts.sum()).to_numpy() if len(counts) else [],
        }
    )


def text_lengths(frame: pd.DataFrame) -> pd.DataFrame:
    """Characters of each title and description, long format (field, chars)."""
    parts = []
    for field in TEXT_FIELDS:
        chars = frame[field].fillna("").astype(str).str.len()
        parts.append(pd.DataFrame({"field": field, "chars": chars.to_numpy()}))
    return pd.concat(parts, ignore_index=True)


def length_histogram(frame: pd.DataFrame, bins: int = LENGTH_BINS) -> pd.DataFrame:
    """Listings per band of characters, per text field (field, start, end, listings): at most `bins` bands."""
    lengths = text_lengths(frame)
    rows: list[dict[str, Any]] = []
    for field in TEXT_FIELDS:
        chars = lengths.loc[lengths["field"] == field, "chars"].to_numpy()
        if len(chars) == 0:
            continue
        top = max(int(chars.max()), 1)
        edges = np.unique(np.linspace(0, top, min(bins, top) + 1).round().astype(int))
        counts, _ = np.histogram(chars, bins=edges)
        rows.extend(
            {"field": field, "start": int(a), "end": int(b), "listings": int(n)}
            for a, b, n in zip(edges[:-1], edges[1:], counts, strict=True)
        )
    return pd.DataFrame(rows, columns=["field", "start", "end", "listings"])


def median_lengths(frame: pd.DataFrame) -> dict[str, float]:
    lengths = text_lengths(frame)
    return {f: float(lengths.loc[lengths["field"] == f, "chars"].median() or 0.0) for f in TEXT_FIELDS}


def empty_description_share(frame: pd.DataFrame) -> float:
    if frame.empty:
        return 0.0
    return float((frame["description"].fillna("").astype(str).str.strip() == "").mean())


def examples(frame: pd.DataFrame, code: int, n: int = 8, seed: int = 0) -> pd.DataFrame:
    """Up to `n` listings of class `code` (a seeded sample, so the page is stable between runs)."""
    rows = frame[frame[LABEL].astype(int) == int(code)]
    return rows.sample(n=min(n, len(rows)), random_state=seed) if len(rows) else rows


def example_images(rows: pd.DataFrame, max_bytes: int) -> list[dict[str, str]]:
    """The image of each listing whose file exists here and weighs at most `max_bytes`, base64-encoded."""
    if IMAGE_PATH not in rows.columns:
        return []
    out = []
    for _, row in rows.iterrows():
        path = row.get(IMAGE_PATH)
        if not (isinstance(path, str) and path and Path(path).is_file()):
            continue
        if Path(path).stat().st_size > max_bytes:
            continue
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        out.append({"name": Path(path).name, "caption": str(row["designation"])[:60], "base64": data})
    return out
