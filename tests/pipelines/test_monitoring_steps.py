"""Step functions a DAG calls: decision inputs from disk, idempotent records, the prediction log as data."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rakuten_mlops.cli import app
from rakuten_mlops.config import Params, Settings
from rakuten_mlops.infra import append_jsonl
from rakuten_mlops.pipelines.monitoring import decide_retrain, drift_report, record_decision
from rakuten_mlops.simulation.replay.steps import ingest_next, make_streams
from tests.helpers import make_settings

NO_LIVE = {"versions": {}, "overall": {"n": 0}, "champion_version": None}


def test_decision_counts_new_rows_against_the_reference(
    sample_dir: Path, settings: Settings, params: Params
) -> None:
    streams = settings.home / "streams"
    make_streams(sample_dir, streams, 3, None, settings, params)
    first = ingest_next(streams, settings, params)
    # No model yet: the reference is the initial pool, so the new rows are the ingested batch.
    decision = decide_retrain(settings, params, {"drift_share": 0.5, "drifted_columns": ["text"]}, NO_LIVE)
    assert decision["new_labelled_rows"] == first["accepted"]
    assert decision["training_rows"] == first["pool_rows"] - first["accepted"]
    assert decision["retrain"] and decision["data"]["current_batch"] == "batch_001"
    assert decision["data"]["data_hash"] == first["data_hash"]
    tried = {
        "data_hash": first["data_hash"],
        "promoted": False,
        "champion_before": None,
        "registered_version": "2",
    }
    append_jsonl(settings.home / "monitoring" / "retrains.jsonl", tried)
    again = decide_retrain(settings, params, {"drift_share": 0.5, "drifted_columns": ["text"]}, NO_LIVE)
    assert not again["retrain"] and again["reasons"][0].startswith("already retrained on this data")


def test_a_dag_retrain_recorded_with_its_decision_counts_as_tried(
    sample_dir: Path, settings: Settings, params: Params
) -> None:
    streams = settings.home / "streams"
    make_streams(sample_dir, streams, 3, None, settings, params)
    ingest_next(streams, settings, params)
    drift = {"drift_share": 0.5, "drifted_columns": ["text"]}
    decision = decide_retrain(settings, params, drift, NO_LIVE)
    assert decision["retrain"]
    retrained = {"registered_version": "2", "promoted": False, "promotion_reasons": ["worse"]}
    record_decision({**decision, "retrained": retrained}, settings, params)
    assert not decide_retrain(settings, params, drift, NO_LIVE)["retrain"]
    ingest_next(streams, settings, params)  # new data: worth trying again
    assert decide_retrain(settings, params, drift, NO_LIVE)["retrain"]


def test_recording_the_same_decision_twice_appends_once(settings: Settings, params: Params) -> None:
    decision = {
        "retrain": False,
        "decision": "skip",
        "reasons": ["calm"],
        "data": {"current_batch": "batch_001"},
    }
    first = record_decision(decision, settings, params)
    second = record_decision(dict(decision), settings, params)  # a retried DAG task
    assert second["duplicate"] and second["id"] == first["id"]
    log = (settings.home / "monitoring" / "decisions" / "decisions.jsonl").read_text().splitlines()
    assert len(log) == 1
    assert (
        json.loads((settings.home / "monitoring" / "decisions" / "latest.json").read_text())["id"]
        == first["id"]
    )


def test_current_data_can_be_the_prediction_log(sample_dir: Path, tmp_path: Path, params: Params) -> None:
    from rakuten_mlops.appdb import (
        PredictionRecord,
        create_schema,
        make_engine,
        session_factory,
        session_scope,
    )

    url = f"sqlite:///{tmp_path / 'app.db'}"
    settings = make_settings(tmp_path / "home", database_url=url)
    with pytest.raises(FileNotFoundError, match="no logged predictions"):
        drift_report(sample_dir, "predictions", tmp_path / "r0", settings, params)
    engine = make_engine(url)
    create_schema(engine)
    now = dt.datetime.now(dt.UTC)
    with session_scope(session_factory(engine)) as session:
        for i in range(120):
            session.add(
                PredictionRecord(
                    id=str(uuid.uuid4()),
                    created_at=now,
                    username="u",
                    model_name="m",
                    model_version="1",
                    designation=f"Brand new garden pool {i} with free shipping",
                    description="",
                    image_sha256=None,
                    prdtypecode=2583,
                    probability=0.9,
                    top_k=[],
                    modalities="text",
                    latency_ms=1.0,
                )
            )
    engine.dispose()
    summary = drift_report(sample_dir, "predictions:100", tmp_path / "r1", settings, params)
    assert summary["current"]["rows"] == 100
    assert {"language", "description_empty", "text"} <= set(summary["drifted_columns"])
    assert "label" in summary["skipped_columns"]


def test_cli_streams_and_drift(home: Path, sample_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    params_path = tmp_path / "params.yaml"
    params_path.write_text("monitoring:\n  drift:\n    log_to_mlflow: false\n    predictions: false\n")
    p = ["--params", str(params_path)]
    out = tmp_path / "streams"
    for args in (
        [
            "streams",
            "make",
            "--data-dir",
            str(sample_dir),
            "--out",
            str(out),
            "--n",
            "2",
            "--drift",
            "2:language",
            *p,
        ],
        ["streams", "next", "--streams-dir", str(out), *p],
        ["streams", "status", "--streams-dir", str(out)],
    ):
        result = runner.invoke(app, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    assert "1/2 batches ingested; current batch_001" in result.output
    report = tmp_path / "report"
    result = runner.invoke(
        app,
        [
            "drift",
            "--reference",
            str(out / "initial"),
            "--current",
            str(out / "batches" / "batch_002"),
            "--out",
            str(report),
            *p,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "language" in json.loads((report / "summary.json").read_text())["drifted_columns"]
    bad = runner.invoke(
        app,
        [
            "streams",
            "make",
            "--data-dir",
            str(sample_dir),
            "--out",
            str(tmp_path / "s2"),
            "--n",
            "2",
            "--drift",
            "7:language",
            *p,
        ],
    )
    assert bad.exit_code == 2 and "there are 2 batches" in bad.output


def test_cli_and_dag_retrains_write_one_record_format_to_one_log(
    sample_dir: Path, settings: Settings, params: Params, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rakuten_mlops.infra import read_jsonl
    from rakuten_mlops.orchestration import steps
    from rakuten_mlops.orchestration.runtime import no_variables
    from rakuten_mlops.pipelines.monitoring import RETRAIN_RECORD_FIELDS, record_retrain, retrain_record
    from rakuten_mlops.pipelines.monitoring_store import MonitoringDir

    monkeypatch.setenv("RAKUTEN_HOME", str(settings.home))
    streams = settings.home / "streams"
    make_streams(sample_dir, streams, 3, None, settings, params)
    batch = ingest_next(streams, settings, params)
    registered = {"version": "2", "reused": False, "data_hash": batch["data_hash"]}
    promotion = {"promote": False, "reasons": ["worse"], "champion_before": "1", "interval": None}
    # `monitor retrain` builds its record with retrain_record and writes it with record_retrain.
    record_retrain(retrain_record(streams / "pool", registered, promotion, source="cli"), settings)
    decision = decide_retrain(settings, params, {"drift_share": 0.5, "drifted_columns": ["text"]}, NO_LIVE)
    conf = {"streams_dir": str(streams)}
    recorded = steps.record_decision(conf, decision, "run-1", registered, promotion, no_variables)
    steps.record_decision(conf, decision, "run-1", registered, promotion, no_variables)  # a retried task
    cli, dag = read_jsonl(MonitoringDir.of_home(settings.home).retrains_log)  # the retry appended nothing
    assert sorted(cli) == sorted(dag) == sorted(RETRAIN_RECORD_FIELDS)
    assert (cli["source"], dag["source"]) == ("cli", "airflow") and dag["airflow_run_id"] == "run-1"
    assert dag["pool_version"] == batch["version"] and dag["data_hash"] == batch["data_hash"]
    assert recorded["retrained"] == {k: v for k, v in dag.items() if k != "finished_at"}
    assert not decide_retrain(settings, params, {"drift_share": 0.5}, NO_LIVE)[
        "retrain"
    ]  # tried on this data


def test_the_retrains_route_lists_cli_dag_and_older_dag_retrains_alike(
    settings: Settings, params: Params
) -> None:
    from rakuten_mlops.pipelines.monitoring import RETRAIN_RECORD_FIELDS, record_retrain, retrain_record
    from rakuten_mlops.pipelines.monitoring_reports import retrains

    registered = {"version": "3", "data_hash": "abc"}
    promotion = {"promote": True, "reasons": ["better"], "champion_before": "2"}
    record_retrain(retrain_record("/pool", registered, promotion, source="cli"), settings)
    dag = retrain_record("/pool", registered, promotion, source="airflow", airflow_run_id="run-new")
    record_retrain(dag, settings)
    # A decision of the stream DAG recorded before it wrote retrains.jsonl (the former shape).
    older = {"registered_version": "2", "reused_version": False, "promoted": True, "promotion_reasons": []}
    record_decision(
        {"decision": "retrain", "retrain": True, "reasons": ["drift"], "new_labelled_rows": 5,
         "data": {"data_hash": "old"}, "champion_version": "1", "airflow_run_id": "run-old",
         "retrained": older},
        settings, params,
    )  # fmt: skip
    record_decision(
        {"decision": "retrain", "retrain": True, "reasons": ["drift"], "new_labelled_rows": 5,
         "airflow_run_id": "run-new", "retrained": {k: v for k, v in dag.items() if k != "finished_at"}},
        settings, params,
    )  # fmt: skip
    runs = retrains(settings.home)
    assert sorted(r.get("airflow_run_id") or "cli" for r in runs) == ["cli", "run-new", "run-old"]
    assert all(
        set(RETRAIN_RECORD_FIELDS) & set(r) >= {"registered_version", "promoted", "source"} for r in runs
    )
    old = next(r for r in runs if r.get("airflow_run_id") == "run-old")
    assert (old["registered_version"], old["data_hash"], old["champion_before"]) == ("2", "old", "1")
