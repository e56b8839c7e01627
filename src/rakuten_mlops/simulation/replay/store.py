"""How a streams folder is kept on disk: data layouts, images, the manifest and the state file.

`write_layout` writes rows as a challenge-layout folder (X/Y CSVs replaced atomically, images
hard-linked or transformed), `link_images` adds a batch's images to the pool. `read_manifest`
reads ``streams.json``; `read_state`, `write_state` (atomic replace) and `initial_state` handle
``state.json``, whose data versions are `pool_hash` content hashes; `locked` serialises
ingestions of one folder. The steps that use them are in `rakuten_mlops.simulation.replay.steps`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from rakuten_mlops.data.loader import load_dataset
from rakuten_mlops.data.schema import IMAGE_PATH, LABEL, TRAIN_IMAGES_DIR, X_COLUMNS, X_TRAIN, Y_TRAIN
from rakuten_mlops.data.split import frame_hash
from rakuten_mlops.data.validation import validate
from rakuten_mlops.errors import MissingInputError
from rakuten_mlops.infra import exclusive_lock, replacing, write_json_atomic
from rakuten_mlops.simulation.core.cutting import transform_image

MANIFEST = "streams.json"
STATE = "state.json"


def read_state(root: Path) -> dict[str, Any]:
    """``state.json``: ingested batches, the current and any unfinished one, data versions."""
    path = Path(root) / STATE
    if not path.is_file():
        raise MissingInputError(f"{path} is missing: run `rakuten-mlops streams make` first")
    return json.loads(path.read_text(encoding="utf-8"))


def pool_hash(pool_dir: Path) -> str:
    """Content hash of the pool's valid rows, computed as the core `ingest` step does (same `data_hash`)."""
    raw = load_dataset(pool_dir)
    clean = validate(raw.frame, check_images=False).clean
    return frame_hash(clean.drop(columns=[IMAGE_PATH]))


def read_manifest(root: Path) -> dict[str, Any]:
    """``streams.json``: what `streams make` wrote (source, seed, batches)."""
    path = root / MANIFEST
    if not path.is_file():
        raise MissingInputError(f"{path} is missing: run `rakuten-mlops streams make --out {root}` first")
    return json.loads(path.read_text(encoding="utf-8"))


def initial_state(root: Path) -> dict[str, Any]:
    """The state before any ingestion: data version 0 is the initial pool."""
    rows = len(load_dataset(root / "pool").frame)
    version = {"version": 0, "batch": None, "data_hash": pool_hash(root / "pool"), "pool_rows": rows}
    return {"ingested": [], "current": None, "pending": None, "versions": [version]}


def write_state(root: Path, state: dict[str, Any]) -> None:
    """Replace ``state.json`` atomically (a crash leaves the old state or the new one)."""
    write_json_atomic(root / STATE, state)


@contextmanager
def locked(root: Path) -> Iterator[None]:
    """One ingestion at a time per streams folder (two DAG runs must not interleave)."""
    with exclusive_lock(root / ".lock"):
        yield


def write_layout(frame: pd.DataFrame, folder: Path, image_ops: list | None = None) -> None:
    """Write rows (raw strings, challenge index) as X/Y CSVs, with their images when they have some."""
    folder.mkdir(parents=True, exist_ok=True)
    x = frame[list(X_COLUMNS)].copy()
    x.index.name = None
    y = frame[[LABEL]].copy()
    y.index.name = None
    _atomic_csv(x, folder / X_TRAIN)
    _atomic_csv(y, folder / Y_TRAIN)
    if IMAGE_PATH in frame.columns and frame[IMAGE_PATH].notna().any():
        target = folder / TRAIN_IMAGES_DIR
        target.mkdir(parents=True, exist_ok=True)
        for src in frame[IMAGE_PATH].dropna():
            src_path = Path(src)
            if not src_path.is_file():
                continue  # kept as is: validation rejects the row with `missing_image`
            dest = target / src_path.name
            if image_ops:
                try:
                    with Image.open(src_path) as im:
                        transform_image(im, image_ops).save(dest, "JPEG", quality=90)
                except OSError:
                    shutil.copyfile(src_path, dest)  # undecodable stays undecodable
            else:
                _link(src_path, dest)


def _atomic_csv(frame: pd.DataFrame, path: Path) -> None:
    with replacing(path) as tmp:
        frame.to_csv(tmp)


def _link(src: Path, dest: Path) -> None:
    """Hard-link when possible (no copy of 85k images), else copy; an existing file is kept."""
    if dest.exists():
        return
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def link_images(clean: pd.DataFrame, target: Path) -> None:
    """Hard-link (or copy) the images of `clean` rows into `target`, e.g. the pool's image folder."""
    if IMAGE_PATH not in clean.columns or clean[IMAGE_PATH].isna().all():
        return
    target.mkdir(parents=True, exist_ok=True)
    for src in clean[IMAGE_PATH].dropna():
        _link(Path(src), target / Path(src).name)
