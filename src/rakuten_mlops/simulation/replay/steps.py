"""Steps: cut a data folder into an initial pool + ordered batches, then ingest them one by one.

Layout of a streams folder (default ``<home>/streams``)::

    streams.json                 manifest: source, seed, batch names, drift spec
    initial/                     the first training data (challenge layout), never modified
    batches/batch_001/ ...       challenge layout + metadata.json (date, injected drift)
    pool/                        the training pool: initial + accepted rows of ingested batches
    ingested/batch_001/          clean.parquet, rejects.csv (with reasons), summary.json
    state.json                   ingested batches, current batch, data versions (content hashes)

Reading and writing those files is `rakuten_mlops.simulation.replay.store`; the steps are here.

Ingestion is idempotent: the pool is rebuilt from `initial/` and the batches listed in
``state.json`` (never appended in place), and ``state.json`` is replaced atomically last. A
crash at any point leaves either the previous state (the rerun redoes the same batch and
writes the same files) or the new one (the rerun moves to the following batch).
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from rakuten_mlops.config import Params, Settings
from rakuten_mlops.data.csv_export import write_csv_for_users
from rakuten_mlops.data.loader import load_dataset
from rakuten_mlops.data.schema import IMAGE_PATH, LABEL, REASON, TRAIN_IMAGES_DIR
from rakuten_mlops.data.validation import DUPLICATED_PRODUCTID, validate
from rakuten_mlops.errors import InvalidInputError, MissingInputError
from rakuten_mlops.infra import write_json_atomic
from rakuten_mlops.simulation.core.cutting import apply_text_drift, cut_stream, parse_drift_spec
from rakuten_mlops.simulation.replay.store import (
    MANIFEST,
    STATE,
    initial_state,
    link_images,
    locked,
    pool_hash,
    read_manifest,
    read_state,
    write_layout,
    write_state,
)

DUPLICATED_INDEX = "duplicated_index"


def default_streams_dir(settings: Settings) -> Path:
    """Where `streams make` writes and `streams next` reads by default."""
    return settings.home / "streams"


def batch_name(number: int) -> str:
    return f"batch_{number:03d}"


def make_streams(
    data_dir: str | Path,
    out_dir: str | Path,
    n_batches: int,
    drift: str | None,
    settings: Settings,
    params: Params,
) -> dict[str, Any]:
    """Cut the labelled data of `data_dir` into an initial pool and `n_batches` ordered batches."""
    sp = params.streams
    out = Path(out_dir)
    if (out / MANIFEST).exists() or (out / STATE).exists():
        raise InvalidInputError(f"{out} already holds streams: delete it or choose another --out")
    plan = parse_drift_spec(drift, n_batches, sp.default_drift, sp.drift)  # fail before writing anything
    raw = load_dataset(data_dir)
    cut = cut_stream(raw.frame, n_batches, sp.initial_fraction, params.seed)
    out.mkdir(parents=True, exist_ok=True)
    write_layout(cut.initial, out / "initial")
    write_layout(cut.initial, out / "pool")
    batches = []
    for number, frame in enumerate(cut.batches, start=1):
        name = batch_name(number)
        applied = apply_text_drift(frame, plan.get(number, []), sp.drift, params.seed + 1000 + number)
        folder = out / "batches" / name
        write_layout(applied.frame, folder, image_ops=applied.image_ops)
        labels = applied.frame[LABEL].astype(str).value_counts().sort_index()
        meta = {
            "batch": number,
            "name": name,
            "date": (sp.start_date + dt.timedelta(days=sp.batch_days * (number - 1))).isoformat(),
            "rows": len(applied.frame),
            "drift": applied.described,
            "label_counts": {str(k): int(v) for k, v in labels.items()},
            "source": str(Path(data_dir).resolve()),
        }
        write_json_atomic(folder / "metadata.json", meta)
        batches.append(
            {"name": name, "rows": len(applied.frame), "drift": [d["kind"] for d in applied.described]}
        )
    manifest = {
        "source": str(Path(data_dir).resolve()),
        "seed": params.seed,
        "initial_rows": len(cut.initial),
        "initial_fraction": sp.initial_fraction,
        "has_images": raw.has_images,
        "drift_spec": drift,
        "batches": batches,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    write_json_atomic(out / MANIFEST, manifest)
    state = initial_state(out)
    write_state(out, state)
    return {"streams_dir": str(out), **manifest, "data_hash": state["versions"][0]["data_hash"]}


def ingest_next(streams_dir: str | Path, settings: Settings, params: Params) -> dict[str, Any]:
    """Validate the next batch, add its clean rows to the pool, record the new data version (idempotent)."""
    root = Path(streams_dir)
    manifest = read_manifest(root)
    with locked(root):
        state = read_state(root)
        done = set(state["ingested"])
        pending = [b["name"] for b in manifest["batches"] if b["name"] not in done]
        if not pending:
            return {"status": "exhausted", "ingested": state["ingested"], "current": state["current"]}
        name = pending[0]
        state["pending"] = name  # a crash from here on is visible; the rerun redoes this batch
        write_state(root, state)
        batch = _validate_batch(root, name, state["ingested"])
        ingested = [*state["ingested"], name]
        link_images(batch["clean"], root / "pool" / TRAIN_IMAGES_DIR)
        pool = _rebuild_pool(root, ingested)
        data_hash = pool_hash(root / "pool")
        dvc = _dvc_add(root / "pool", params.streams.dvc)
        version = {
            "version": len(ingested),
            "batch": name,
            "data_hash": data_hash,
            "pool_rows": pool,
            "accepted": batch["summary"]["accepted"],
            "rejected": batch["summary"]["rejected"],
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "dvc": dvc,
        }
        state = {**state, "ingested": ingested, "current": name, "pending": None}
        state["versions"] = [*state["versions"], version]
        write_state(root, state)
    return {
        "status": "ingested",
        "batch": name,
        "batch_dir": str(root / "batches" / name),
        "remaining": len(pending) - 1,
        **{k: v for k, v in version.items() if k != "batch"},
        "reject_reasons": batch["summary"].get("reasons", {}),
    }


def streams_status(streams_dir: str | Path) -> dict[str, Any]:
    """Batches made, ingested and pending, the current batch and the pool's data version."""
    root = Path(streams_dir)
    manifest = read_manifest(root)
    state = read_state(root)
    names = [b["name"] for b in manifest["batches"]]
    return {
        "streams_dir": str(root),
        "batches": len(names),
        "ingested": state["ingested"],
        "pending": [n for n in names if n not in state["ingested"]],
        "current": state["current"],
        "unfinished": state.get("pending"),
        "data_hash": state["versions"][-1]["data_hash"],
        "pool_rows": state["versions"][-1]["pool_rows"],
        "versions": state["versions"],
    }


def current_batch_dir(streams_dir: str | Path) -> Path:
    """Folder of the batch ingested last (FileNotFoundError before the first `streams next`)."""
    root = Path(streams_dir)
    current = read_state(root)["current"]
    if current is None:
        raise MissingInputError(f"no batch of {root} is ingested yet: run `rakuten-mlops streams next`")
    return root / "batches" / current


# ----------------------------------------------------------------------------- helpers
def _validate_batch(root: Path, name: str, already: list[str]) -> dict[str, Any]:
    """Validate a batch like the core pipeline does, plus rows that would duplicate the pool."""
    raw = load_dataset(root / "batches" / name)
    result = validate(raw.frame, check_images=raw.has_images)
    before = _pool_frame(root, already)
    clean, rejects = result.clean, result.rejects
    clash_index = clean.index.isin(before.index)
    clash_pid = clean["productid"].astype(str).isin(before["productid"].astype(str)) & ~clash_index
    extra = []
    for mask, why in ((clash_index, DUPLICATED_INDEX), (clash_pid, DUPLICATED_PRODUCTID)):
        if mask.any():
            moved = raw.frame.loc[clean.index[mask]].copy()
            moved[REASON] = why
            extra.append(moved)
    if extra:
        rejects = pd.concat([rejects, *extra])
        clean = clean[~(clash_index | clash_pid)]
    out = root / "ingested" / name
    out.mkdir(parents=True, exist_ok=True)
    clean.to_parquet(out / "clean.parquet")
    write_csv_for_users(rejects, out / "rejects.csv")
    reasons = rejects[REASON].value_counts().to_dict() if len(rejects) else {}
    summary = {
        "batch": name,
        "rows": len(raw.frame),
        "accepted": len(clean),
        "rejected": len(rejects),
        "reasons": reasons,
    }
    write_json_atomic(out / "summary.json", summary)
    return {"clean": clean, "summary": summary}


def _pool_frame(root: Path, ingested: list[str]) -> pd.DataFrame:
    """Raw rows (strings) of the initial pool and of the accepted rows of `ingested` batches, in order."""
    parts = [load_dataset(root / "initial").frame]
    for name in ingested:
        accepted = pd.read_parquet(root / "ingested" / name / "clean.parquet").index
        parts.append(load_dataset(root / "batches" / name).frame.loc[accepted])
    return pd.concat(parts)


def _rebuild_pool(root: Path, ingested: list[str]) -> int:
    pool = _pool_frame(root, ingested)
    write_layout(pool.drop(columns=[IMAGE_PATH]), root / "pool")
    return len(pool)


def _dvc_add(pool_dir: Path, mode: str) -> str:
    """`dvc add` the pool when it sits, not git-ignored, in a DVC repository; say what happened."""
    if mode == "never":
        return "disabled"
    pool = pool_dir.resolve()
    repo = next((p for p in pool.parents if (p / ".dvc").is_dir()), None)
    if repo is None:
        return "skipped: no DVC repository above the pool"
    local = Path(sys.executable).parent / "dvc"
    exe = str(local) if local.is_file() else shutil.which("dvc")
    if exe is None:
        return "skipped: dvc is not installed (pip install 'rakuten-mlops[dvc]')"
    git = shutil.which("git")
    if git and subprocess.run([git, "check-ignore", "-q", str(pool)], cwd=repo).returncode == 0:
        return (
            "skipped: the pool is git-ignored (keep the streams folder inside the repository to version it)"
        )
    done = subprocess.run([exe, "add", str(pool)], cwd=repo, capture_output=True, text=True)
    if done.returncode != 0:
        return f"failed: {done.stderr.strip()[-300:]}"
    return f"tracked: {pool.relative_to(repo)}.dvc"
