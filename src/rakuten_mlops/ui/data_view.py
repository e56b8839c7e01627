"""What the Data page shows: the training data of the last pipeline run, or the streams' training pool.

No Streamlit here. The pipeline writes its splits to ``<home>/pipeline/splits/<part>.parquet``
(`rakuten-mlops pipeline run`); `rakuten-mlops streams next` grows ``<home>/streams/pool``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rakuten_mlops.config import Settings
from rakuten_mlops.data.schema import IMAGE_PATH, LABEL, X_TRAIN
from rakuten_mlops.data.split import PARTS
from rakuten_mlops.infra import read_json_or_none
from rakuten_mlops.pipelines.layout import WorkDir
from rakuten_mlops.pipelines.monitoring_reference import PART
from rakuten_mlops.pipelines.monitoring_store import MonitoringDir
from rakuten_mlops.ui.labels import category_with_code


def data_sources(settings: Settings, champion: str | None = None) -> dict[str, Path]:
    """Readable training data by label: the champion's kept rows, the pipeline's splits, the streams pool.

    The champion's rows (a sample monitoring keeps) come first only when the last pipeline run
    did not produce the champion.
    """
    work = WorkDir(settings.home / "pipeline")
    sources = {f"{part} split of the last pipeline run": work.split_path(part) for part in PARTS}
    sources = {label: path for label, path in sources.items() if path.is_file()}
    snapshot = MonitoringDir.of_home(settings.home).reference / f"v{champion}" / "rows.parquet"
    if champion and champion != pipeline_version(settings) and snapshot.is_file():
        sources = {f"champion v{champion} training data (sample kept by monitoring)": snapshot, **sources}
    pool = settings.home / "streams" / "pool"
    if (pool / X_TRAIN).is_file():
        sources["streams training pool"] = pool
    return sources


def pipeline_version(settings: Settings) -> str | None:
    """Version the last pipeline run registered (its splits are that version's training data)."""
    registered = read_json_or_none(WorkDir(settings.home / "pipeline").registry_dir / "registered.json")
    return str(registered["version"]) if registered and registered.get("version") else None


def load_source(path: Path) -> pd.DataFrame:
    """Listings with labels (and image paths when the data has images)."""
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
        return frame[frame[PART] == "train"] if PART in frame.columns else frame
    from rakuten_mlops.data.loader import load_dataset

    frame = load_dataset(path).frame
    frame = frame[frame[LABEL].astype(str).str.strip() != ""].copy()
    frame[LABEL] = frame[LABEL].astype(int)
    return frame


def class_counts(frame: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Rows and share of each class, largest first."""
    counts = frame[LABEL].astype(int).value_counts()
    return pd.DataFrame(
        {
            "category": [category_with_code(c, lang) for c in counts.index],
            "code": counts.index.astype(int),
            "rows": counts.to_numpy(),
            "share": (counts / counts.sum()).to_numpy(),
        }
    )


def text_lengths(frame: pd.DataFrame) -> pd.DataFrame:
    """Characters of each title and description, long format (field, chars)."""
    parts = []
    for field in ("designation", "description"):
        chars = frame[field].fillna("").astype(str).str.len()
        parts.append(pd.DataFrame({"field": field, "chars": chars.to_numpy()}))
    return pd.concat(parts, ignore_index=True)


def empty_description_share(frame: pd.DataFrame) -> float:
    if frame.empty:
        return 0.0
    return float((frame["description"].fillna("").astype(str).str.strip() == "").mean())


def examples(frame: pd.DataFrame, code: int, n: int = 8, seed: int = 0) -> pd.DataFrame:
    """Up to `n` listings of class `code` (a seeded sample, so the page is stable between runs)."""
    rows = frame[frame[LABEL].astype(int) == int(code)]
    return rows.sample(n=min(n, len(rows)), random_state=seed) if len(rows) else rows


def image_files(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """(path, caption) of the listings whose image file exists on this machine."""
    if IMAGE_PATH not in rows.columns:
        return []
    out = []
    for _, row in rows.iterrows():
        path = row.get(IMAGE_PATH)
        if isinstance(path, str) and path and Path(path).is_file():
            out.append((path, str(row["designation"])[:60]))
    return out
