"""The drift reference: the champion's training data, found through the champion's data hash.

The pipeline's work folder holds the data of its *last* run, which may be a rejected
challenger. So `register` keeps a sample of every registered run's rows (and the ids of all
of them) under ``<home>/monitoring/reference/data-<data hash>``, and the reference is the
snapshot of the data hash tagged on the version that holds the champion alias now: a
promotion (by the gate, by hand, or a rollback) moves the reference with it, and a rejected
run never replaces it. When no such snapshot exists, the fallback is said, with a warning, in
the report (`reference.warning`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rakuten_mlops.config import Settings
from rakuten_mlops.data.split import PARTS
from rakuten_mlops.errors import MissingInputError
from rakuten_mlops.infra import read_json_or_none, write_json_atomic
from rakuten_mlops.pipelines.monitoring_store import MonitoringDir

PART = "part"  # train / val / test / gold: only held-out rows are scored for the prediction reference
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reference:
    rows: pd.DataFrame  # listings with labels, image_path and `part`
    productids: pd.Series  # every row the champion's run used (for "new labelled data")
    source: str
    champion_version: str | None
    data_hash: str | None = None  # of the rows, when known
    warning: str | None = None  # set when the rows are not the champion's training data

    @property
    def is_champion(self) -> bool:
        return self.warning is None and self.champion_version is not None


def champion_version(settings: Settings) -> str | None:
    """Version holding the champion alias; None without a registry or a champion."""
    default_store = settings.mlflow_registry_uri is None and settings.mlflow_tracking_uri is None
    if default_store and not (settings.home / "mlflow.db").is_file():
        return None  # nothing trained here yet; do not create the tracking database just to ask
    try:
        from rakuten_mlops.lifecycle.registry import client, get_champion

        champ = get_champion(client(settings), settings.model_name)
    except Exception:  # no tracking store yet, or an unreachable server: no champion known
        return None
    return str(champ.version) if champ is not None else None


def champion_data_hash(settings: Settings, version: str) -> str | None:
    """The `data_hash` tag of a registered version (None when unknown)."""
    try:
        from rakuten_mlops.lifecycle.registry import client

        tags = client(settings).get_model_version(settings.model_name, version).tags
    except Exception:  # an unreachable server: the caller falls back, with a warning
        return None
    value = tags.get("data_hash")
    return str(value) if value else None


def data_snapshot_dir(settings: Settings, data_hash: str) -> Path:
    return MonitoringDir.of_home(settings.home).reference / f"data-{data_hash}"


def save_reference_data(
    settings: Settings, work_root: Path, data_hash: str, max_rows: int, seed: int
) -> Path | None:
    """Keep a seeded sample of a run's rows and all their ids, keyed by its data hash (idempotent).

    Called by `register` for every registered run; which snapshot is the reference is decided
    at read time by the champion alias, so a rejected run's snapshot is never used.
    """
    snap = data_snapshot_dir(settings, data_hash)
    if (snap / "info.json").is_file():
        return snap
    rows = _pipeline_rows(work_root)
    if rows is None:
        return None
    sample = rows.sample(n=max_rows, random_state=seed) if len(rows) > max_rows else rows
    snap.mkdir(parents=True, exist_ok=True)
    sample.to_parquet(snap / "rows.parquet")
    rows["productid"].reset_index(drop=True).to_frame().to_parquet(snap / "productids.parquet")
    write_json_atomic(  # written last: its presence says the snapshot is complete
        snap / "info.json",
        {"data_hash": data_hash, "rows": len(rows), "sampled": len(sample), "from": str(work_root)},
    )
    return snap


def _snapshot(snap: Path) -> tuple[pd.DataFrame, pd.Series] | None:
    if (snap / "rows.parquet").is_file() and (snap / "productids.parquet").is_file():
        return pd.read_parquet(snap / "rows.parquet"), pd.read_parquet(snap / "productids.parquet")[
            "productid"
        ]
    return None


def _pipeline_rows(work_root: Path) -> pd.DataFrame | None:
    splits = work_root / "splits"
    if not all((splits / f"{p}.parquet").is_file() for p in PARTS):
        return None
    parts = []
    for part in PARTS:
        df = pd.read_parquet(splits / f"{part}.parquet")
        df[PART] = part
        parts.append(df)
    return pd.concat(parts)


def load_reference(settings: Settings, max_rows: int, seed: int) -> Reference:
    """The champion's training data: the snapshot of its data hash (see the module docstring).

    Fallbacks, each with a loud warning: the pipeline's last run when there is no champion,
    then the streams' initial pool.

    Raises:
        MissingInputError: nothing was ever trained and no streams folder exists.
    """
    mon = MonitoringDir.of_home(settings.home)
    version = champion_version(settings)
    work_root = settings.home / "pipeline"
    why = "no champion yet"
    if version is not None:
        data_hash = champion_data_hash(settings, version)
        for snap in ([data_snapshot_dir(settings, data_hash)] if data_hash else []) + [
            mon.reference / f"v{version}"
        ]:
            found = _snapshot(snap)
            if found is not None:
                return Reference(
                    *found, f"champion v{version} training data (snapshot {snap})", version, data_hash
                )
        registered = read_json_or_none(work_root / "registry" / "registered.json") or {}
        rows = _pipeline_rows(work_root)
        if rows is not None and str(registered.get("version")) == version:
            sample = rows.sample(n=max_rows, random_state=seed) if len(rows) > max_rows else rows
            return Reference(
                sample,
                rows["productid"].reset_index(drop=True),
                f"champion v{version} training data ({work_root / 'splits'})",
                version,
                data_hash,
            )
        why = f"no snapshot of champion v{version}'s training data (data hash {data_hash})"
    rows = _pipeline_rows(work_root) if version is None else None
    if rows is not None:
        sample = rows.sample(n=max_rows, random_state=seed) if len(rows) > max_rows else rows
        warning = f"NOT the champion's training data ({why}): the last pipeline run's rows"
        log.warning("drift reference: %s", warning)
        return Reference(
            sample,
            rows["productid"],
            f"last pipeline run's data ({work_root / 'splits'})",
            version,
            None,
            warning,
        )
    initial = settings.home / "streams" / "initial"
    if initial.is_dir():
        from rakuten_mlops.data.loader import load_dataset
        from rakuten_mlops.data.validation import validate

        clean = validate(load_dataset(initial).frame, check_images=False).clean
        clean[PART] = "train"
        sample = clean.sample(n=max_rows, random_state=seed) if len(clean) > max_rows else clean
        warning = f"NOT the champion's training data ({why}): the streams' initial pool"
        log.warning("drift reference: %s", warning)
        return Reference(
            sample, clean["productid"], f"streams initial pool ({initial})", version, None, warning
        )
    raise MissingInputError(
        "no drift reference: train a model first (`rakuten-mlops pipeline run`) or pass --reference"
    )


def describe(ref: Reference) -> dict[str, Any]:
    return {
        "source": ref.source,
        "champion_version": ref.champion_version,
        "rows": len(ref.rows),
        "training_rows": len(ref.productids),
        "data_hash": ref.data_hash,
        "is_champion": ref.is_champion,
        "warning": ref.warning,
    }
