"""Steps: cut a data folder into an initial pool + ordered batches, then ingest them one by one.

Layout of a streams folder (default ``<home>/streams``)::

    streams.json                 manifest: source, seed, batch names, drift spec
    pool/                        the training pool (challenge layout); grows with each ingested batch
    initial/                     the first training data (challenge layout), never modified
    batches/batch_001/ ...       challenge layout + metadata.json (date, injected drift)
    ingested/batch_001/          clean.parquet, rejects.csv (with reasons), summary.json
    state.json                   ingested batches, current batch, data versions (content hashes)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rakuten_mlops.config import Params, Settings


def default_streams_dir(settings: Settings) -> Path:
    """Where `streams make` writes and `streams next` reads by default."""
    return settings.home / "streams"


def make_streams(
    data_dir: str | Path,
    out_dir: str | Path,
    n_batches: int,
    drift: str | None,
    settings: Settings,
    params: Params,
) -> dict[str, Any]:
    """Cut the labelled data of `data_dir` into an initial pool and `n_batches` ordered batches."""
    raise NotImplementedError


def ingest_next(streams_dir: str | Path, settings: Settings, params: Params) -> dict[str, Any]:
    """Validate the next batch, append its clean rows to the pool, record the new data version (idempotent)."""
    raise NotImplementedError


def streams_status(streams_dir: str | Path) -> dict[str, Any]:
    """Batches made, ingested and pending, the current batch and the pool's data version."""
    raise NotImplementedError
