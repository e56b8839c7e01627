"""Review page (admins): the low-confidence predictions the API lists, labelled from the page as feedback."""

from __future__ import annotations

import time

from tests.ui.helpers import texts

LISTINGS = ["zzq vrk plo", "xx", "objet", "lot divers", "article 42", "qwxz", "Piscine tubulaire ronde 3 m"]


def test_review_is_for_admins(make_app):
    at = make_app(page="review_page.py")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(i.value.startswith("The review queue is for admins") for i in at.info)


def _queue(stack, at_least: int) -> dict:
    deadline = time.monotonic() + 20
    while True:  # the API writes its prediction log in the background
        queue = stack.call("GET", "/v1/review", user="root", params={"limit": 200}).json()
        if queue["total"] >= at_least:
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
