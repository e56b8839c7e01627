"""Monitoring page (admins): clear messages before any report; drift, live F1, classes and decisions after."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from rakuten_mlops.config import Params
from rakuten_mlops.pipelines.monitoring_live import recent_feedback
from tests.services import require_module
from tests.ui.helpers import chart_frames, chart_specs, texts


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

    metrics = {m.label: m.value for m in at.metric}
    assert metrics[f"Live weighted F1 (v{stack.version})"] == f"{live['weighted_f1'].iloc[-1]:.3f}"
    assert any("Live weighted F1 per model version" in s for s in chart_specs(at))
    assert f"v{stack.version}: n=" in " ".join(live["label"])

    at.toggle(key="show_evidently").set_value(True).run()
    frames = at.get("iframe")
    assert len(frames) == 1 and "rakuten-drift-summary" in frames[0].proto.srcdoc


CONSTRUCTED = {
    "title": "Drift of constructed batch against the streams' initial pool",
    "created_at": "2001-01-01T00:00:00+00:00",
    "current": {"label": "constructed", "source": "a constructed batch"},
    "reference": {
        "source": "streams initial pool (/home/x/streams/initial)",
        "champion_version": "1",
        "is_champion": False,
        "warning": "NOT the champion's training data (no snapshot of champion v1's training data): the "
        "streams' initial pool",
    },
    "reference_rows": 50,
    "current_rows": 40,
    "drift_share": 0.5,
    "drift_share_threshold": 0.3,
    "drifted_columns": ["title_length", "text"],
    "n_columns": 4,
    "n_drifted": 2,
    "dataset_drift": True,
    "columns": {
        "title_length": {"test": "ks", "threshold": 0.01, "score": 2.2e-16, "drifted": True},
        "text": {"test": "text_domain_auc", "threshold": 0.99, "score": 0.866, "drifted": True},
        "predicted_code": {
            "test": "chisquare_homogeneity",
            "threshold": 0.01,
            "score": 0.4123,
            "drifted": False,
        },
        "has_image": {"test": "chisquare_homogeneity", "threshold": 0.01, "score": None, "drifted": False},
    },
}


@pytest.fixture
def constructed_report(stack):
    """A drift report whose reference is not the champion's training data, with extreme scores."""
    import json

    folder = stack.home / "monitoring" / "drift" / "20010101T000000Z-constructed"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(CONSTRUCTED), encoding="utf-8")
    yield folder.name
    (folder / "summary.json").unlink()
    folder.rmdir()


def _choose(at, label_part: str) -> None:
    box = at.selectbox(key="drift_report")
    box.set_value(next(o for o in box.options if label_part in o)).run()


def test_scores_are_readable_and_each_rule_is_said_in_words(make_app, constructed_report):
    at = make_app(user="root", page="monitoring_page.py")
    _choose(at, "constructed")
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = at.dataframe[0].value.set_index("column")
    assert table.loc["title_length", "score"] == "< 0.001 (2.2e-16)"
    assert table.loc["text", "score"] == "0.866" and table.loc["predicted_code", "score"] == "0.412"
    assert table.loc["has_image", "score"] == "–"
    assert table.loc["title_length", "rule"] == "drift if p-value < 0.010"
    assert table.loc["text", "rule"] == "drift if the ROC AUC beats chance's 99% quantile"
    rules = [c.value for c in at.caption if c.value.startswith("• ")]
    assert len(rules) == 3, rules  # ks, chi-square homogeneity and the text test, each said once
    assert any("the score is a p-value" in r and "Drifted when it is below 0.010" in r for r in rules)
    assert any("ROC AUC" in r and "is a quantile of chance, not an AUC" in r for r in rules)
    assert "0.0000000000000002" not in texts(at)


def test_a_reference_that_is_not_the_champions_training_data_is_a_visible_warning(
    make_app, constructed_report
):
    at = make_app(user="root", page="monitoring_page.py")
    _choose(at, "constructed")
    warnings = [w.value for w in at.warning]
    assert any(
        w.startswith("The drift reference is NOT the champion's training data: NOT the") for w in warnings
    )


def test_headline_numbers_come_first(make_app, constructed_report):
    at = make_app(user="root", page="monitoring_page.py")
    labels = [m.label for m in at.metric]
    assert labels[:4] == ["Latest drift share", "Columns drifted", labels[2], "Retrain decision"]
    assert labels[2].startswith("Live weighted F1")
    heat = next(f for f in chart_frames(at) if "batch" in f.columns)
    assert {"stable", "drifted"} >= set(heat["drifted"]) and "title_length" in set(heat["column"])
