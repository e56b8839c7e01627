"""Monitoring page (admins): clear messages before any report; drift, live F1, classes and decisions after."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from rakuten_mlops.config import Params
from rakuten_mlops.pipelines.monitoring_live import recent_feedback
from tests.services import require_module
from tests.ui.helpers import chart_frames, texts


def test_monitoring_is_for_admins(make_app):
    at = make_app(page="monitoring_page.py")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(i.value.startswith("Monitoring is for admins") for i in at.info)
    assert not at.get("header")


def test_before_any_monitoring_each_section_says_what_to_run(make_app, ui_env, empty_stack):
    ui_env(url=empty_stack.url)
    at = make_app(user="root", page="monitoring_page.py")
    assert not at.exception and not at.error, [e.value for e in at.error]
    infos = [i.value for i in at.info]
    assert any(i.startswith("No drift report yet — run `rakuten-mlops drift") for i in infos)
    assert any(i.startswith("No feedback yet: live F1 needs the true category") for i in infos)
    assert "No logged predictions yet: they appear here once the API has served some." in infos
    assert "No retrain decision yet — run `rakuten-mlops monitor check`." in infos


@pytest.fixture(scope="module")
def monitored(stack):
    """Predictions with feedback through the API, then `monitor check` (drift + live F1 + decision)."""
    require_module("evidently", "the monitoring extra (evidently) is not installed")
    from rakuten_mlops.pipelines.monitoring import monitor_check

    test = pd.read_parquet(stack.home / "pipeline" / "splits" / "test.parquet").head(8)
    items = [
        {"designation": d, "description": s}
        for d, s in zip(test["designation"], test["description"], strict=True)
    ]
    token = stack.token("alice")
    preds = stack.call("POST", "/v1/predict/batch", json={"items": items}).json()["predictions"]
    for pred, true_code in zip(preds, test["prdtypecode"], strict=True):
        body = {"prediction_id": pred["prediction_id"], "true_code": int(true_code)}
        assert stack.call("POST", "/v1/feedback", json=body).status_code == 202
    deadline = time.monotonic() + 20
    while len(recent_feedback(stack.settings.app_database_url)) < len(
        preds
    ):  # the API writes its log in the background
        assert time.monotonic() < deadline, "feedback did not reach the app database"
        time.sleep(0.1)
    decision = monitor_check(
        stack.settings, Params(), reference=None, current=stack.home / "pipeline" / "splits" / "test.parquet"
    )
    return {"decision": decision, "predictions": preds, "token": token}


@pytest.mark.slow
def test_drift_live_f1_predicted_classes_and_decisions(make_app, stack, monitored):
    at = make_app(user="root", page="monitoring_page.py")
    assert not at.exception and not at.error, [e.value for e in at.error]
    page = texts(at)
    decision = monitored["decision"]
    drift = decision["drift"]
    assert "Drift of test against champion v" in page
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Drift share"] == f"{drift['drift_share']:.2f}"
    assert metrics["Drifted columns"] == f"{len(drift['drifted_columns'])} / {drift['n_columns']}"
    columns = at.dataframe[0].value
    assert len(columns) == drift["n_columns"]
    assert {"title_length", "predicted_code"} <= set(columns["column"])

    frames = chart_frames(at)
    live = next(f for f in frames if "weighted_f1" in f.columns)
    assert live["n"].sum() >= len(monitored["predictions"])
    assert set(live["model_version"]) == {stack.version}
    shares = next(f for f in frames if "share" in f.columns and "time" in f.columns)
    assert shares["rows"].sum() >= len(monitored["predictions"])

    decisions = at.dataframe[-1].value
    assert decisions.iloc[0]["decision"] == decision["decision"]
    assert decisions.iloc[0]["reasons"] == "; ".join(decision["reasons"])

    at.toggle(key="show_evidently").set_value(True).run()
    frames = at.get("iframe")
    assert len(frames) == 1 and "rakuten-drift-summary" in frames[0].proto.srcdoc
