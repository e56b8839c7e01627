"""Steps: ingest + validate a data folder, then split it (file in, file out)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from rakuten_mlops.config import Params
from rakuten_mlops.data.csv_export import write_csv_for_users
from rakuten_mlops.data.loader import load_dataset
from rakuten_mlops.data.schema import IMAGE_PATH, LABEL
from rakuten_mlops.data.split import PARTS, frame_hash, stratified_split
from rakuten_mlops.data.validation import validate
from rakuten_mlops.errors import InvalidInputError
from rakuten_mlops.pipelines.layout import WorkDir, read_frame, write_json
from rakuten_mlops.pipelines.progress import NullProgress, Progress


def ingest(data_dir: str | Path, work: WorkDir, progress: Progress | None = None) -> dict[str, Any]:
    """Load the labelled part of `data_dir`, validate every row, keep rejects with their reason."""
    progress = progress or NullProgress()
    raw = load_dataset(data_dir)
    frame = raw.frame
    if raw.has_images:
        advance = progress.task("checking images", total=len(frame))
        last = 0

        def on_progress(done: int) -> None:
            nonlocal last
            advance(done - last)
            last = done

        result = validate(frame, check_images=True, on_progress=on_progress)
    else:
        progress.log(f"no images under {Path(data_dir) / 'images/image_train'}: training text only")
        result = validate(frame, check_images=False)
    work.ingest.mkdir(parents=True, exist_ok=True)
    clean = result.clean.copy()
    clean.to_parquet(work.clean_path)
    write_csv_for_users(result.rejects, work.rejects_path)
    summary = {
        "data_dir": str(Path(data_dir).resolve()),
        "has_images": raw.has_images,
        "rows": len(frame),
        **result.summary(),
        "classes": int(clean[LABEL].nunique()) if len(clean) else 0,
        "data_hash": frame_hash(clean.drop(columns=[IMAGE_PATH])),
    }
    if summary["rejected"]:
        progress.log(f"{summary['rejected']} rows rejected; see {work.rejects_path}")
    if len(clean) == 0:
        raise InvalidInputError(f"no valid rows in {data_dir}; reasons are in {work.rejects_path}")
    write_json(work.ingest / "summary.json", summary)
    return summary


def split(work: WorkDir, params: Params) -> dict[str, Any]:
    """Stratified train/val/test + gold split of the clean rows; files and content hashes persisted."""
    clean = read_frame(work.clean_path, "ingest")
    too_small = clean[LABEL].value_counts()
    too_small = too_small[too_small < 2]
    if len(too_small):
        raise InvalidInputError(
            f"classes {sorted(too_small.index.tolist())} have fewer than 2 valid rows: "
            "add data for them or remove them before training"
        )
    splits = stratified_split(clean, params.split, params.seed)
    work.splits.mkdir(parents=True, exist_ok=True)
    hashes = {}
    for name, df in splits.items():
        df.to_parquet(work.split_path(name))
        hashes[name] = frame_hash(df.drop(columns=[IMAGE_PATH]))
    summary = {"sizes": splits.sizes(), "hashes": hashes, "seed": params.seed}
    write_json(work.splits / "summary.json", summary)
    return summary


def load_splits(work: WorkDir) -> dict[str, pd.DataFrame]:
    return {name: read_frame(work.split_path(name), "split") for name in PARTS}
