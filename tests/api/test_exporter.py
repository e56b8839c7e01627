"""Prometheus export: the contract's metric names get the latest drift, live and decision values."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from rakuten_mlops.infra import append_jsonl, write_json_atomic
from rakuten_mlops.serving.exporter import MonitoringMetrics, update_metrics
from tests.helpers import make_settings
from tests.monitoring.helpers import make_params


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


def _scrape(metrics: object) -> str:
    return generate_latest(metrics.registry).decode()  # type: ignore[attr-defined]


@pytest.fixture
def served_metrics() -> list[object]:
    objs: list[object] = [MonitoringMetrics()]
    try:
        from rakuten_mlops.serving.metrics import ServingMetrics

        objs.append(ServingMetrics())
    except ImportError:  # serving extra absent: the standalone registry still proves the contract
        pass
    return objs


def test_latest_results_are_exported(tmp_path: Path, served_metrics: list[object]) -> None:
    settings = make_settings(tmp_path)
    _write_results(tmp_path, ["skip", "skip", "retrain"])
    for metrics in served_metrics:
        out = update_metrics(metrics, settings, make_params(), refresh_live=False)  # type: ignore[arg-type]
        assert out["decisions"] == {"retrain": 1, "skip": 2}
        text = _scrape(metrics)
        assert "rakuten_drift_share 0.4" in text
        assert 'rakuten_drift_column_drifted{column="text"} 1.0' in text
        assert 'rakuten_drift_column_drifted{column="label"} 0.0' in text
        assert 'rakuten_live_f1{model_version="3"} 0.71' in text
        assert 'rakuten_live_accuracy{model_version="3"} 0.75' in text
        assert 'model_version="4"' not in text  # no feedback, no value
        assert 'rakuten_retrain_decisions_total{decision="retrain"} 1.0' in text
        assert 'rakuten_retrain_decisions_total{decision="skip"} 2.0' in text


def test_counters_add_only_new_decisions(tmp_path: Path) -> None:
    settings, metrics = make_settings(tmp_path), MonitoringMetrics()
    _write_results(tmp_path, ["skip"])
    update_metrics(metrics, settings, make_params(), refresh_live=False)
    update_metrics(metrics, settings, make_params(), refresh_live=False)  # a second scrape: nothing new
    append_jsonl(
        tmp_path / "monitoring" / "decisions" / "decisions.jsonl", {"id": "x", "decision": "retrain"}
    )
    update_metrics(metrics, settings, make_params(), refresh_live=False)
    text = _scrape(metrics)
    assert 'rakuten_retrain_decisions_total{decision="skip"} 1.0' in text
    assert 'rakuten_retrain_decisions_total{decision="retrain"} 1.0' in text


def test_nothing_yet_and_unreachable_database(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url="postgresql+psycopg2://nobody:x@127.0.0.1:1/none")
    metrics = MonitoringMetrics()
    out = update_metrics(metrics, settings, make_params())  # must not raise on scrape
    assert out["drift"] is False
    text = _scrape(metrics)
    assert "rakuten_drift_share 0.0" in text
    assert 'rakuten_retrain_decisions_total{decision="retrain"} 0.0' in text
    live = json.loads((tmp_path / "monitoring" / "live" / "latest.json").read_text())
    assert "cannot read feedback" in live["error"]
