"""`"explain": true` on /v1/predict: terms and modality shares; without it, the response is unchanged."""

from __future__ import annotations

import re
import unicodedata

import pytest

# The fields every prediction had before explanations existed: a response without `explain` has
# exactly these (no "explanation": null).
PREDICTION_FIELDS = {
    "prediction_id", "prdtypecode", "category", "probability", "top_k", "modalities", "model_name",
    "model_version",
}  # fmt: skip
LISTING = {
    "designation": "Piscine tubulaire ronde 3,66 m avec pompe",
    "description": "<p>Bâche &amp; filtre</p>",
}


def _words(text: str) -> set[str]:
    plain = unicodedata.normalize("NFKD", text.lower())
    return set(re.findall(r"\w+", "".join(c for c in plain if not unicodedata.combining(c))))


@pytest.mark.parametrize("extra", [{}, {"explain": False}])
def test_without_explain_the_response_has_the_same_fields_as_before(api, extra):
    r = api.client.post("/v1/predict", json={**LISTING, **extra}, headers=api.headers())
    assert r.status_code == 200, r.text
    assert set(r.json()) == PREDICTION_FIELDS
    assert b"explanation" not in r.content


def test_explain_names_words_of_the_listing_that_push_the_answer(api):
    plain = api.client.post("/v1/predict", json=LISTING, headers=api.headers()).json()
    r = api.client.post("/v1/predict", json={**LISTING, "explain": True}, headers=api.headers())
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == PREDICTION_FIELDS | {"explanation"}
    assert body["prdtypecode"] == plain["prdtypecode"] and body["probability"] == plain["probability"]
    explanation = body["explanation"]
    assert explanation["code"] == body["prdtypecode"]
    terms = explanation["terms"]
    assert terms, explanation
    weights = [t["weight"] for t in terms]
    assert weights == sorted(weights, reverse=True) and all(w > 0 for w in weights)
    listing_words = _words(LISTING["designation"] + " " + LISTING["description"])
    assert all(set(t["term"].split()) <= listing_words for t in terms)
    shares = explanation["modalities"]
    assert shares[0]["modality"] == "text_ngrams"
    assert sum(m["share"] for m in shares) == pytest.approx(1.0, abs=1e-3)


def test_explain_in_a_multipart_form(api):
    r = api.client.post("/v1/predict", data={**LISTING, "explain": "true"}, headers=api.headers())
    assert r.status_code == 200, r.text
    assert r.json()["explanation"]["code"] == r.json()["prdtypecode"]


def test_a_bad_explain_value_is_a_422_that_names_the_field(api):
    r = api.client.post("/v1/predict", json={**LISTING, "explain": "perhaps"}, headers=api.headers())
    assert r.status_code == 422
    assert any(e["loc"][-1] == "explain" for e in r.json()["errors"]), r.json()


def test_batch_items_do_not_take_explain(api):
    r = api.client.post(
        "/v1/predict/batch", json={"items": [{**LISTING, "explain": True}]}, headers=api.headers()
    )
    assert r.status_code == 422
    assert any(e["loc"][-1] == "explain" for e in r.json()["errors"]), r.json()


def test_explain_needs_a_token(api):
    r = api.client.post("/v1/predict", json={**LISTING, "explain": True})
    assert r.status_code == 401
