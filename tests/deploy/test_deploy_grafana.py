"""Grafana: provisioning points at the mounted dashboards and the Prometheus datasource, and
the dashboards show what issue 6 lists, in valid PromQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploycheck import DEPLOY_DIR, promql

GRAFANA_DIR = DEPLOY_DIR / "grafana"
DASHBOARDS = sorted((GRAFANA_DIR / "dashboards").glob("*.json"))
# Each topic of the issue, and a metric whose presence shows the dashboards cover it.
TOPICS = {
    "API traffic": "rakuten_http_requests_total",
    "latency percentiles": "rakuten_http_request_duration_seconds_bucket",
    "predictions by class": "rakuten_predictions_total",
    "confidence": "rakuten_prediction_confidence_bucket",
    "drift share": "rakuten_drift_share",
    "live F1": "rakuten_live_f1",
    "model version": "rakuten_model_info",
    "model loaded": "rakuten_model_loaded",
    "pods": "kube_deployment_status_replicas_available",
    "HPA replicas": "kube_horizontalpodautoscaler_status_current_replicas",
    "shadow agreement": "rakuten_shadow_agreements_total",
    "shadow live F1": "rakuten_shadow_live_f1",
    "low-confidence share": "rakuten_low_confidence_predictions_total",
}


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in DASHBOARDS}


def all_queries() -> list[tuple[str, str]]:
    return [
        (f"{name} {where}", q) for name, d in dashboards().items() for where, q in promql.dashboard_queries(d)
    ]


def test_datasource_provisioning() -> None:
    config = yaml.safe_load((GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (datasource,) = config["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    assert datasource["uid"] == "prometheus"


def test_dashboard_provisioning_reads_the_mounted_folder() -> None:
    config = yaml.safe_load((GRAFANA_DIR / "provisioning" / "dashboards" / "dashboards.yml").read_text())
    (provider,) = config["providers"]
    compose = yaml.safe_load((DEPLOY_DIR / "compose.yaml").read_text())
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_structure(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert panels
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["datasource"]["uid"] == "prometheus", panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)) and all(t["expr"].strip() for t in panel["targets"]), panel[
            "title"
        ]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24


def test_dashboard_uids_are_unique() -> None:
    uids = [d["uid"] for d in dashboards().values()]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize(("topic", "metric"), TOPICS.items())
def test_dashboards_cover(topic: str, metric: str) -> None:
    used = set().union(*(promql.metric_names(q) for _, q in all_queries()))
    assert metric in used, f"no panel shows {topic} ({metric})"


def test_dashboard_queries_parse(tool) -> None:
    tool("promtool")
    assert promql.syntax_problems(all_queries()) == []


def test_a_query_with_a_syntax_error_is_caught(tool) -> None:
    tool("promtool")
    problems = promql.syntax_problems([("broken panel", "sum(rate(rakuten_http_requests_total[5m])")])
    assert problems and "broken panel" in problems[0]
