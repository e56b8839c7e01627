"""Steps: drift report, live performance, retrain decision, decision record, retrain (file in, file out).

A stream DAG calls them in this order::

    ingest_next -> drift_report -> decide_retrain -> (retrain | skip) -> record_decision

`monitor_check` runs drift_report + live_performance + decide_retrain + record_decision at once.
Everything is written under ``<home>/monitoring``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from rakuten_mlops.config import Params, Settings

Source = str | Path | pd.DataFrame | None


def drift_report(
    reference: Source,
    current: Source,
    out_dir: str | Path | None,
    settings: Settings,
    params: Params,
) -> dict[str, Any]:
    """Evidently drift of `current` against `reference`; writes report.html + summary.json, logs to MLflow.

    Args:
        reference: a challenge-layout folder, a parquet/CSV file or a DataFrame; None: the
            champion's training data (``<home>/pipeline/splits/train.parquet``).
        current: same kinds; None: the current batch of the default streams folder.
        out_dir: where to write; None: ``<home>/monitoring/drift/<timestamp>``.

    Returns:
        The JSON summary (drift share, drifted columns, test and score per column, paths).
    """
    raise NotImplementedError


def live_performance(settings: Settings, params: Params) -> dict[str, Any]:
    """Weighted F1 and accuracy per model version over the feedback in the sliding window (app DB)."""
    raise NotImplementedError


def decide_retrain(
    settings: Settings,
    params: Params,
    drift_summary: dict[str, Any] | None = None,
    live: dict[str, Any] | None = None,
    new_labelled_rows: int | None = None,
    streams_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Combine drift share, live F1 and new labelled data against thresholds: `retrain` and `reasons`."""
    raise NotImplementedError


def record_decision(decision: dict[str, Any], settings: Settings, params: Params) -> dict[str, Any]:
    """Append the decision to ``<home>/monitoring/decisions.jsonl``, write latest, log it to MLflow."""
    raise NotImplementedError


def retrain(streams_dir: str | Path | None, settings: Settings, params: Params) -> dict[str, Any]:
    """Run the core pipeline on the enlarged pool; the promotion gate still decides."""
    raise NotImplementedError


def monitor_check(
    settings: Settings,
    params: Params,
    streams_dir: str | Path | None = None,
    reference: Source = None,
    current: Source = None,
) -> dict[str, Any]:
    """Drift report + live performance + retrain decision, recorded; returns the decision."""
    raise NotImplementedError
