"""Steps: drift report, live performance, retrain decision, decision record, retrain (file in, file out).

A stream DAG calls them in this order::

    ingest_next -> drift_report -> decide_retrain -> (retrain | skip) -> record_decision

`monitor_check` runs drift_report + live_performance + decide_retrain + record_decision at once.
Everything is written under ``<home>/monitoring``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

from rakuten_mlops.config import Params, Settings
from rakuten_mlops.data.schema import IMAGE_PATH
from rakuten_mlops.errors import InvalidInputError
from rakuten_mlops.infra import append_jsonl, read_json_or_none, read_jsonl, write_json_atomic
from rakuten_mlops.monitoring import decision as retrain_rules
from rakuten_mlops.monitoring.drift import DriftResult, compute_drift
from rakuten_mlops.monitoring.features import monitoring_frame
from rakuten_mlops.pipelines.monitoring_reference import Reference, champion_version, describe, load_reference
from rakuten_mlops.pipelines.monitoring_shadow import shadow_comparison
from rakuten_mlops.pipelines.monitoring_sources import (
    Source,
    champion_predictions,
    count_new_labelled_rows,
    current_batch,
    image_bytes,
    load_source,
)
from rakuten_mlops.pipelines.monitoring_store import MonitoringDir, retrain_tried_on
from rakuten_mlops.pipelines.monitoring_tracking import log_decision, log_drift
from rakuten_mlops.pipelines.progress import NullProgress, Progress


def save_drift(result: DriftResult, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``summary.json`` of a drift result into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html_path, json_path = out / "report.html", out / "summary.json"
    result.summary["html_path"] = str(html_path)
    result.summary["summary_path"] = str(json_path)
    html_path.write_text(result.html(), encoding="utf-8")
    write_json_atomic(json_path, result.summary, sort_keys=False)
    return html_path, json_path


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
            champion's training data (``<home>/pipeline/splits/*.parquet``).
        current: same kinds, or ``"predictions[:N]"`` for the last N logged predictions; None:
            the current batch of the default streams folder.
        out_dir: where to write; None: ``<home>/monitoring/drift/<timestamp>-<current>``.

    Returns:
        The JSON summary (drift share, drifted columns, test and score per column, paths).
    """
    mp = params.monitoring.drift
    mon = MonitoringDir.of_home(settings.home)
    ref: Reference | None = None
    if reference is None:
        ref = load_reference(settings, mp.reference_max_rows, params.seed)
        ref_rows, ref_info = ref.rows, describe(ref)
    else:
        ref_rows, ref_info = load_source(reference, settings)
    cur_rows, cur_info = (
        current_batch(settings) if current is None else load_source(current, settings, mp.prediction_window)
    )
    predicted_ref, predicted_cur, skipped_prediction = champion_predictions(
        ref_rows, cur_rows, settings, enabled=mp.predictions
    )
    with_images = IMAGE_PATH in ref_rows.columns and IMAGE_PATH in cur_rows.columns
    ref_m = monitoring_frame(
        ref_rows,
        images=image_bytes(ref_rows) if with_images else None,
        predicted=predicted_ref,
        text_max_chars=mp.text_max_chars,
    )
    cur_m = monitoring_frame(
        cur_rows,
        images=image_bytes(cur_rows) if with_images else None,
        predicted=predicted_cur,
        text_max_chars=mp.text_max_chars,
    )
    label = cur_info.get("label", "current")
    result = compute_drift(
        ref_m,
        cur_m,
        mp,
        seed=params.seed,
        extra={
            "title": f"Drift of {label} against {ref_info.get('source', 'the reference')}"
            + (" (WARNING: not the champion's training data)" if ref_info.get("warning") else ""),
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "reference": ref_info,
            "current": cur_info,
        },
    )
    if skipped_prediction and "predicted_code" not in result.summary["columns"]:
        result.summary["skipped_columns"]["predicted_code"] = skipped_prediction
    out = Path(out_dir) if out_dir is not None else mon.new_drift_dir(label)
    save_drift(result, out)
    summary = result.summary
    if mp.log_to_mlflow:
        summary["mlflow_run_id"] = log_drift(summary, out, settings)
        write_json_atomic(out / "summary.json", summary)
    write_json_atomic(mon.latest_drift, summary)
    return summary


def live_performance(settings: Settings, params: Params) -> dict[str, Any]:
    """Weighted F1 and accuracy per model version over the feedback in the sliding window (app DB)."""
    from rakuten_mlops.monitoring.live import live_metrics
    from rakuten_mlops.pipelines.monitoring_live import read_feedback

    lp = params.monitoring.live
    now = dt.datetime.now(dt.UTC)
    try:
        feedback = read_feedback(
            settings.app_database_url, now - dt.timedelta(days=lp.window_days), lp.max_feedback
        )
        live = live_metrics(feedback, now=now, window_days=lp.window_days, max_feedback=lp.max_feedback)
    except (ConnectionError, ImportError) as exc:
        live = {
            "computed_at": now.isoformat(timespec="seconds"),
            "error": str(exc),
            "versions": {},
            "overall": {"n": 0, "weighted_f1": None, "accuracy": None},
        }
    live["champion_version"] = champion_version(settings)
    live["shadow"] = shadow_comparison(settings, params)  # challenger against champion, same listings
    write_json_atomic(MonitoringDir.of_home(settings.home).latest_live, live)
    return live


def decide_retrain(
    settings: Settings,
    params: Params,
    drift_summary: dict[str, Any] | None = None,
    live: dict[str, Any] | None = None,
    new_labelled_rows: int | None = None,
    streams_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Combine drift share, live F1 and new labelled data against thresholds: `retrain` and `reasons`.

    Missing inputs are read: the latest drift summary, live performance from the app DB, and
    the pool rows of `streams_dir` (default ``<home>/streams``) the champion was not trained on.
    """
    mp = params.monitoring
    mon = MonitoringDir.of_home(settings.home)
    drift_summary = drift_summary if drift_summary is not None else read_json_or_none(mon.latest_drift)
    live = live if live is not None else live_performance(settings, params)
    version = live.get("champion_version") or champion_version(settings)
    scores = live.get("versions", {}).get(str(version)) if version else None
    scores = scores or (live.get("overall") if not version else None) or {}
    new_rows, training_rows, data = count_new_labelled_rows(settings, params, streams_dir)
    if new_labelled_rows is not None:
        new_rows = new_labelled_rows
    decision = retrain_rules.decide_retrain(
        mp.decision,
        drift=drift_summary,
        live_f1=scores.get("weighted_f1"),
        live_n=int(scores.get("n") or 0),
        new_labelled_rows=new_rows,
        training_rows=training_rows,
        already_tried=retrain_tried_on(mon, data.get("data_hash"), version),
    )
    return {
        **decision.as_dict(),
        "champion_version": version,
        "live": {"model_version": version, **scores},
        "new_labelled_rows": new_rows,
        "training_rows": training_rows,
        "data": data,
        "drift": _drift_brief(drift_summary),
    }


def record_decision(decision: dict[str, Any], settings: Settings, params: Params) -> dict[str, Any]:
    """Append the decision to ``<home>/monitoring/decisions.jsonl``, write latest, log it to MLflow.

    Idempotent: recording the same decision twice (a retried DAG task) appends nothing.
    """
    mon = MonitoringDir.of_home(settings.home)
    content = {k: v for k, v in decision.items() if k not in ("recorded_at", "id", "mlflow_run_id")}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]
    for past in reversed(read_jsonl(mon.decisions_log)):
        if past.get("id") == digest:
            return {**past, "duplicate": True}
    record = {**content, "id": digest, "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    if params.monitoring.drift.log_to_mlflow:
        record["mlflow_run_id"] = log_decision(record, settings)
    append_jsonl(mon.decisions_log, record)
    write_json_atomic(mon.latest_decision, record)
    return record


RETRAIN_RECORD_FIELDS = (
    "kind", "finished_at", "source", "airflow_run_id", "pool_dir", "pool_version", "data_hash",
    "registered_version", "reused_version", "same_inputs_as_champion", "promoted", "promotion_reasons",
    "champion_before", "interval",
)  # fmt: skip


def retrain_record(
    pool_dir: str | Path,
    registered: dict[str, Any],
    promotion: dict[str, Any],
    *,
    source: str,
    data_hash: str | None = None,
    pool_version: str | None = None,
    airflow_run_id: str | None = None,
) -> dict[str, Any]:
    """The one record of a retrain, whoever ran it (`monitor retrain`, the stream DAG).

    Fields: :data:`RETRAIN_RECORD_FIELDS`. It goes to ``<home>/monitoring/retrains.jsonl``
    (:func:`record_retrain`) and, for the stream DAG, also under `retrained` in its decision.
    """
    return {
        "kind": "retrain",
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "source": source,
        "airflow_run_id": airflow_run_id,
        "pool_dir": str(pool_dir),
        "pool_version": pool_version,
        "data_hash": data_hash or registered.get("data_hash"),
        "registered_version": str(registered.get("version")) if registered.get("version") else None,
        "reused_version": bool(registered.get("reused")),
        "same_inputs_as_champion": bool(registered.get("same_inputs_as_champion")),
        "promoted": bool(promotion.get("promote")),
        "promotion_reasons": list(promotion.get("reasons", [])),
        "champion_before": promotion.get("champion_before"),
        "interval": promotion.get("interval"),
    }


def record_retrain(record: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Append a :func:`retrain_record` to ``retrains.jsonl`` once (a retried task appends nothing)."""
    path = MonitoringDir.of_home(settings.home).retrains_log
    key = ("airflow_run_id", "registered_version", "data_hash")
    if record.get("airflow_run_id"):
        for past in read_jsonl(path):
            if all(past.get(k) == record.get(k) for k in key):
                return {**past, "duplicate": True}
    append_jsonl(path, record)
    return record


def retrain(
    streams_dir: str | Path | None, settings: Settings, params: Params, progress: Progress | None = None
) -> dict[str, Any]:
    """Run the core pipeline on the enlarged pool; the promotion gate still decides."""
    from rakuten_mlops.pipelines.runner import run_pipeline
    from rakuten_mlops.simulation.replay.steps import default_streams_dir, read_state

    root = Path(streams_dir) if streams_dir is not None else default_streams_dir(settings)
    state = read_state(root)
    if state.get("pending"):
        raise InvalidInputError(
            f"ingestion of {state['pending']} did not finish: run `rakuten-mlops streams next` again"
        )
    summary = run_pipeline(root / "pool", settings, params, progress=progress or NullProgress())
    record = retrain_record(
        root / "pool",
        summary["register"],
        summary["promote"],
        source="cli",
        data_hash=summary["ingest"]["data_hash"],
        pool_version=state["versions"][-1]["version"],
    )
    return record_retrain(record, settings)


def monitor_check(
    settings: Settings,
    params: Params,
    streams_dir: str | Path | None = None,
    reference: Source = None,
    current: Source = None,
) -> dict[str, Any]:
    """Drift report + live performance + retrain decision, recorded; returns the decision."""
    drift = drift_report(reference, current, None, settings, params)
    live = live_performance(settings, params)
    decision = decide_retrain(settings, params, drift, live, streams_dir=streams_dir)
    decision["report_html"] = drift.get("html_path")
    return record_decision(decision, settings, params)


# ----------------------------------------------------------------------------- helpers
def _drift_brief(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    keys = (
        "drift_share",
        "drifted_columns",
        "n_columns",
        "html_path",
        "summary_path",
        "current",
        "reference",
    )
    return {k: summary.get(k) for k in keys}
