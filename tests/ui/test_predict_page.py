"""Predict page and login against the real test API: results, languages and every error message."""

from __future__ import annotations

import dataclasses
import io
import re

import pytest
from PIL import Image

from rakuten_mlops.ui.labels import category_label
from rakuten_mlops.ui.session import USER_KEY
from tests.helpers import free_port
from tests.ui.helpers import log_in, texts

TITLE = "Piscine tubulaire ronde 3,66 m avec pompe de filtration"


def _jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buf, "JPEG")
    return buf.getvalue()


def _predict(at, title: str = TITLE, image: tuple[str, bytes, str] | None = None):
    at.text_input(key="designation").input(title)
    at.text_area(key="description").input("<p>Bâche &amp; pompe incluses</p>")
    if image is not None:
        at.file_uploader(key="image").set_value(image)
    return at.button(key="predict_submit").click().run()


def _result_box(at) -> str:
    boxes = [*at.success, *at.info, *at.warning]
    return next(b.value for b in boxes if "Product type code" in b.value)


def _shown(prediction: dict, at) -> None:
    at.session_state["last_prediction"] = prediction
    at.run()


@pytest.mark.parametrize(
    ("probability", "kind", "words"),
    [
        (0.97, "success", "Confident (≥ 80%)."),
        (0.57, "info", "Uncertain: between the review threshold 50% and 80%"),
        (0.31, "warning", "Low confidence: below the API's review threshold of 50%"),
    ],
)
def test_the_result_is_styled_by_confidence_with_the_threshold_stated(make_app, probability, kind, words):
    at = make_app()
    prediction = {
        "prdtypecode": 2583, "probability": probability, "prediction_id": "p-1", "model_version": "1",
        "model_name": "m", "modalities": "text", "top_k": [{"code": 2583, "probability": probability}],
    }  # fmt: skip
    _shown(prediction, at)
    assert not at.exception, at.exception
    boxes = {"success": at.success, "info": at.info, "warning": at.warning}
    shown = [b.value for b in boxes[kind] if "Product type code **2583**" in b.value]
    assert len(shown) == 1 and words in shown[0] and f"{probability:.1%}" in shown[0]
    if kind != "success":
        assert not [b for b in at.success if "Product type code" in b.value], (
            "a doubtful answer styled as success"
        )


def test_correct_is_one_click_and_counts_for_live_f1(make_app, stack):
    at = make_app()
    _predict(at)
    prediction = at.session_state["last_prediction"]
    at.button(key="feedback_correct").click().run()
    assert not at.error, [e.value for e in at.error]
    assert any(s.value.startswith("Thanks: recorded") for s in at.success)
    again = stack.call("POST", "/v1/feedback", json={
        "prediction_id": prediction["prediction_id"], "true_code": prediction["prdtypecode"],
    })  # fmt: skip
    assert again.status_code == 409, "the first label was recorded: a second one is refused"


def test_login_form_first_then_predicting_shows_the_apis_answer(make_app, stack):
    at = make_app(user=None)
    assert at.text_input(key="login_username") is not None
    assert "Log in" in texts(at)
    log_in(at, "alice")
    assert "Logged in as **alice** (predictor)" in texts(at)
    assert f"version **{stack.version}**" in texts(at)

    _predict(at)
    assert not at.exception and not at.error, [e.value for e in at.error]
    expected = stack.call("POST", "/v1/predict", json={"designation": TITLE}).json()
    shown = texts(at)
    result = _result_box(at)
    assert category_label(expected["prdtypecode"], "fr") in result
    assert f"Product type code **{expected['prdtypecode']}**" in result
    assert category_label(expected["prdtypecode"], "en") in shown  # the other language, as a caption
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Model version"] == stack.version
    assert metrics["Probability"].endswith("%")
    assert metrics["Used"] == "text only"
    assert f"version {stack.version}" in shown


def test_english_labels_and_image_upload(make_app, stack):
    at = make_app()
    at.radio(key="lang").set_value("en").run()
    _predict(at, image=("photo.jpg", _jpeg(), "image/jpeg"))
    assert not at.error, [e.value for e in at.error]
    prediction = at.session_state["last_prediction"]
    assert prediction["modalities"] in ("text", "text+image")
    assert category_label(prediction["prdtypecode"], "en") in _result_box(at)
    thumbs = at.get("image")
    assert thumbs and "the uploaded image" in str(thumbs[0].proto), "the uploaded image is not shown"


def test_feedback_is_accepted_by_the_api(make_app):
    at = make_app()
    _predict(at)
    at.selectbox(key="feedback_code").set_value(at.selectbox(key="feedback_code").options[0])
    at.button(key="feedback_send").click().run()
    assert not at.error, [e.value for e in at.error]
    assert "Thanks: recorded" in texts(at)


def test_wrong_password_says_so(make_app):
    at = make_app(user=None)
    log_in(at, "alice", "not-the-password")
    message = at.error[0].value
    assert message == "Logging in failed (401): wrong username or password."
    assert "token" not in message and "log in again" not in message
    assert at.text_input(key="login_username") is not None


def test_an_invalid_session_is_sent_back_to_the_login_form(make_app):
    at = make_app()
    user = at.session_state[USER_KEY]
    at.session_state[USER_KEY] = dataclasses.replace(user, token="not-a-valid-token")
    _predict(at)
    message = " ".join(str(e.value) for e in at.error)
    # The first call of the run (the sidebar's model info, or the prediction) meets the 401.
    assert "failed (401)" in message and "log in again" in message
    assert "token is malformed" in message
    assert USER_KEY not in at.session_state
    assert at.text_input(key="login_username") is not None


def test_oversized_image_is_refused_with_the_apis_own_limit(make_app, stack):
    at = make_app()
    limit = stack.call("GET", "/v1/limits").json()["max_image_bytes"]
    assert limit == stack.settings.max_image_bytes
    assert f"at most {limit / 1024:.0f} kB, the API's limit" in at.file_uploader(key="image").proto.label
    _predict(at, image=("huge.jpg", b"\xff\xd8" + b"0" * (limit + 10), "image/jpeg"))
    message = at.error[0].value
    assert f"the API accepts at most {limit / 1024:.0f} kB ({limit} bytes). Use a smaller image." in message
    assert "last_prediction" not in at.session_state


def test_broken_image_shows_the_422_message(make_app):
    at = make_app()
    _predict(at, image=("broken.png", b"this is not a picture", "image/png"))
    message = at.error[0].value
    assert "Prediction failed (422)" in message and "could not be decoded" in message


def test_blank_title_is_caught_before_calling_the_api(make_app):
    at = make_app()
    _predict(at, title="   ")
    assert "Type the product title first." in [w.value for w in at.warning]
    assert "last_prediction" not in at.session_state


def test_api_down_says_how_to_start_it(make_app, ui_env):
    closed = f"http://127.0.0.1:{free_port()}"
    ui_env(url=closed)
    at = make_app(user=None)
    log_in(at, "alice")
    message = at.error[0].value
    assert f"the API at {closed} does not answer" in message
    assert "rakuten-mlops serve" in message


def test_api_going_down_after_login_is_reported_on_predict(make_app, ui_env):
    at = make_app()
    ui_env(url=f"http://127.0.0.1:{free_port()}")
    _predict(at)
    message = " ".join(str(e.value) for e in at.error)
    assert "Prediction failed: the API at" in message and "does not answer" in message


def test_explain_highlights_the_words_behind_the_answer(make_app, stack):
    at = make_app()
    _predict(at)
    assert "Why this category" not in texts(at)  # not asked for: nothing shown
    at.checkbox(key="explain").check()
    _predict(at)
    assert not at.exception and not at.error, [e.value for e in at.error]
    explanation = at.session_state["last_prediction"]["explanation"]
    expected = stack.call("POST", "/v1/predict", json={"designation": TITLE, "explain": True}).json()
    assert explanation["code"] == expected["prdtypecode"]
    assert "Why this category" in texts(at)
    title_line = next(m.value for m in at.markdown if m.value.startswith("**Title:**"))
    marked = {w.lower() for w in re.findall(r"<mark[^>]*>([^<]+)</mark>", title_line)}
    assert marked, title_line
    assert marked <= {w for t in explanation["terms"] for w in t["term"].split()}
    shown_terms = next(d.value for d in at.dataframe if "term" in d.value.columns)
    assert shown_terms["term"].tolist() == [t["term"] for t in explanation["terms"]]
