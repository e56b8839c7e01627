"""Prometheus export: the contract's metric names get the latest drift, live and decision values,
read from the recorded files on each scrape without running a step or writing anything."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from rakuten_mlops.infra import append_jsonl, write_json_atomic
from rakuten_mlops.pipelines.monitoring_store import MonitoringDir
from rakuten_mlops.serving.exporter import LiveRefresher, MonitoringCollector, refresh_live
from tests.helpers import make_settings


def _write_results(home: Path, decisions: list[str]) -> None:
    mon = home / "monitoring"
    write_json_atomic(
        mon / "drift" / "latest.json",
        {
            "drift_share": 0.4,
            "columns": {
                "text": {"drifted": True},
                "language": {"drifted": True},
                "label": {"drifted": False},
            },
        },
    )
    versions = {"3": {"n": 80, "weighted_f1": 0.71, "accuracy": 0.75}, "4": {"n": 0, "weighted_f1": None}}
    now = dt.datetime.now(dt.UTC).isoformat()
    write_json_atomic(mon / "live" / "latest.json", {"computed_at": now, "versions": versions})
    for i, d in enumerate(decisions):
        append_jsonl(mon / "decisions" / "decisions.jsonl", {"id": str(i), "decision": d})


def _registry(home: Path) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(MonitoringCollector(home))
    return registry


def _files(home: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in home.rglob("*") if p.is_file()}


def test_latest_results_are_exported(tmp_path: Path) -> None:
    _write_results(tmp_path, ["skip", "skip", "retrain"])
    registry = _registry(tmp_path)
    before = _files(tmp_path)
    text = generate_latest(registry).decode()
    assert "rakuten_drift_share 0.4" in text
    assert 'rakuten_drift_column_drifted{column="text"} 1.0' in text
    assert 'rakuten_drift_column_drifted{column="label"} 0.0' in text
    assert 'rakuten_live_f1{model_version="3"} 0.71' in text
    assert 'rakuten_live_accuracy{model_version="3"} 0.75' in text
    assert 'model_version="4"' not in text  # no feedback, no value
    assert 'rakuten_retrain_decisions_total{decision="retrain"} 1.0' in text
    assert 'rakuten_retrain_decisions_total{decision="skip"} 2.0' in text
    assert _files(tmp_path) == before  # a scrape writes nothing


def test_each_scrape_reads_the_files_anew(tmp_path: Path) -> None:
    _write_results(tmp_path, ["skip"])
    registry = _registry(tmp_path)
    first = generate_latest(registry).decode()
    assert generate_latest(registry).decode() == first  # a second scrape: nothing new
    append_jsonl(
        tmp_path / "monitoring" / "decisions" / "decisions.jsonl", {"id": "x", "decision": "retrain"}
    )
    write_json_atomic(tmp_path / "monitoring" / "drift" / "latest.json", {"drift_share": 0.1, "columns": {}})
    text = generate_latest(registry).decode()
    assert 'rakuten_retrain_decisions_total{decision="skip"} 1.0' in text
    assert 'rakuten_retrain_decisions_total{decision="retrain"} 1.0' in text
    assert "rakuten_drift_share 0.1" in text and "rakuten_drift_column_drifted{" not in text


def test_nothing_recorded_yet_or_unreadable_files(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    text = generate_latest(registry).decode()
    assert "rakuten_drift_share 0.0" in text
    assert 'rakuten_retrain_decisions_total{decision="retrain"} 0.0' in text
    assert "# TYPE rakuten_live_f1 gauge" in text  # declared even without a value
    assert not (tmp_path / "monitoring").exists()  # nothing created on a scrape
    (tmp_path / "monitoring" / "drift").mkdir(parents=True)
    (tmp_path / "monitoring" / "drift" / "latest.json").write_text("{torn")
    (tmp_path / "monitoring" / "decisions").mkdir(parents=True)
    (tmp_path / "monitoring" / "decisions" / "decisions.jsonl").mkdir()  # unreadable: a folder
    text = generate_latest(registry).decode()  # must not raise
    assert "rakuten_drift_share 0.0" in text


def test_failed_api_reloads_after_a_promotion_are_counted(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    assert "rakuten_pipeline_reload_failures_total 0.0" in generate_latest(registry).decode()
    log = MonitoringDir.of_home(tmp_path).reloads_log
    append_jsonl(log, {"champion_version": "2", "reloaded": False, "error": "does not answer"})
    append_jsonl(log, {"champion_version": "3", "reloaded": True, "changed": True})
    append_jsonl(log, {"champion_version": "4", "reloaded": False, "error": "401: not an admin"})
    text = generate_latest(registry).decode()
    assert "# TYPE rakuten_pipeline_reload_failures_total counter" in text
    assert "rakuten_pipeline_reload_failures_total 2.0" in text
    log.write_text("{torn\n")  # an unreadable log: the other series are still exported
    text = generate_latest(registry).decode()
    assert "rakuten_pipeline_reload_failures_total 0.0" in text and "rakuten_drift_share 0.0" in text


def test_a_live_file_without_accuracy_exports_the_f1(tmp_path: Path) -> None:
    write_json_atomic(
        tmp_path / "monitoring" / "live" / "latest.json", {"versions": {"2": {"weighted_f1": 0.6}}}
    )
    text = generate_latest(_registry(tmp_path)).decode()
    assert 'rakuten_live_f1{model_version="2"} 0.6' in text
    assert "rakuten_live_accuracy{" not in text


def test_results_of_an_unexpected_shape_are_left_out_not_an_error(tmp_path: Path) -> None:
    write_json_atomic(
        tmp_path / "monitoring" / "drift" / "latest.json", {"drift_share": "high", "columns": {}}
    )
    write_json_atomic(
        tmp_path / "monitoring" / "live" / "latest.json", {"versions": {"2": {"weighted_f1": 0.6}}}
    )
    text = generate_latest(_registry(tmp_path)).decode()  # must not raise
    assert "rakuten_drift_share 0.0" in text
    assert "rakuten_live_f1{" not in text
    assert 'rakuten_retrain_decisions_total{decision="retrain"} 0.0' in text


def test_live_quality_of_its_own_home_wins_once_recorded(tmp_path: Path) -> None:
    runs, own = tmp_path / "worker", tmp_path / "api"
    _write_results(runs, ["skip"])  # live F1 0.71 for version 3
    registry = CollectorRegistry(auto_describe=True)
    registry.register(MonitoringCollector(runs, live_home=own))
    assert 'rakuten_live_f1{model_version="3"} 0.71' in generate_latest(registry).decode()
    write_json_atomic(own / "monitoring" / "live" / "latest.json", {"versions": {"3": {"weighted_f1": 0.5}}})
    text = generate_latest(registry).decode()
    assert 'rakuten_live_f1{model_version="3"} 0.5' in text
    assert 'rakuten_retrain_decisions_total{decision="skip"} 1.0' in text  # decisions: the runs' home
    assert "rakuten_drift_share 0.4" in text


def test_live_quality_is_recorded_by_the_refresh_step_not_by_a_scrape(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url="postgresql+psycopg2://nobody:x@127.0.0.1:1/none")
    registry = _registry(tmp_path)
    generate_latest(registry)
    assert not (tmp_path / "monitoring" / "live" / "latest.json").exists()
    refresh_live(settings)  # the database is down: recorded as an error, never raised
    live = json.loads((tmp_path / "monitoring" / "live" / "latest.json").read_text())
    assert "cannot read feedback" in live["error"]


def test_live_refresher_runs_in_the_background_and_stops(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url="postgresql+psycopg2://nobody:x@127.0.0.1:1/none")
    latest = tmp_path / "monitoring" / "live" / "latest.json"

    async def run() -> None:
        refresher = LiveRefresher(settings, interval_s=0.01)
        refresher.start()
        for _ in range(3000):  # waits for the first refresh (at most 30 s), measures nothing
            await asyncio.sleep(0.01)
            if latest.is_file():
                break
        await refresher.stop()

    asyncio.run(run())
    assert "cannot read feedback" in json.loads(latest.read_text())["error"]


def test_refresher_is_off_with_a_zero_interval(tmp_path: Path) -> None:
    async def run() -> None:
        refresher = LiveRefresher(make_settings(tmp_path), interval_s=0)
        refresher.start()
        assert refresher._task is None
        await refresher.stop()

    asyncio.run(run())


@pytest.mark.parametrize("interval", [0, 30])
def test_refresher_interval_comes_from_params(tmp_path: Path, interval: int) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(f"monitoring:\n  live:\n    refresh_seconds: {interval}\n")
    settings = make_settings(tmp_path, params_path=params)
    assert LiveRefresher.from_params(settings).interval_s == interval
    params.write_text("monitoring:\n  live:\n    refresh_second: 1\n")  # a typo: no refresh, no crash
    assert LiveRefresher.from_params(settings).interval_s == 0
