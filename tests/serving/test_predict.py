"""Predictions, batch predictions, feedback and model information, with real tokens."""

from __future__ import annotations

import base64
import io
import uuid

from PIL import Image

from rakuten_mlops.categories import CODES, category_name


def _png(size: tuple[int, int] = (64, 48), fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, fmt)
    return buf.getvalue()


def _check_prediction(body: dict, champion) -> None:
    assert uuid.UUID(body["prediction_id"]).version == 7  # time-ordered (appdb.record_id)
    assert body["prdtypecode"] in CODES
    assert body["category"] == category_name(body["prdtypecode"])
    assert 0.0 <= body["probability"] <= 1.0
    probs = [t["probability"] for t in body["top_k"]]
    assert probs == sorted(probs, reverse=True) and len(probs) >= 1
    assert body["top_k"][0]["code"] == body["prdtypecode"]
    assert all(t["category"] == category_name(t["code"]) for t in body["top_k"])
    assert body["model_version"] == champion.version
    assert body["model_name"] == champion.model_name


def test_predict_json_returns_a_full_prediction(api, champion):
    r = api.client.post(
        "/v1/predict",
        json={"designation": "Piscine tubulaire ronde 3,66 m", "description": "<p>Pompe &amp; filtre</p>"},
        headers=api.headers(),
    )
    assert r.status_code == 200, r.text
    _check_prediction(r.json(), champion)
    assert r.json()["modalities"] == "text"


def test_predict_json_with_base64_image(api, champion):
    image = base64.b64encode(_png(fmt="JPEG")).decode()
    r = api.client.post(
        "/v1/predict", json={"designation": "Coussin velours", "image_base64": image}, headers=api.headers()
    )
    assert r.status_code == 200, r.text
    _check_prediction(r.json(), champion)


def test_predict_multipart_upload(api, champion):
    r = api.client.post(
        "/v1/predict",
        data={"designation": "Jeu de société enfants", "description": "dès 6 ans"},
        files={"image": ("photo.webp", _png(fmt="WEBP"), "image/webp")},
        headers=api.headers(),
    )
    assert r.status_code == 200, r.text
    _check_prediction(r.json(), champion)


def test_predict_multipart_without_image(api, champion):
    r = api.client.post("/v1/predict", data={"designation": "Drone quadricoptère"}, headers=api.headers())
    assert r.status_code == 200, r.text
    _check_prediction(r.json(), champion)


def test_batch_returns_one_prediction_per_item_in_order(api, champion):
    items = [{"designation": f"Livre de poche numéro {i}"} for i in range(5)]
    items[2] = {"designation": "Piscine hors sol", "description": "bâche"}
    r = api.client.post("/v1/predict/batch", json={"items": items}, headers=api.headers())
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert len(preds) == 5
    assert len({p["prediction_id"] for p in preds}) == 5
    for p in preds:
        _check_prediction(p, champion)
    single = api.client.post("/v1/predict", json=items[2], headers=api.headers()).json()
    assert preds[2]["prdtypecode"] == single["prdtypecode"]
    assert abs(preds[2]["probability"] - single["probability"]) < 1e-9


def test_admin_may_predict(api):
    r = api.client.post("/v1/predict", json={"designation": "Console"}, headers=api.headers("root"))
    assert r.status_code == 200


def test_feedback_on_a_served_prediction_is_accepted(api):
    pred = api.client.post(
        "/v1/predict", json={"designation": "Tente de jardin"}, headers=api.headers()
    ).json()
    r = api.client.post(
        "/v1/feedback",
        json={"prediction_id": pred["prediction_id"], "true_code": 2582},
        headers=api.headers(),
    )
    assert r.status_code == 202, r.text
    assert r.json()["prediction_id"] == pred["prediction_id"]
    assert r.json()["true_code"] == 2582 and r.json()["status"] == "accepted"
    assert uuid.UUID(r.json()["feedback_id"]).version == 7


def test_feedback_on_an_unknown_prediction_is_404(api):
    pid = str(uuid.uuid4())
    r = api.client.post("/v1/feedback", json={"prediction_id": pid, "true_code": 10}, headers=api.headers())
    assert r.status_code == 404
    assert pid in r.json()["detail"]


def test_feedback_with_an_unknown_code_says_which_codes_exist(api):
    pred = api.client.post("/v1/predict", json={"designation": "Tente"}, headers=api.headers()).json()
    r = api.client.post(
        "/v1/feedback",
        json={"prediction_id": pred["prediction_id"], "true_code": 12345},
        headers=api.headers(),
    )
    assert r.status_code == 422
    assert "unknown product type code" in r.json()["detail"] and "2583" in r.json()["detail"]


def test_model_endpoint_describes_the_champion(api, champion):
    r = api.client.get("/v1/model", headers=api.headers())
    assert r.status_code == 200
    body = r.json()
    assert body["version"] == champion.version and body["run_id"] == champion.run_id
    assert body["alias"] == "champion" and body["source"] == "registry" and body["ready"] is True


def test_probes(api):
    assert api.client.get("/healthz").json() == {"status": "ok"}
    r = api.client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}


def test_openapi_documents_error_bodies(api):
    spec = api.client.get("/openapi.json").json()
    predict = spec["paths"]["/v1/predict"]["post"]
    assert {"application/json", "multipart/form-data"} <= set(predict["requestBody"]["content"])
    for code in ("401", "403", "413", "422", "503"):
        assert predict["responses"][code]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/ErrorOut"
        )
    assert "/v1/model/reload" in spec["paths"] and "/metrics" in spec["paths"]
