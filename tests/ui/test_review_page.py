"""Review page (admins): the low-confidence predictions the API lists, labelled from the page as feedback."""

from __future__ import annotations

import io
import time

from PIL import Image

from tests.ui.helpers import texts

LISTINGS = ["zzq vrk plo", "xx", "objet", "lot divers", "article 42", "qwxz", "Piscine tubulaire ronde 3 m"]


def test_review_is_for_admins(make_app):
    at = make_app(page="review_page.py")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(i.value.startswith("The review queue is for admins") for i in at.info)


def _queue(stack, at_least: int, with_image: str | None = None) -> dict:
    deadline = time.monotonic() + 20
    while True:  # the API writes its prediction log (and review thumbnails) in the background
        queue = stack.call("GET", "/v1/review", user="root", params={"limit": 200}).json()
        imaged = {i["prediction_id"] for i in queue["items"] if i["has_image"]}
        if queue["total"] >= at_least and (with_image is None or with_image in imaged):
            return dict(queue)
        assert time.monotonic() < deadline, queue
        time.sleep(0.1)


def test_admin_labels_an_uncertain_prediction_from_the_queue(make_app, stack):
    answers = [stack.call("POST", "/v1/predict", json={"designation": d}).json() for d in LISTINGS]
    low = [a for a in answers if a["probability"] < 0.5]  # params.yaml: monitoring.review.confidence_below
    assert low, [a["probability"] for a in answers]
    queue = _queue(stack, len(low))
    assert {a["prediction_id"] for a in low} <= {i["prediction_id"] for i in queue["items"]}

    at = make_app(user="root", page="review_page.py")
    assert not at.exception and not at.error, [e.value for e in at.error]
    page = texts(at)
    assert f"{queue['total']} unlabelled predictions below 50% confidence" in page
    assert "No image was sent with this listing." in page
    newest = queue["items"][0]
    assert newest["designation"] in page
    at.selectbox(key=f"review_label_{newest['prediction_id']}").set_value(
        next(o for o in at.selectbox(key=f"review_label_{newest['prediction_id']}").options if "(2583)" in o)
    ).run()
    at.button(key=f"review_send_{newest['prediction_id']}").click().run()
    assert not at.error, [e.value for e in at.error]
    assert any("recorded" in s.value for s in at.success)
    after = stack.call("GET", "/v1/review", user="root", params={"limit": 200}).json()
    assert after["total"] == queue["total"] - 1
    assert newest["prediction_id"] not in {i["prediction_id"] for i in after["items"]}
    # The label is feedback like any other: the prediction's owner may not label it again.
    again = stack.call(
        "POST", "/v1/feedback", json={"prediction_id": newest["prediction_id"], "true_code": 10}
    )
    assert again.status_code == 409


def test_a_listing_sent_with_an_image_shows_its_thumbnail(make_app, stack):
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 40, 90)).save(buf, "JPEG")
    files = {"image": ("photo.jpg", buf.getvalue(), "image/jpeg")}
    answer = stack.call("POST", "/v1/predict", data={"designation": "zzq vrk plo"}, files=files).json()
    assert answer["probability"] < 0.5, answer
    _queue(stack, 1, with_image=answer["prediction_id"])

    at = make_app(user="root", page="review_page.py")
    assert not at.exception and not at.error, [e.value for e in at.error]
    images = at.get("image")
    assert images and "the image sent with the listing" in str(images[0].proto), texts(at)
