"""Every metric that a dashboard or an alert reads must exist: in the API's /metrics contract,
or from kube-state-metrics / cAdvisor (kube_*, container_*), or `up`.

Two sources of truth are checked: the static contract (deploycheck.promql.CONTRACT) and the
running app (`create_app`, GET /metrics through TestClient)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import yaml
from deploycheck import DEPLOY_DIR, promql

RULES = DEPLOY_DIR / "prometheus" / "rules" / "rakuten-alerts.yml"
DASHBOARDS = sorted((DEPLOY_DIR / "grafana" / "dashboards").glob("*.json"))


def queries(dashboard_paths: list[Path] = DASHBOARDS, rules_path: Path = RULES) -> list[tuple[str, str]]:
    out = promql.rule_queries(yaml.safe_load(rules_path.read_text()))
    for path in dashboard_paths:
        out += [(f"{path.name} {w}", q) for w, q in promql.dashboard_queries(json.loads(path.read_text()))]
    return out


@pytest.fixture(scope="module")
def exposed_series() -> set[str]:
    """Series names of GET /metrics on a freshly built app (no model, no lifespan: no network)."""
    from fastapi.testclient import TestClient

    from rakuten_mlops.config import Settings

    try:
        from rakuten_mlops.serving.app import create_app
    except ImportError as exc:  # fail, never skip: the dashboards depend on this app
        pytest.fail(f"cannot build the API to read its /metrics: {exc!r}")

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(
            _env_file=None, env="development", home=Path(home), jwt_secret="metrics-test-" + "x" * 32,
            mlflow_tracking_uri=f"sqlite:///{home}/mlflow.db", database_url=None, model_poll_seconds=0,
        )  # fmt: skip
        response = TestClient(create_app(settings)).get("/metrics")
        assert response.status_code == 200
        return promql.sample_names_from_exposition(response.text)


def test_dashboards_and_rules_read_only_contract_metrics() -> None:
    assert promql.unknown_metric_problems(queries(), promql.series_names(promql.CONTRACT)) == []


def test_dashboards_and_rules_read_only_metrics_the_api_exposes(exposed_series: set[str]) -> None:
    assert promql.unknown_metric_problems(queries(), exposed_series) == []


def test_the_api_honours_the_contract(exposed_series: set[str]) -> None:
    missing = promql.series_names(promql.CONTRACT) - exposed_series
    assert not missing, f"the API no longer exposes {sorted(missing)}"


def test_a_misspelled_metric_in_a_dashboard_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text(
        DASHBOARDS[0].read_text().replace("rakuten_http_requests_total", "rakuten_http_request_total", 1)
    )
    problems = promql.unknown_metric_problems(queries([path]), promql.series_names(promql.CONTRACT))
    assert any("'rakuten_http_request_total'" in p for p in problems), problems


def test_a_misspelled_metric_in_a_rule_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(RULES.read_text().replace("rakuten_live_f1)", "rakuten_live_f1_score)"))
    problems = promql.unknown_metric_problems(queries([], path), promql.series_names(promql.CONTRACT))
    assert problems == ["rule RakutenLiveF1Low: unknown metric 'rakuten_live_f1_score'"]


def test_a_misspelled_metric_in_a_template_variable_is_caught() -> None:
    variable = {"type": "query", "name": "ns", "query": {"query": "label_values(kube_x_replica, namespace)"}}
    dashboard = {"templating": {"list": [variable]}}
    problems = promql.unknown_metric_problems(promql.dashboard_queries(dashboard), set())
    assert problems == []  # kube_* comes from kube-state-metrics, any name is allowed there
    dashboard["templating"]["list"][0]["query"]["query"] = "label_values(rakuten_model_infos, version)"
    assert promql.unknown_metric_problems(promql.dashboard_queries(dashboard), set()) == [
        "variable ns: unknown metric 'rakuten_model_infos'"
    ]


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum(rate(rakuten_http_requests_total{status=~"5.."}[5m]))', {"rakuten_http_requests_total"}),
        ("histogram_quantile(0.99, sum by (le, route) (rate(x_bucket[$__rate_interval])))", {"x_bucket"}),
        ("a / on (instance) group_left (version) b offset 5m", {"a", "b"}),
        ("absent(up{job=\"rakuten-api\"} == 1)", {"up"}),
        ("min by (model_version) (rakuten_live_f1) < 0.7", {"rakuten_live_f1"}),
        ('label_replace(x, "dst", "$1", "src", "(.*)")', {"x"}),
        ("max_over_time(rakuten_drift_share[1h:5m]) > 1e-3", {"rakuten_drift_share"}),
        ('sum(kube_pod_status_phase{namespace="$namespace"}) by (phase)', {"kube_pod_status_phase"}),
        ("topk(5, sum without (code) (rakuten_predictions_total))", {"rakuten_predictions_total"}),
    ],
)  # fmt: skip
def test_metric_names(expr: str, names: set[str]) -> None:
    assert promql.metric_names(expr) == names


def test_series_names_follow_prometheus_client() -> None:
    assert promql.series_names({"c": "counter", "h": "histogram", "i": "info", "g": "gauge"}) == {
        "c_total", "c_created", "h_bucket", "h_sum", "h_count", "h_created", "i_info", "g"}  # fmt: skip
