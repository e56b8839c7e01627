"""Review page (admins): served predictions below the confidence threshold, waiting for a label.

A label sent here goes to `POST /v1/feedback` like any other: it counts in live F1 and the
prediction leaves the queue. A listing sent with an image shows the small thumbnail the API kept of
it (fetched with the session's token, like every other call).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from rakuten_mlops.api_client import ApiError, UserSession
from rakuten_mlops.ui import session
from rakuten_mlops.ui.labels import category_options, category_with_code

PAGE_SIZE = 20


def show_image(user: UserSession, item: dict[str, Any]) -> None:
    if not item["image_sha256"]:
        st.caption("No image was sent with this listing.")
        return
    if not item.get("has_image"):
        st.caption(f"An image was sent (SHA-256 {item['image_sha256'][:12]}…); its thumbnail is not kept.")
        return
    try:
        jpeg = session.api().review_image(user.token, item["prediction_id"])
    except ApiError as exc:
        st.caption(exc.message)
        return
    st.image(jpeg, caption="the image sent with the listing", width="stretch")


def show_item(user: UserSession, item: dict[str, Any], lang: str) -> None:
    pid = item["prediction_id"]
    with st.container(border=True):
        image_column, text_column = st.columns([1, 3])
        with image_column:
            show_image(user, item)
        with text_column:
            st.markdown(f"**{item['designation']}**")
            if item["description"]:
                st.caption(item["description"][:500])
            top = ", ".join(
                f"{category_with_code(t['code'], lang)} {t['probability']:.0%}" for t in item["top_k"][:3]
            )
            st.caption(
                f"Predicted {category_with_code(item['prdtypecode'], lang)} at {item['probability']:.0%} by "
                f"version {item['model_version']} for {item['username']} on {item['created_at']}. "
                f"Top: {top or '–'}"
            )
        options = category_options(lang)
        labels = list(options)
        default = (
            labels.index(category_with_code(item["prdtypecode"], lang))
            if item["prdtypecode"] in options.values()
            else 0
        )
        chosen = st.selectbox("True category", labels, index=default, key=f"review_label_{pid}")
        if st.button("Send label", key=f"review_send_{pid}", type="primary"):
            try:
                session.api().feedback(user.token, pid, options[chosen])
            except ApiError as exc:
                session.fail(exc)
            session.flash(f"Label {chosen} recorded for “{item['designation'][:60]}”.", "success")
            st.rerun()


def main() -> None:
    user = session.require_login()
    st.title("Review")
    if not user.is_admin:
        st.info("The review queue is for admins: it lists every user's uncertain predictions.")
        st.stop()
    lang = session.lang()
    page = int(st.number_input("Page", min_value=1, value=1, step=1, key="review_page")) - 1
    try:
        queue = session.api().review_queue(user.token, limit=PAGE_SIZE, offset=page * PAGE_SIZE)
    except ApiError as exc:
        session.fail(exc)
    st.caption(
        f"{queue['total']} unlabelled predictions below {queue['threshold']:.0%} confidence in the last "
        f"{queue['window_days']:g} days (threshold: `monitoring.review.confidence_below` in params.yaml). "
        "A label sent here is feedback like any other: it counts in live F1."
    )
    if not queue["items"]:
        st.info("Nothing to review: every recent prediction is confident enough or already labelled.")
        return
    for item in queue["items"]:
        show_item(user, item, lang)


if __name__ == "__main__":
    main()
