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
from typing import Any, TypeAlias

import pandas as pd

from rakuten_mlops.config import Params, Settings
from rakuten_mlops.data.schema import IMAGE_PATH, LABEL, X_TEST, X_TRAIN
from rakuten_mlops.monitoring.decision import decide
from rakuten_mlops.monitoring.drift import compute_drift
from rakuten_mlops.monitoring.features import monitoring_frame
from rakuten_mlops.monitoring.params import monitoring_params
from rakuten_mlops.monitoring.reference import PART, Reference, champion_version, describe, load_reference
from rakuten_mlops.monitoring.store import (
    MonitoringDir,
    append_jsonl,
    read_json_or_none,
    read_jsonl,
    write_json_atomic,
)
from rakuten_mlops.pipelines.progress import NullProgress, Progress

Source: TypeAlias = str | Path | pd.DataFrame | None
PREDICTIONS = "predictions"  # `current="predictions"` (or "predictions:500"): the last logged predictions
MONITORING_EXPERIMENT_SUFFIX = "-monitoring"


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
    mp = monitoring_params(params).drift
    mon = MonitoringDir.of_home(settings.home)
    ref: Reference | None = None
    if reference is None:
        ref = load_reference(settings, mp.reference_max_rows, params.seed)
        ref_rows, ref_info = ref.rows, describe(ref)
    else:
        ref_rows, ref_info = _load_source(reference, settings)
    cur_rows, cur_info = (
        _current_batch(settings) if current is None else _load_source(current, settings, mp.prediction_window)
    )
    predicted_ref, predicted_cur = None, None
    skipped_prediction = None if mp.predictions else "disabled (monitoring.drift.predictions: false)"
    if "predicted_code" in cur_rows.columns:
        predicted_cur = cur_rows["predicted_code"].tolist()
    if mp.predictions:
        model, why = _load_champion(settings)
        if model is None:
            skipped_prediction = why
        else:
            held_out = (
                ref_rows[PART] != "train" if PART in ref_rows.columns else pd.Series(True, ref_rows.index)
            )
            codes = pd.Series(None, index=ref_rows.index, dtype=object)
            if held_out.any():
                codes[held_out] = _predict(model, ref_rows[held_out], settings)
            predicted_ref = codes.tolist()
            if predicted_cur is None:
                predicted_cur = _predict(model, cur_rows, settings)
    with_images = IMAGE_PATH in ref_rows.columns and IMAGE_PATH in cur_rows.columns
    ref_m = monitoring_frame(
        ref_rows, with_images=with_images, predicted=predicted_ref, text_max_chars=mp.text_max_chars
    )
    cur_m = monitoring_frame(
        cur_rows, with_images=with_images, predicted=predicted_cur, text_max_chars=mp.text_max_chars
    )
    label = cur_info.get("label", "current")
    result = compute_drift(
        ref_m,
        cur_m,
        mp,
        seed=params.seed,
        extra={
            "title": f"Drift of {label} against {ref_info.get('source', 'the reference')}",
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "reference": ref_info,
            "current": cur_info,
        },
    )
    if skipped_prediction and "predicted_code" not in result.summary["columns"]:
        result.summary["skipped_columns"]["predicted_code"] = skipped_prediction
    out = Path(out_dir) if out_dir is not None else mon.new_drift_dir(label)
    result.save(out)
    summary = result.summary
    if mp.log_to_mlflow:
        summary["mlflow_run_id"] = _log_drift(summary, out, settings)
        write_json_atomic(out / "summary.json", summary)
    write_json_atomic(mon.latest_drift, summary)
    return summary


def live_performance(settings: Settings, params: Params) -> dict[str, Any]:
    """Weighted F1 and accuracy per model version over the feedback in the sliding window (app DB)."""
    from rakuten_mlops.monitoring.live import live_metrics, read_feedback

    lp = monitoring_params(params).live
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
    mp = monitoring_params(params)
    mon = MonitoringDir.of_home(settings.home)
    drift_summary = drift_summary if drift_summary is not None else read_json_or_none(mon.latest_drift)
    live = live if live is not None else live_performance(settings, params)
    version = live.get("champion_version") or champion_version(settings)
    scores = live.get("versions", {}).get(str(version)) if version else None
    scores = scores or (live.get("overall") if not version else None) or {}
    new_rows, training_rows, data = _new_labelled_rows(settings, params, streams_dir)
    if new_labelled_rows is not None:
        new_rows = new_labelled_rows
    decision = decide(
        mp.decision,
        drift=drift_summary,
        live_f1=scores.get("weighted_f1"),
        live_n=int(scores.get("n") or 0),
        new_labelled_rows=new_rows,
        training_rows=training_rows,
        already_tried=_tried_on(settings, data.get("data_hash"), version),
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
    if monitoring_params(params).drift.log_to_mlflow:
        record["mlflow_run_id"] = _log_decision(record, settings)
    append_jsonl(mon.decisions_log, record)
    write_json_atomic(mon.latest_decision, record)
    return record


def retrain(
    streams_dir: str | Path | None, settings: Settings, params: Params, progress: Progress | None = None
) -> dict[str, Any]:
    """Run the core pipeline on the enlarged pool; the promotion gate still decides."""
    from rakuten_mlops.pipelines.streams import default_streams_dir, read_state
    from rakuten_mlops.pipelines.training import run_pipeline

    root = Path(streams_dir) if streams_dir is not None else default_streams_dir(settings)
    state = read_state(root)
    if state.get("pending"):
        raise ValueError(
            f"ingestion of {state['pending']} did not finish: run `rakuten-mlops streams next` again"
        )
    summary = run_pipeline(root / "pool", settings, params, progress=progress or NullProgress())
    promotion = summary["promote"]
    result = {
        "pool_dir": str(root / "pool"),
        "data_hash": summary["ingest"]["data_hash"],
        "pool_version": state["versions"][-1]["version"],
        "registered_version": summary["register"]["version"],
        "promoted": bool(promotion.get("promote")),
        "promotion_reasons": promotion.get("reasons", []),
        "champion_before": promotion.get("champion_before"),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    append_jsonl(MonitoringDir.of_home(settings.home).root / "retrains.jsonl", result)
    return result


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
    keys = ("drift_share", "drifted_columns", "n_columns", "html_path", "summary_path", "current")
    return {k: summary.get(k) for k in keys}


def _tried_on(settings: Settings, data_hash: str | None, champion: str | None) -> str | None:
    """Why not to retrain again: a retrain on `data_hash` already ran and the champion did not change.

    Retrains are found in ``retrains.jsonl`` (`retrain`, `monitor check --retrain`) and in decision
    records carrying a `retrained` entry (the stream DAG's retrain branch).
    """
    if not data_hash:
        return None
    mon = MonitoringDir.of_home(settings.home)
    for past in reversed(read_jsonl(mon.root / "retrains.jsonl")):
        if (
            past.get("data_hash") == data_hash
            and not past.get("promoted")
            and past.get("champion_before") == champion
        ):
            return f"data version {data_hash} gave version {past.get('registered_version')}, not promoted"
    for past in reversed(read_jsonl(mon.decisions_log)):
        done = past.get("retrained") or {}
        same_data = (past.get("data") or {}).get("data_hash") == data_hash
        if done and same_data and not done.get("promoted") and past.get("champion_version") == champion:
            return f"data version {data_hash} gave version {done.get('registered_version')}, not promoted"
    return None


def _current_batch(settings: Settings) -> tuple[pd.DataFrame, dict[str, Any]]:
    from rakuten_mlops.pipelines.streams import current_batch_dir, default_streams_dir

    folder = current_batch_dir(default_streams_dir(settings))
    rows, info = _load_source(folder, settings)
    return rows, {**info, "label": folder.name}


def _load_source(
    source: Source, settings: Settings, window: int = 1000
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Listings (designation, description, [image_path], [prdtypecode]) from any accepted source."""
    from rakuten_mlops.data.loader import load_dataset, load_listings_file

    if isinstance(source, pd.DataFrame):
        return source, {"source": "DataFrame", "rows": len(source), "label": "frame"}
    text = str(source)
    if text == PREDICTIONS or text.startswith(PREDICTIONS + ":"):
        from rakuten_mlops.monitoring.live import read_recent_predictions

        n = int(text.split(":", 1)[1]) if ":" in text else window
        rows = read_recent_predictions(settings.app_database_url, n)
        if rows.empty:
            raise FileNotFoundError("no logged predictions in the app database yet")
        return rows, {
            "source": f"last {len(rows)} logged predictions",
            "rows": len(rows),
            "label": "predictions",
        }
    path = Path(text)
    if path.is_dir():
        split = "train" if (path / X_TRAIN).is_file() or not (path / X_TEST).is_file() else "test"
        frame = load_dataset(path, split=split).frame
        if LABEL in frame.columns:
            frame[LABEL] = frame[LABEL].where(frame[LABEL].astype(str).str.strip() != "")
    elif path.suffix == ".parquet" and path.is_file():
        frame = pd.read_parquet(path)
    elif path.suffix == ".csv" and path.is_file():
        frame = load_listings_file(path).frame
    else:
        raise FileNotFoundError(f"{path}: expected a data folder, a .parquet or an X_*.csv file")
    return frame, {
        "source": str(path.resolve()),
        "rows": len(frame),
        "label": path.stem if path.is_file() else path.name,
    }


def _load_champion(settings: Settings) -> tuple[Any, str | None]:
    if champion_version(settings) is None:
        return None, "no champion model to predict with"
    from rakuten_mlops.models.pyfunc import load_product_classifier
    from rakuten_mlops.pipelines.predict import champion_uri
    from rakuten_mlops.training.registry import configure_mlflow

    try:
        configure_mlflow(settings)
        return load_product_classifier(champion_uri(settings)), None
    except Exception as exc:  # a broken artifact must not stop the data drift report
        return None, f"champion model cannot be loaded: {exc}"


def _predict(model: Any, rows: pd.DataFrame, settings: Settings) -> list[int]:
    frame = rows.copy()
    frame["designation"] = frame["designation"].fillna("").astype(str)
    frame["description"] = frame.get("description", pd.Series("", index=frame.index)).fillna("").astype(str)
    kwargs: dict[str, Any] = {}
    if getattr(model, "uses_images", False) and model.embedder is not None:
        from rakuten_mlops.features.images import EmbeddingCache

        kwargs["cache"] = EmbeddingCache(
            settings.cache_dir / "embeddings", model.embedder.backbone, model.embedder.image_size
        )
    return [int(c) for c in model.predict_frame(frame, **kwargs)["prdtypecode"]]


def _new_labelled_rows(
    settings: Settings, params: Params, streams_dir: str | Path | None
) -> tuple[int, int | None, dict[str, Any]]:
    """(valid pool rows the champion's run did not use, rows that run used, where the pool stands)."""
    from rakuten_mlops.data.loader import load_dataset
    from rakuten_mlops.data.validation import validate
    from rakuten_mlops.pipelines.streams import default_streams_dir, read_state

    root = Path(streams_dir) if streams_dir is not None else default_streams_dir(settings)
    if not (root / "state.json").is_file():
        return 0, None, {"streams_dir": None, "note": f"no streams folder at {root}"}
    state = read_state(root)
    pool = validate(load_dataset(root / "pool").frame, check_images=False).clean
    try:
        ref = load_reference(settings, monitoring_params(params).drift.reference_max_rows, params.seed)
        known, training_rows = set(ref.productids.astype("int64")), len(ref.productids)
    except FileNotFoundError:
        known, training_rows = set(), None
    new = int((~pool["productid"].astype("int64").isin(known)).sum())
    data = {
        "streams_dir": str(root),
        "current_batch": state["current"],
        "pool_rows": len(pool),
        "data_hash": state["versions"][-1]["data_hash"],
    }
    return new, training_rows, data


def _monitoring_run(settings: Settings, run_name: str, tags: dict[str, str]) -> tuple[Any, str]:
    from rakuten_mlops.training.registry import client

    c = client(settings)
    name = settings.experiment_name + MONITORING_EXPERIMENT_SUFFIX
    exp = c.get_experiment_by_name(name)
    exp_id = (
        exp.experiment_id
        if exp is not None
        else c.create_experiment(name, artifact_location=settings.artifact_location)
    )
    run = c.create_run(exp_id, run_name=run_name, tags=tags)
    return c, run.info.run_id


def _log_drift(summary: dict[str, Any], out: Path, settings: Settings) -> str:
    settings.home.mkdir(parents=True, exist_ok=True)
    label = summary.get("current", {}).get("label", "current")
    c, run_id = _monitoring_run(settings, f"drift-{label}", {"kind": "drift", "current": str(label)})
    c.log_metric(run_id, "drift_share", float(summary["drift_share"]))
    c.log_metric(run_id, "drifted_columns", float(summary["n_drifted"]))
    for col, info in summary["columns"].items():
        c.log_metric(run_id, f"drifted.{col}", 1.0 if info["drifted"] else 0.0)
        if info.get("score") is not None:
            c.log_metric(run_id, f"score.{col}", float(info["score"]))
    c.log_artifact(run_id, str(out / "report.html"), artifact_path="drift")
    c.log_artifact(run_id, str(out / "summary.json"), artifact_path="drift")
    c.set_terminated(run_id)
    return run_id


def _log_decision(record: dict[str, Any], settings: Settings) -> str:
    batch = (record.get("data") or {}).get("current_batch") or "none"
    c, run_id = _monitoring_run(
        settings, f"decision-{batch}", {"kind": "retrain-decision", "decision": record["decision"]}
    )
    c.set_tag(run_id, "reasons", "; ".join(record["reasons"])[:5000])
    c.log_metric(run_id, "retrain", 1.0 if record["retrain"] else 0.0)
    c.log_metric(run_id, "new_labelled_rows", float(record["new_labelled_rows"]))
    c.log_dict(run_id, record, "decision.json")
    c.set_terminated(run_id)
    return run_id
