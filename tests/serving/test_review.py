"""The review queue lists exactly the unlabelled low-confidence predictions; its labels are feedback
like any other and reach live F1; the share of low-confidence predictions is a metric."""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from fastapi.testclient import TestClient
from sklearn.metrics import f1_score

from rakuten_mlops.config import Params
from rakuten_mlops.pipelines.monitoring import live_performance
from rakuten_mlops.serving.app import create_app

THRESHOLD = 0.5
LISTINGS = [
    "Piscine tubulaire ronde 3 m", "Coussin velours 40x40 bleu", "Figurine Dragon Ball Goku",
    "Jeu PS4 FIFA 19", "Livre Harry Potter tome 1", "Tondeuse thermique 46 cm", "Lot de 3 chaussettes bébé",
    "Carte Pokemon Dracaufeu holo", "zzq vrk plo", "xx", "objet", "lot divers", "article 42", "qwxz",
]  # fmt: skip


def _metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " "))


def _queue(client: TestClient, headers: dict[str, str], expected_total: int) -> dict:
    """The review queue once the prediction log has written what it should list."""
    deadline = time.monotonic() + 30
    while True:
        r = client.get("/v1/review", params={"limit": 200}, headers=headers)
        assert r.status_code == 200, r.text
        if r.json()["total"] == expected_total:
            return dict(r.json())
        assert time.monotonic() < deadline, r.json()
        time.sleep(0.05)


def test_review_queue_lists_the_low_confidence_predictions_and_its_labels_reach_live_f1(
    make_settings, kit, tmp_path: Path
):
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump({"monitoring": {"review": {"confidence_below": THRESHOLD}}}))
    settings = make_settings(params_path=params_path, predict_quota_per_minute=0)
    kit.add_user(settings, "alice")
    kit.add_user(settings, "root", "admin")
    with TestClient(create_app(settings)) as client:
        alice = kit.bearer(kit.login(client, "alice"))
        root = kit.bearer(kit.login(client, "root"))
        answers = [
            client.post("/v1/predict", json={"designation": d}, headers=alice).json() for d in LISTINGS
        ]
        low = {a["prediction_id"]: a for a in answers if a["probability"] < THRESHOLD}
        assert low and len(low) < len(answers), [a["probability"] for a in answers]  # both kinds present

        metrics = client.get("/metrics").text
        assert _metric(metrics, "rakuten_low_confidence_predictions_total") == len(low)
        assert _metric(metrics, "rakuten_review_confidence_threshold") == THRESHOLD

        queue = _queue(client, root, len(low))
        assert queue["threshold"] == THRESHOLD and queue["images_kept"] is True
        assert {item["prediction_id"] for item in queue["items"]} == set(low)
        times = [item["created_at"] for item in queue["items"]]
        assert times == sorted(times, reverse=True)  # newest first
        item = queue["items"][0]
        served = low[item["prediction_id"]]
        assert (item["prdtypecode"], item["probability"], item["designation"]) == (
            served["prdtypecode"], served["probability"], LISTINGS[answers.index(served)],
        )  # fmt: skip

        forbidden = client.get("/v1/review", headers=alice)
        assert forbidden.status_code == 403 and "admin" in forbidden.json()["detail"]

        # Label from the queue through the feedback route: every second one is the predicted code.
        labels = {}
        for i, pid in enumerate(sorted(low)):
            true = low[pid]["prdtypecode"] if i % 2 == 0 else (10 if low[pid]["prdtypecode"] != 10 else 40)
            r = client.post("/v1/feedback", json={"prediction_id": pid, "true_code": true}, headers=root)
            assert r.status_code == 202, r.text
            labels[pid] = true
        assert _queue(client, root, 0)["items"] == []  # labelled predictions leave the queue
    live = live_performance(settings, Params())
    version = answers[0]["model_version"]
    scores = live["versions"][version]
    assert scores["n"] == len(labels)
    expected = f1_score(
        [labels[p] for p in sorted(labels)],
        [low[p]["prdtypecode"] for p in sorted(labels)],
        average="weighted",
        zero_division=0,
    )
    assert abs(scores["weighted_f1"] - expected) < 1e-9
