"""Predict page: one listing (title, description, optional image) → category, probability, top 5, version."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from rakuten_mlops.api_client import ApiError, UserSession
from rakuten_mlops.ui import session
from rakuten_mlops.ui.charts import LABELS
from rakuten_mlops.ui.explain_view import (
    driving_words,
    highlight,
    modalities_frame,
    plain_text,
    terms_frame,
)
from rakuten_mlops.ui.labels import category_label, category_options, category_with_code, other_language

RESULT_KEY = "last_prediction"
LISTING_KEY = "last_listing"
IMAGE_KEY = "last_image"
IMAGE_TYPES = ["jpg", "jpeg", "png", "webp"]


def top_k_frame(prediction: dict[str, Any], lang: str) -> pd.DataFrame:
    """The top-k answer as rows: category (in `lang`), code, probability."""
    return pd.DataFrame(
        [
            {
                "category": category_with_code(t["code"], lang),
                "code": t["code"],
                "probability": t["probability"],
            }
            for t in prediction["top_k"][:5]
        ]
    )


HIGH_CONFIDENCE = 0.8  # the page's own line between "confident" and "check it"
LIMITS_KEY = "api_limits"


def confidence_level(probability: float, review_below: float) -> str:
    """``high``, ``uncertain`` (check it) or ``low`` (below the API's review threshold)."""
    if probability < review_below:
        return "low"
    return "high" if probability >= max(HIGH_CONFIDENCE, review_below) else "uncertain"


def api_limits(user: UserSession) -> dict[str, Any] | None:
    """The API's limits (`GET /v1/limits`), asked once per session; None when the API cannot say."""
    if LIMITS_KEY not in st.session_state:
        try:
            st.session_state[LIMITS_KEY] = session.api().limits(user.token)
        except ApiError as exc:
            if exc.status == 401:
                session.fail(exc)
            return None
    return dict(st.session_state[LIMITS_KEY])


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} kB"


def show_prediction(prediction: dict[str, Any], lang: str, review_below: float = 0.5) -> None:
    code = prediction["prdtypecode"]
    p = float(prediction["probability"])
    level = confidence_level(p, review_below)
    headline = f"### {category_label(code, lang)}\nProduct type code **{code}** · probability **{p:.1%}**"
    if level == "high":
        st.success(f"{headline}\n\nConfident (≥ {max(HIGH_CONFIDENCE, review_below):.0%}).")
    elif level == "uncertain":
        st.info(
            f"{headline}\n\nUncertain: between the review threshold {review_below:.0%} and "
            f"{HIGH_CONFIDENCE:.0%}; check the top 5 before relying on it.",
            icon=":material/help:",
        )
    else:
        st.warning(
            f"{headline}\n\nLow confidence: below the API's review threshold of {review_below:.0%}, "
            "so this prediction goes to the review queue. Check the top 5.",
            icon=":material/warning:",
        )
    st.caption(
        f"{category_label(code, other_language(lang))} · prediction id `{prediction['prediction_id']}`"
    )
    c1, c2, c3 = st.columns(3)
    c1.metric("Probability", f"{p:.1%}")
    c2.metric("Model version", str(prediction["model_version"]))
    c3.metric("Used", "text + image" if prediction["modalities"] == "text+image" else "text only")
    st.caption(f"Answered by model `{prediction['model_name']}` version {prediction['model_version']}.")
    top = top_k_frame(prediction, lang)
    chart = (
        alt.Chart(top)
        .mark_bar()
        .encode(
            x=alt.X("probability:Q", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("category:N", sort="-x", title=None, axis=LABELS),
            tooltip=["category", "code", alt.Tooltip("probability:Q", format=".1%")],
        )
        .properties(title="Top 5", height=alt.Step(30))
    )
    st.altair_chart(chart, width="stretch")


def show_explanation(explanation: dict[str, Any], title: str, description: str) -> None:
    """The words that pushed the answer, highlighted in the listing, and each modality's share."""
    st.subheader("Why this category")
    words = driving_words(explanation)
    st.markdown(f"**Title:** {highlight(plain_text(title), words)}", unsafe_allow_html=True)
    if description.strip():
        st.markdown(f"**Description:** {highlight(plain_text(description), words)}", unsafe_allow_html=True)
    left, right = st.columns(2)
    terms = terms_frame(explanation)
    if terms.empty:
        left.info("No word of this listing pushed towards this category (the answer comes from elsewhere).")
    else:
        left.dataframe(terms, hide_index=True, key="explain_terms")
    right.dataframe(modalities_frame(explanation), hide_index=True, key="explain_modalities")
    st.caption(
        f"Words: contributions to the score of the {explanation['terms_from']} member of the text model "
        f"({explanation['text_model']}), character n-grams counted with the words they come from. "
        "Shares: each input's part in the category's logit."
    )


def feedback_box(user: UserSession, prediction: dict[str, Any], lang: str) -> None:
    """Say whether the answer was right: both kinds of label feed the live F1 of the monitoring page."""
    code = prediction["prdtypecode"]
    if st.button(
        f"Correct: it is {category_with_code(code, lang)}", key="feedback_correct", icon=":material/check:"
    ):
        _send_feedback(user, prediction, int(code), category_with_code(code, lang))
    with st.expander("Wrong category? Report the true one"):
        options = category_options(lang)
        labels = list(options)
        default = labels.index(category_with_code(code, lang))
        choice = st.selectbox("True category", labels, index=default, key="feedback_code")
        if st.button("Send feedback", key="feedback_send"):
            _send_feedback(user, prediction, options[choice], choice)


def _send_feedback(user: UserSession, prediction: dict[str, Any], code: int, label: str) -> None:
    try:
        session.api().feedback(user.token, str(prediction["prediction_id"]), code)
    except ApiError as exc:
        session.fail(exc)
    st.success(f"Thanks: recorded {label} for this prediction.")


def main() -> None:
    user = session.require_login()
    lang = session.lang()
    st.title("Predict a product type")
    limits = api_limits(user)
    max_image = int(limits["max_image_bytes"]) if limits else None
    review_below = float(limits["review_below"]) if limits else 0.5
    form_side, result_side = st.columns([2, 3], gap="large")
    with form_side, st.form("predict"):
        designation = st.text_input("Title (designation)", key="designation")
        description = st.text_area("Description (optional, HTML is fine)", key="description")
        limit_text = (
            f"at most {_size(max_image)}, the API's limit" if max_image else "the API's limit applies"
        )
        image = st.file_uploader(
            f"Image (optional: JPEG, PNG or WebP; {limit_text})",
            type=IMAGE_TYPES,
            key="image",
            max_upload_size=max(1, -(-max_image // (1024 * 1024))) if max_image else None,
        )
        explain = st.checkbox("Explain: highlight the words behind the answer", key="explain")
        submitted = st.form_submit_button("Predict", type="primary", key="predict_submit")
    with result_side:
        if submitted:
            _submit(user, designation, description, image, explain, max_image)
        prediction = st.session_state.get(RESULT_KEY)
        if not prediction:
            st.caption("The answer appears here.")
            return
        thumb = st.session_state.get(IMAGE_KEY)
        if thumb:
            st.image(thumb, width=160, caption="the uploaded image")
        show_prediction(prediction, lang, review_below)
        feedback_box(user, prediction, lang)
    if prediction.get("explanation"):
        show_explanation(prediction["explanation"], *st.session_state.get(LISTING_KEY, ("", "")))


def _submit(
    user: UserSession, designation: str, description: str, image: Any, explain: bool, max_image: int | None
) -> None:
    st.session_state.pop(RESULT_KEY, None)
    st.session_state.pop(IMAGE_KEY, None)
    if not designation.strip():
        st.warning("Type the product title first.")
        return
    data = image.getvalue() if image is not None else None
    if data is not None and max_image is not None and len(data) > max_image:
        st.error(
            f"The image is {_size(len(data))} ({len(data)} bytes); the API accepts at most "
            f"{_size(max_image)} ({max_image} bytes). Use a smaller image."
        )
        return
    try:
        with st.spinner("Asking the API…"):
            st.session_state[RESULT_KEY] = session.api().predict(
                user.token,
                designation,
                description,
                data,
                image.name if image is not None else "image",
                (image.type or "application/octet-stream") if image is not None else "",
                explain=explain,
            )
            st.session_state[LISTING_KEY] = (designation, description)
            if data is not None:
                st.session_state[IMAGE_KEY] = data
    except ApiError as exc:
        session.fail(exc)


if __name__ == "__main__":
    main()
