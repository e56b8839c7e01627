"""Read-only routes the web UI uses: registry versions, monitoring files and series, training data summaries.

Each body is checked against what the project's readers produce from the same registry, home folder
and app database; roles (401 without a token, 403 for a predictor on admin routes) and 404s with a
message when nothing exists.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from rakuten_mlops.infra import append_jsonl, write_json_atomic
from rakuten_mlops.lifecycle import registry
from rakuten_mlops.pipelines import monitoring_live, training_data
from rakuten_mlops.pipelines.monitoring_store import MonitoringDir
from rakuten_mlops.serving.app import create_app

READ_ROUTES = [
    "/v1/models/versions",
    "/v1/models/champion",
    "/v1/models/versions/1",
    "/v1/models/versions/1/confusion.png",
    "/v1/monitoring/drift",
    "/v1/monitoring/drift/x/report.html",
    "/v1/monitoring/live",
    "/v1/monitoring/decisions",
    "/v1/data/sources",
    "/v1/data/sources/split-train/summary",
    "/v1/data/sources/split-train/examples?code=2583",
    "/v1/limits",
    "/v1/models/history",
    "/v1/models/versions/1/evaluation",
]
ADMIN_ROUTES = [r for r in READ_ROUTES if r.startswith("/v1/monitoring")]


class Home:
    """An app on a home folder of its own (monitoring files, pipeline splits), with alice and root."""

    def __init__(self, client: TestClient, settings, kit) -> None:
        self.client, self.settings = client, settings
        self.headers = {u: kit.bearer(kit.login(client, u)) for u in ("alice", "root")}

    def get(self, path: str, user: str = "root", **kwargs):
        return self.client.get(path, headers=self.headers[user], **kwargs)


def _serve(settings, kit) -> Iterator[Home]:
    kit.add_user(settings, "alice")
    kit.add_user(settings, "root", "admin")
    with TestClient(create_app(settings)) as client:
        yield Home(client, settings, kit)


@pytest.fixture(scope="module")
def home(make_settings, kit, champion, tmp_path_factory) -> Iterator[Home]:
    """A worker home apart from the API's (as in compose): the champion's pipeline work folder copied
    in, two drift reports, decisions and retrains."""
    worker = tmp_path_factory.mktemp("worker-home")
    settings = make_settings(worker_home=worker)
    src = champion.data_dir.parent / "pipeline"
    for sub in ("splits", "registry"):
        shutil.copytree(src / sub, worker / "pipeline" / sub)
    mon = MonitoringDir.of_home(worker)
    for i, (stamp, share) in enumerate((("20260101T000000", 0.25), ("20260102T000000", 0.5))):
        folder = mon.drift / f"{stamp}-test"
        summary = {
            "created_at": f"2026-01-0{i + 1}T00:00:00+00:00",
            "drift_share": share,
            "drifted_columns": ["title_length"] if i else [],
            "columns": {
                "title_length": {"test": "ks", "score": 0.01, "threshold": 0.05, "drifted": bool(i)},
                "language": {"test": "chi2", "score": float("nan"), "threshold": 0.05, "drifted": False},
            },
        }
        write_json_atomic(folder / "summary.json", summary)  # NaN as Python's json writes it
        if i:
            (folder / "report.html").write_text("<html><body>rakuten-drift-summary</body></html>")
    (mon.drift / "20260103T000000-broken").mkdir()  # a report being written: no summary yet
    for n in range(30):
        append_jsonl(mon.decisions_log, {"recorded_at": f"2026-01-01T00:{n:02d}:00", "decision": f"d{n}"})
    append_jsonl(mon.root / "retrains.jsonl", {"registered_version": "2", "promoted": False})
    write_json_atomic(mon.latest_live, {"computed_at": "2026-01-02", "versions": {"1": {"weighted_f1": 0.7}}})
    yield from _serve(settings, kit)


@pytest.fixture(scope="module")
def empty(make_settings, kit, tmp_path_factory) -> Iterator[Home]:
    """An app whose home holds nothing: no registry, no monitoring, no pipeline run."""
    settings = make_settings(mlflow_tracking_uri=None, mlflow_registry_uri=None)
    yield from _serve(settings, kit)


@pytest.mark.parametrize("path", READ_ROUTES)
def test_every_read_route_needs_a_token(home, path):
    r = home.client.get(path)
    assert r.status_code == 401 and r.json()["detail"]


@pytest.mark.parametrize("path", ADMIN_ROUTES)
def test_monitoring_is_for_admins(home, path):
    r = home.get(path, user="alice")
    assert r.status_code == 403 and "'admin' role" in r.json()["detail"]


def test_versions_match_the_registry_for_any_user(home, champion):
    body = home.get("/v1/models/versions", user="alice").json()
    rows = registry.versions_with_champion(home.settings)
    assert body["total"] == len(rows) and body["model_name"] == champion.model_name
    assert body["champion"] == champion.version
    assert [v["version"] for v in body["versions"]] == [r.version for r in rows]
    first = body["versions"][0]
    assert first["metrics"] == rows[0].metrics and first["tags"] == rows[0].tags
    assert "run_id" not in first and "source" not in first
    champ = home.get("/v1/models/champion", user="alice").json()
    assert champ["version"] == champion.version and "champion" in champ["aliases"]


def test_versions_page_is_bounded(home):
    assert home.get("/v1/models/versions?limit=1&offset=0").json()["versions"][0]["version"]
    assert home.get("/v1/models/versions?limit=1000").status_code == 422
    assert home.get("/v1/models/versions?offset=-1").status_code == 422


def test_version_detail_per_class_f1_and_confusion_matrix(home, champion):
    body = home.get(f"/v1/models/versions/{champion.version}", user="alice").json()
    row = next(r for r in registry.versions_with_champion(home.settings) if r.version == champion.version)
    assert [(c["code"], c["f1"]) for c in body["per_class_f1"]] == registry.per_class_f1(row)
    assert len(body["per_class_f1"]) == 27
    assert body["confusion_matrix"] == "evaluation/confusion_text.png"
    png = home.get(f"/v1/models/versions/{champion.version}/confusion.png", user="alice")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    image = registry.confusion_image(home.settings, row.run_id)
    assert image is not None and png.content == image[0] and png.content.startswith(b"\x89PNG")


def test_unknown_version_is_404_and_a_bad_one_422(home):
    r = home.get("/v1/models/versions/999")
    assert r.status_code == 404 and "has no version 999" in r.json()["detail"]
    assert home.get("/v1/models/versions/999/confusion.png").status_code == 404
    assert home.get("/v1/models/versions/1a").status_code == 422


def test_nothing_registered_lists_nothing_and_the_champion_is_404(empty):
    body = empty.get("/v1/models/versions").json()
    assert body["total"] == 0 and body["versions"] == [] and body["champion"] is None
    r = empty.get("/v1/models/champion")
    assert r.status_code == 404 and "holds the champion alias yet" in r.json()["detail"]


def test_drift_reports_newest_first_and_their_html(home):
    body = home.get("/v1/monitoring/drift").json()
    assert body["total"] == 3  # the folder without summary counts but is not listed
    assert [r["id"] for r in body["reports"]] == ["20260102T000000-test", "20260101T000000-test"]
    assert [r["drift_share"] for r in body["reports"]] == [0.5, 0.25]
    assert [r["has_html"] for r in body["reports"]] == [True, False]
    assert body["reports"][0]["columns"]["language"]["score"] is None  # NaN in the file
    assert home.get("/v1/monitoring/drift?limit=1").json()["reports"][0]["id"] == "20260102T000000-test"
    html = home.get("/v1/monitoring/drift/20260102T000000-test/report.html")
    assert html.status_code == 200 and "rakuten-drift-summary" in html.text
    r = home.get("/v1/monitoring/drift/20260101T000000-test/report.html")
    assert r.status_code == 404 and "has no report.html" in r.json()["detail"]
    assert home.get("/v1/monitoring/drift/..%2Fsecret/report.html").status_code == 404
    assert home.get("/v1/monitoring/drift?limit=0").status_code == 422


def test_decisions_are_the_newest_and_bounded(home):
    body = home.get("/v1/monitoring/decisions?limit=5").json()
    assert [d["decision"] for d in body["decisions"]] == ["d29", "d28", "d27", "d26", "d25"]
    assert body["retrains"] == [{"registered_version": "2", "promoted": False}]
    assert len(home.get("/v1/monitoring/decisions").json()["decisions"]) == 20
    assert home.get("/v1/monitoring/decisions?limit=100000").status_code == 422


def test_live_series_match_the_prediction_log(home, champion):
    items = [{"designation": f"Piscine gonflable {i}", "description": ""} for i in range(4)]
    preds = home.client.post(
        "/v1/predict/batch", json={"items": items}, headers=home.headers["alice"]
    ).json()["predictions"]
    for pred in preds:
        body = {"prediction_id": pred["prediction_id"], "true_code": 2583}
        assert home.client.post("/v1/feedback", json=body, headers=home.headers["alice"]).status_code == 202
    url = home.settings.app_database_url
    deadline = time.monotonic() + 20
    while len(monitoring_live.recent_feedback(url)) < len(preds):  # the log is written in the background
        assert time.monotonic() < deadline, "feedback did not reach the app database"
        time.sleep(0.1)
    body = home.get("/v1/monitoring/live").json()
    expected = monitoring_live.live_f1_over_time(monitoring_live.recent_feedback(url))
    assert [p["weighted_f1"] for p in body["f1_over_time"]] == list(expected["weighted_f1"])
    assert body["feedback_rows"] == int(expected["n"].sum()) == len(preds)
    assert {p["model_version"] for p in body["f1_over_time"]} == {champion.version}
    shares = monitoring_live.class_share_over_time(monitoring_live.recent_predictions(url))
    assert body["prediction_rows"] == int(shares["rows"].sum()) >= len(preds)
    assert sorted(p["code"] for p in body["class_share"]) == sorted(shares["code"])
    assert body["latest"]["versions"] == {"1": {"weighted_f1": 0.7}}
    assert body["feedback_error"] is None and body["predictions_error"] is None


def test_metrics_export_the_monitoring_runs_of_the_worker_home(home):
    """/metrics reads the runs where the read routes do (the worker's home, not the API's own);
    live quality comes from the API's own refreshes once there is one."""
    assert home.settings.worker_files != home.settings.home
    text = home.client.get("/metrics").text
    assert 'rakuten_retrain_decisions_total{decision="d29"} 1.0' in text
    assert 'rakuten_live_f1{model_version="1"} 0.7' in text  # no refresh of its own yet
    own = MonitoringDir.of_home(home.settings.home).latest_live
    write_json_atomic(own, {"computed_at": "2026-01-03", "versions": {"1": {"weighted_f1": 0.8}}})
    try:
        text = home.client.get("/metrics").text
        assert 'rakuten_live_f1{model_version="1"} 0.8' in text
    finally:
        own.unlink()


def test_monitoring_of_an_empty_home_is_empty_not_an_error(empty):
    assert empty.get("/v1/monitoring/drift").json() == {"total": 0, "reports": []}
    assert empty.get("/v1/monitoring/decisions").json() == {"decisions": [], "retrains": []}
    live = empty.get("/v1/monitoring/live").json()
    assert live["latest"] is None and live["f1_over_time"] == [] and live["class_share"] == []


def test_data_sources_and_summary_match_the_split(home, champion):
    body = home.get("/v1/data/sources", user="alice").json()
    assert body["champion"] == champion.version and body["pipeline_version"] == champion.version
    ids = [s["id"] for s in body["sources"]]
    assert {"split-train", "split-test"} <= set(ids)
    summary = home.get("/v1/data/sources/split-train/summary", user="alice").json()
    path = home.settings.worker_files / "pipeline" / "splits" / "train.parquet"
    train = pd.read_parquet(path)
    assert summary["listings"] == len(train) == len(training_data.load_source(path))
    assert summary["classes"] == train["prdtypecode"].nunique()
    counts = train["prdtypecode"].value_counts()
    assert {c["code"]: c["rows"] for c in summary["class_counts"]} == counts.to_dict()
    for field in ("designation", "description"):
        bands = [b for b in summary["lengths"] if b["field"] == field]
        assert 0 < len(bands) <= training_data.LENGTH_BINS
        assert sum(b["listings"] for b in bands) == len(train)
        assert summary["median_chars"][field] == train[field].fillna("").astype(str).str.len().median()


def test_examples_are_a_few_listings_of_the_class(home):
    path = home.settings.worker_files / "pipeline" / "splits" / "train.parquet"
    train = pd.read_parquet(path)
    body = home.get("/v1/data/sources/split-train/examples?code=2583&n=3", user="alice").json()
    expected = set(train.loc[train["prdtypecode"] == 2583, "designation"])
    assert 0 < len(body["rows"]) <= 3 and {r["designation"] for r in body["rows"]} <= expected
    assert home.get("/v1/data/sources/split-train/examples?code=2583&n=100").status_code == 422
    r = home.get("/v1/data/sources/split-train/examples?code=1")
    assert r.status_code == 422 and "not one of the 27" in r.json()["detail"]


def test_unknown_data_source_is_404(home, empty):
    r = home.get("/v1/data/sources/streams-pool/summary")
    assert r.status_code == 404 and "GET /v1/data/sources lists what exists" in r.json()["detail"]
    assert empty.get("/v1/data/sources").json()["sources"] == []
    assert home.get("/v1/data/sources/..%2Fx/summary").status_code in (404, 422)


def test_other_versions_training_data_kept_by_monitoring_is_a_source(home, champion):
    path = home.settings.worker_files / "pipeline" / "splits" / "train.parquet"
    kept = home.settings.worker_files / "monitoring" / "reference" / "v999"
    kept.mkdir(parents=True)
    try:
        pd.read_parquet(path).head(5).to_parquet(kept / "rows.parquet")
        sources = {s["id"]: s for s in home.get("/v1/data/sources", user="alice").json()["sources"]}
        assert sources["version-v999"]["kind"] == "version"
        assert sources["version-v999"]["label"] == "version 999 training data (sample kept by monitoring)"
        assert f"version-v{champion.version}" not in sources  # the champion's data is listed as such
        summary = home.get("/v1/data/sources/version-v999/summary", user="alice").json()
        assert summary["listings"] == 5
    finally:
        (kept / "rows.parquet").unlink(missing_ok=True)
        kept.rmdir()


def test_limits_are_the_settings_the_api_enforces(home):
    body = home.get("/v1/limits", user="alice").json()
    s = home.settings
    assert body["max_image_bytes"] == s.max_image_bytes and body["max_batch_size"] == s.max_batch_size
    assert body["max_designation_chars"] == s.max_designation_chars
    assert body["image_types"] == ["jpeg", "png", "webp"] and 0 < body["review_below"] <= 1


def test_evaluation_has_row_counts_confusion_counts_and_the_gate(home, champion):
    body = home.get(f"/v1/models/versions/{champion.version}/evaluation", user="alice").json()
    assert body["test_rows"] == sum(c["support"] for c in body["per_class"]) > 0
    assert [c["f1"] for c in body["per_class"]] == sorted(c["f1"] for c in body["per_class"])
    confusion = body["confusion"]
    assert confusion["rows"] == body["test_rows"] == sum(map(sum, confusion["counts"]))
    assert len(confusion["labels"]) == len(confusion["counts"]) == 27
    assert body["gate"]["verdict"] == "passed" and body["gate"]["gold_rows"] == body["gold_rows"]
    assert home.get("/v1/models/versions/999/evaluation").status_code == 404


def test_history_lists_champion_changes_made_through_the_api(home, champion):
    assert home.get("/v1/models/history", user="alice").json()["events"] == []
    c = registry.client(home.settings)
    kept = {k: v for k, v in c.get_model_version(champion.model_name, champion.version).tags.items()}
    try:  # promote the champion again: the registry does not change, the history gets a line
        r = home.client.post(
            "/v1/model/promote", headers=home.headers["root"],
            json={"version": champion.version, "reason": "same version, on purpose"},
        )  # fmt: skip
        assert r.status_code == 200, r.text
    finally:  # the champion is shared with other tests: its promotion tags go back as they were
        for key in ("promotion.decision", "promotion.reasons"):
            if key in kept:
                c.set_model_version_tag(champion.model_name, champion.version, key, kept[key])
    events = home.get("/v1/models/history?limit=5", user="alice").json()["events"]
    assert len(events) == 1
    event = events[0]
    assert (event["username"], event["action"]) == ("root", "manual promotion")
    assert event["to_version"] == event["from_version"] == champion.version
    assert event["reasons"] == "manual promotion by root through the API; same version, on purpose"
    assert home.get("/v1/models/history?limit=0").status_code == 422
