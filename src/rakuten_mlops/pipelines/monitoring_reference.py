"""The drift reference: the champion's training data (rows of the pipeline run that produced it).

The pipeline's work folder holds the data of its *last* run, which may be a rejected
challenger; so whenever that run is the champion, a sample of its rows and the ids of all of
them are kept under ``<home>/monitoring/reference/v<version>`` for as long as it stays champion.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Reference:
    rows: pd.DataFrame  # listings with labels, image_path and `part`
    productids: pd.Series  # every row the champion's run used (for "new labelled data")
    source: str
    champion_version: str | None


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
    """The champion's training data (snapshot, else the pipeline's last run, else the streams' initial pool).

    Raises:
        FileNotFoundError: nothing was ever trained and no streams folder exists.
    """
    mon = MonitoringDir.of_home(settings.home)
    version = champion_version(settings)
    work_root = settings.home / "pipeline"
    if version is not None:
        snap = mon.reference / f"v{version}"
        if (snap / "rows.parquet").is_file() and (snap / "productids.parquet").is_file():
            return Reference(
                pd.read_parquet(snap / "rows.parquet"),
                pd.read_parquet(snap / "productids.parquet")["productid"],
                f"champion v{version} training data (snapshot {snap})",
                version,
            )
    registered = read_json_or_none(work_root / "registry" / "registered.json") or {}
    rows = _pipeline_rows(work_root)
    if rows is not None and (version is None or str(registered.get("version")) == version):
        sample = rows.sample(n=max_rows, random_state=seed) if len(rows) > max_rows else rows
        ids = rows["productid"].reset_index(drop=True)
        if version is not None:
            snap = mon.reference / f"v{version}"
            snap.mkdir(parents=True, exist_ok=True)
            sample.to_parquet(snap / "rows.parquet")
            ids.to_frame().to_parquet(snap / "productids.parquet")
            write_json_atomic(
                snap / "info.json", {"version": version, "rows": len(rows), "sampled": len(sample)}
            )
            source = f"champion v{version} training data ({work_root / 'splits'})"
        else:
            source = f"last pipeline run's data ({work_root / 'splits'}; no champion)"
        return Reference(sample, ids, source, version)
    initial = settings.home / "streams" / "initial"
    if initial.is_dir():
        from rakuten_mlops.data.loader import load_dataset
        from rakuten_mlops.data.validation import validate

        clean = validate(load_dataset(initial).frame, check_images=False).clean
        clean[PART] = "train"
        sample = clean.sample(n=max_rows, random_state=seed) if len(clean) > max_rows else clean
        return Reference(
            sample, clean["productid"], f"streams initial pool ({initial}; no champion data)", version
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
    }
