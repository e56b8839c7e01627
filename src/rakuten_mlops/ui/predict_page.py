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


def show_prediction(prediction: dict[str, Any], lang: str) -> None:
    code = prediction["prdtypecode"]
    st.success(f"### {category_label(code, lang)}\nProduct type code **{code}**")
    st.caption(
        f"{category_label(code, other_language(lang))} · prediction id `{prediction['prediction_id']}`"
    )
    c1, c2, c3 = st.columns(3)
    c1.metric("Probability", f"{prediction['probability']:.1%}")
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
    """Report the true category: it feeds the live F1 of the monitoring page."""
    with st.expander("Wrong category? Report the true one"):
        options = category_options(lang)
        labels = list(options)
        default = labels.index(category_with_code(prediction["prdtypecode"], lang))
        choice = st.selectbox("True category", labels, index=default, key="feedback_code")
        if st.button("Send feedback", key="feedback_send"):
            try:
                session.api().feedback(user.token, str(prediction["prediction_id"]), options[choice])
            except ApiError as exc:
                session.fail(exc)
            st.success(f"Thanks: recorded {choice} for this prediction.")


def main() -> None:
    user = session.require_login()
    lang = session.lang()
    st.title("Predict a product type")
    with st.form("predict"):
        designation = st.text_input("Title (designation)", key="designation")
        description = st.text_area("Description (optional, HTML is fine)", key="description")
        image = st.file_uploader("Image (optional: JPEG, PNG or WebP)", type=IMAGE_TYPES, key="image")
        explain = st.checkbox("Explain: highlight the words behind the answer", key="explain")
        submitted = st.form_submit_button("Predict", type="primary", key="predict_submit")
    if submitted:
        st.session_state.pop(RESULT_KEY, None)
        if not designation.strip():
            st.warning("Type the product title first.")
        else:
            try:
                with st.spinner("Asking the API…"):
                    st.session_state[RESULT_KEY] = session.api().predict(
                        user.token,
                        designation,
                        description,
                        image.getvalue() if image is not None else None,
                        image.name if image is not None else "image",
                        (image.type or "application/octet-stream") if image is not None else "",
                        explain=explain,
                    )
                    st.session_state[LISTING_KEY] = (designation, description)
            except ApiError as exc:
                session.fail(exc)
    prediction = st.session_state.get(RESULT_KEY)
    if prediction:
        show_prediction(prediction, lang)
        if prediction.get("explanation"):
            show_explanation(prediction["explanation"], *st.session_state.get(LISTING_KEY, ("", "")))
        feedback_box(user, prediction, lang)


if __name__ == "__main__":
    main()
