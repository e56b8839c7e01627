"""Prometheus metrics: the contracted names, route templates as labels, one registry per app."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from rakuten_mlops.serving.app import create_app

CONTRACT = [
    "rakuten_http_requests_total",
    "rakuten_http_request_duration_seconds_bucket",
    "rakuten_predictions_total",
    "rakuten_prediction_confidence_bucket",
    "rakuten_model_info",
    "rakuten_model_loaded",
    "rakuten_model_reloads_total",
    "rakuten_feedback_total",
    "rakuten_prediction_log_queue_size",
    "rakuten_drift_share",
    "rakuten_drift_column_drifted",
    "rakuten_live_f1",
    "rakuten_live_accuracy",
    "rakuten_retrain_decisions_total",
]


def _value(text: str, pattern: str) -> float:
    values = [float(m.group(1)) for m in re.finditer(rf"^{pattern} (\S+)$", text, re.M)]
    assert values, f"no sample matches {pattern}"
    return sum(values)


def test_metrics_expose_every_contracted_name(api):
    pred = api.client.post("/v1/predict", json={"designation": "Bac à sable"}, headers=api.headers()).json()
    api.client.post(
        "/v1/feedback",
        json={"prediction_id": pred["prediction_id"], "true_code": 1302},
        headers=api.headers(),
    )
    text = api.client.get("/metrics").text
    declared = {m.group(1) for m in re.finditer(r"^# TYPE (\S+) ", text, re.M)}
    for name in CONTRACT:
        base = re.sub(r"_(total|bucket|info)$", "", name)
        assert base in declared or name in declared, name
    code = pred["prdtypecode"]
    assert _value(text, rf'rakuten_predictions_total\{{code="{code}"\}}') >= 1
    assert _value(text, "rakuten_prediction_confidence_count") >= 1
    assert _value(text, "rakuten_feedback_total") >= 1
    assert _value(text, "rakuten_model_loaded") == 1
    assert re.search(
        r'^rakuten_model_info\{name="[^"]+",run_id="[0-9a-f]+",version="\d+"\} 1\.0$', text, re.M
    )


def test_request_metrics_use_route_templates_and_statuses(api):
    before = api.client.get("/metrics").text
    api.client.post("/v1/users/someone-unknown/disable", headers=api.headers("root"))
    api.client.post("/v1/predict", json={}, headers=api.headers())
    api.client.get("/no/such/path/12345")
    text = api.client.get("/metrics").text
    assert "someone-unknown" not in text and "/no/such/path" not in text
    assert (
        _value(
            text,
            r'rakuten_http_requests_total\{method="POST",route="/v1/users/\{username\}/disable",status="404"\}',
        )
        == 1
    )
    key = r'rakuten_http_requests_total\{method="POST",route="/v1/predict",status="422"\}'
    assert _value(text, key) == (_value(before, key) if re.search(key, before) else 0) + 1
    assert _value(text, r'rakuten_http_requests_total\{method="GET",route="<unmatched>",status="404"\}') >= 1
    assert (
        _value(text, r'rakuten_http_request_duration_seconds_count\{method="POST",route="/v1/predict"\}') >= 1
    )


def test_each_app_has_its_own_registry(api, make_settings):
    other = create_app(make_settings())
    with TestClient(other) as client:
        text = client.get("/metrics").text
    assert 'route="/v1/predict"' not in text  # the shared app's traffic is not counted here
    assert "rakuten_model_info" in text


def test_metrics_show_the_latest_drift_report(make_settings):
    import json

    from rakuten_mlops.pipelines.monitoring_store import MonitoringDir

    settings = make_settings()
    latest = MonitoringDir.of_home(settings.home).latest_drift
    latest.parent.mkdir(parents=True, exist_ok=True)
    latest.write_text(
        json.dumps(
            {"drift_share": 0.4, "columns": {"language": {"drifted": True}, "text": {"drifted": False}}}
        )
    )
    with TestClient(create_app(settings)) as client:
        text = client.get("/metrics").text
    assert _value(text, "rakuten_drift_share") == 0.4
    assert _value(text, 'rakuten_drift_column_drifted\\{column="language"\\}') == 1.0
    assert _value(text, 'rakuten_drift_column_drifted\\{column="text"\\}') == 0.0
