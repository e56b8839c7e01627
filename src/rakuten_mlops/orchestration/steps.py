"""The body of every DAG task: resolve paths and params, call one pipeline step, return a JSON summary.

No ML logic lives here; each function is a few lines around a step of `rakuten_mlops.pipelines`.
Retries are safe: a training step rewrites the same files, `register` reuses the version whose
model hash matches, `promote` sees the alias already set, the stream ingestion of a DAG run is
remembered per run id, and `record_decision` does not append the same decision twice.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from rakuten_mlops.config import Settings
from rakuten_mlops.errors import InvalidInputError, MissingInputError
from rakuten_mlops.infra import exclusive_lock, write_json_atomic
from rakuten_mlops.orchestration.runtime import (
    Lookup,
    RunConfig,
    airflow_variable,
    jsonable,
    mlflow_messages_logged,
    resolve,
)
from rakuten_mlops.pipelines.monitoring_store import MonitoringDir

DataSource = Literal["data_dir", "streams_pool"]
RUNS_LEDGER = "airflow_runs.json"


def safe_name(text: str, limit: int = 80) -> str:
    """A file-name-safe form of a run id or batch name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:limit] or "run"


# ----------------------------------------------------------------------------- training
def training_step(
    step: str, conf: Mapping[str, Any], source: DataSource = "data_dir", variable: Lookup = airflow_variable
) -> dict[str, Any]:
    """Run one step of the training pipeline on the data folder, or on the streams pool."""
    from rakuten_mlops.pipelines.runner import run_step

    cfg = resolve(conf, variable)
    data_dir = None
    if step == "ingest":
        data_dir = _training_data(cfg, source)
        cfg.settings.home.mkdir(parents=True, exist_ok=True)
    with mlflow_messages_logged():  # at INFO in the task log, not on stderr (shown as errors)
        summary = run_step(step, cfg.work, cfg.settings, cfg.params, data_dir)
    return jsonable({"step": step, "work_dir": str(cfg.work.root), **summary})


def _training_data(cfg: RunConfig, source: DataSource) -> Path:
    if source == "streams_pool":
        from rakuten_mlops.simulation.replay.steps import read_state

        pending = read_state(cfg.streams_dir).get("pending")
        if pending:
            raise InvalidInputError(
                f"ingestion of {pending} did not finish: rerun the stream's ingest task first"
            )
        return cfg.pool_dir
    if not cfg.data_dir.is_dir():
        raise MissingInputError(
            f"no data folder at {cfg.data_dir}: set the DAG param data_dir or the Variable rakuten_data_dir, "
            f"or write the sample there (rakuten-mlops data sample --out {cfg.data_dir})"
        )
    return cfg.data_dir


# ----------------------------------------------------------------------------- stream
def ingest_batch(conf: Mapping[str, Any], run_id: str, variable: Lookup = airflow_variable) -> dict[str, Any]:
    """Ingest the next batch of the streams folder, once per DAG run (a retry returns the same batch)."""
    from rakuten_mlops.simulation.replay.steps import ingest_next

    cfg = resolve(conf, variable)
    if not (cfg.streams_dir / "streams.json").is_file():
        raise MissingInputError(
            f"no streams at {cfg.streams_dir}: set the DAG param streams_dir or the Variable "
            f"rakuten_streams_dir, or cut them (rakuten-mlops streams make --out {cfg.streams_dir})"
        )
    ledger = cfg.streams_dir / RUNS_LEDGER
    # Two runs of the stream DAG must not interleave their ingestion.
    with exclusive_lock(cfg.streams_dir / f".{RUNS_LEDGER}.lock"):
        runs = json.loads(ledger.read_text(encoding="utf-8")) if ledger.is_file() else {}
        if run_id in runs:
            return {**runs[run_id], "replayed": True}
        result = jsonable(ingest_next(cfg.streams_dir, cfg.settings, cfg.params))
        result = {**result, "streams_dir": str(cfg.streams_dir), "pool_dir": str(cfg.pool_dir)}
        if result["status"] == "ingested":
            runs[run_id] = result
            write_json_atomic(ledger, runs)
    return result


def drift_report(
    conf: Mapping[str, Any], batch: Mapping[str, Any], run_stamp: str, variable: Lookup = airflow_variable
) -> dict[str, Any]:
    """Drift of the ingested batch against the champion's training data.

    The report folder is ``<stamp of the DAG run>-<batch>``: named like the CLI's reports (newest
    sorts last), and the same on a retry, which overwrites it.
    """
    from rakuten_mlops.pipelines import monitoring

    cfg = resolve(conf, variable)
    out = (
        MonitoringDir.of_home(cfg.settings.home).drift / f"{safe_name(run_stamp)}-{safe_name(batch['batch'])}"
    )
    return jsonable(monitoring.drift_report(None, batch["batch_dir"], out, cfg.settings, cfg.params))


def decide_retrain(
    conf: Mapping[str, Any], drift: Mapping[str, Any], variable: Lookup = airflow_variable
) -> dict[str, Any]:
    """The retrain decision from the drift summary, live F1 and the new labelled rows of the pool."""
    from rakuten_mlops.pipelines import monitoring

    cfg = resolve(conf, variable)
    decision = monitoring.decide_retrain(cfg.settings, cfg.params, dict(drift), streams_dir=cfg.streams_dir)
    return jsonable(decision)


def record_decision(
    conf: Mapping[str, Any],
    decision: Mapping[str, Any],
    run_id: str,
    registered: Mapping[str, Any] | None = None,
    promoted: Mapping[str, Any] | None = None,
    variable: Lookup = airflow_variable,
) -> dict[str, Any]:
    """Record the decision and, when the retrain ran, its retrain record (idempotent per run).

    The retrain record is the one `rakuten-mlops monitor retrain` writes (same function, same
    fields, same ``retrains.jsonl``); the decision carries it under `retrained` as well.
    """
    from rakuten_mlops.pipelines import monitoring
    from rakuten_mlops.simulation.replay.store import read_state

    cfg = resolve(conf, variable)
    entry = {**decision, "airflow_run_id": run_id}
    if decision.get("retrain") and registered is not None:
        data = decision.get("data") or {}
        pool_versions = read_state(cfg.streams_dir).get("versions") or [{}]
        retrained = monitoring.retrain_record(
            cfg.pool_dir,
            dict(registered),
            dict(promoted or {}),
            source="airflow",
            data_hash=registered.get("data_hash") or data.get("data_hash"),
            pool_version=pool_versions[-1].get("version"),
            airflow_run_id=run_id,
        )
        entry["retrained"] = {
            k: v for k, v in monitoring.record_retrain(retrained, cfg.settings).items() if k != "duplicate"
        }
        entry["retrained"].pop("finished_at", None)  # the decision's own id must not change on a retry
    return jsonable(monitoring.record_decision(entry, cfg.settings, cfg.params))


# ----------------------------------------------------------------------------- API


def reload_model(
    connection: Any | None, promoted: Mapping[str, Any] | None = None, run_id: str | None = None
) -> dict[str, Any]:
    """Ask the API to reload the champion, best effort: never raises for an API that is down.

    Skipped (and says so) when the promotion step did not promote or no API is configured.
    When the API cannot be reached or refuses, the model stays registered and promoted: the
    failure is logged as a warning and recorded in ``<home>/monitoring/reloads.jsonl`` (the API
    picks the new champion up at its next alias poll or restart).
    """
    import logging

    from rakuten_mlops.api_client import ApiError
    from rakuten_mlops.infra import append_jsonl
    from rakuten_mlops.orchestration import api

    settings = Settings()
    version = (promoted or {}).get("version")
    if promoted is not None and not promoted.get("promote"):
        return {"reloaded": False, "skipped": True, "reason": f"version {version} was not promoted"}
    target = api.resolve_target(connection, settings)
    if target is None:
        return {
            "reloaded": False,
            "skipped": True,
            "reason": "no API configured (connection rakuten_api or RAKUTEN_API_URL)",
        }
    try:
        result: dict[str, Any] = {"reloaded": True, **api.reload_model(target)}
    except ApiError as exc:
        logging.getLogger(__name__).warning(
            "the champion v%s is promoted but the API did not reload it: %s", version, exc
        )
        result = {"reloaded": False, "skipped": False, "url": target.url, "error": str(exc)}
    entry = {
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "airflow_run_id": run_id,
        "champion_version": version,
        **{k: result.get(k) for k in ("reloaded", "url", "error", "changed")},
    }
    append_jsonl(MonitoringDir.of_home(settings.home).reloads_log, entry)
    return jsonable(result)


# ----------------------------------------------------------------------------- batch scoring
def score_catalog(
    conf: Mapping[str, Any],
    run_stamp: str,
    variable: Lookup = airflow_variable,
    event_version: str | None = None,
) -> dict[str, Any]:
    """Score the catalog with the champion into ``<scores_dir>/<run stamp>`` (Parquet).

    The model is the param `model_uri` when set, else the version a champion event named
    (`event_version`), else whatever holds the champion alias now.

    The engine is the DAG param `engine`: `local` streams the catalog in this task (`predict`),
    `spark` runs `mlflow.pyfunc.spark_udf` on the Spark `master`. The output folder belongs to
    this DAG run: a retry removes what a failed try left there and scores again.
    """
    import shutil

    from rakuten_mlops.orchestration.runtime import pick

    settings = Settings()
    catalog = pick(conf, "catalog_path", variable)
    if catalog is None:
        raise MissingInputError(
            "no catalog to score: set the DAG param catalog_path or the Variable rakuten_catalog_path "
            "(a CSV/Parquet file or a folder of part files with the X_test_update.csv columns)"
        )
    images = pick(conf, "images_dir", variable)
    scores_dir = pick(conf, "scores_dir", variable)
    root = Path(scores_dir).expanduser() if scores_dir else settings.home / "scores"
    out = root / safe_name(run_stamp)
    if out.exists():
        shutil.rmtree(out)
    rejects = out.with_name(f"{out.name}.rejects")  # the Spark engine's (predict replaces its own)
    if rejects.exists():
        shutil.rmtree(rejects)
    engine = str(conf.get("engine") or "local")
    chunk_size = int(conf.get("chunk_size") or 10_000)
    model_uri = conf.get("model_uri") or None
    if model_uri is None and event_version is not None:
        model_uri = f"models:/{settings.model_name}/{event_version}"
    if engine == "local":
        from rakuten_mlops.pipelines.predict import predict_file

        result = predict_file(catalog, out, settings, images, model_uri, chunk_size)
    elif engine == "spark":
        from rakuten_mlops.pipelines.spark_scoring import score_with_spark

        master = str(conf.get("master") or "local[*]")
        result = score_with_spark(catalog, out, settings, images, model_uri, master, chunk_size)
    else:
        raise InvalidInputError(f"engine must be 'local' or 'spark', not {engine!r}")
    return jsonable({"engine": engine, **result})


def send_traffic(conf: Mapping[str, Any], connection: Any | None, run_id: str) -> dict[str, Any]:
    """Send generated (or `data_dir`) listings to the API at `rate` per second for `duration` seconds."""
    from rakuten_mlops.orchestration.api import resolve_target, send_traffic

    settings = Settings()
    target = resolve_target(connection, settings)
    if target is None:
        raise InvalidInputError("no API configured: add the connection rakuten_api or set RAKUTEN_API_URL")
    data_dir = Path(str(conf["data_dir"])).expanduser() if conf.get("data_dir") else None
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    report = send_traffic(
        target,
        rate=float(conf.get("rate", 5.0)),
        duration_s=float(conf.get("duration", 60.0)),
        concurrency=int(conf.get("concurrency", 4)),
        batch_size=int(conf.get("batch_size", 1)),
        data_dir=data_dir,
        report_path=settings.home / "traffic" / f"{stamp}-{safe_name(run_id)}.json",
    )
    return jsonable(report)
