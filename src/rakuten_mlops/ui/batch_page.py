"""Batch page: an ``X_*_update.csv`` file (+ optional images zip) → predictions table, chart, CSV download."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from rakuten_mlops.api_client import ApiError, UserSession
from rakuten_mlops.data.schema import LayoutError
from rakuten_mlops.ui import session
from rakuten_mlops.ui.batch_io import (
    MAX_IMAGES_BYTES,
    needs_review,
    predict_listings,
    predictions_csv,
    read_images_zip,
    read_listings_upload,
)
from rakuten_mlops.ui.charts import LABELS
from rakuten_mlops.ui.labels import category_with_code

RESULT_KEY = "batch_result"


def class_distribution(results: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Predicted rows per category (labels in `lang`), most frequent first."""
    ok = results.dropna(subset=["prdtypecode"])
    counts = ok["prdtypecode"].astype(int).value_counts()
    return pd.DataFrame(
        {"category": [category_with_code(c, lang) for c in counts.index], "rows": counts.to_numpy()}
    )


SHOWN_COLUMNS = [
    "index", "error", "category", "probability", "designation", "prdtypecode", "modalities",
    "model_version", "productid", "imageid", "prediction_id",
]  # fmt: skip


def show_results(results: pd.DataFrame, lang: str, review_below: float) -> None:
    """Summary and download first, then the rows (all, or those needing review), then the chart."""
    failed = results["error"].astype(bool)
    review = needs_review(results, review_below)
    versions = sorted({str(v) for v in results["model_version"].dropna()})
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Listings", len(results))
    c2.metric("Predicted", int((~failed).sum()))
    c3.metric("Failed", int(failed.sum()))
    c4.metric("Needs review", int(review.sum()))
    st.download_button(
        "Download predictions (CSV)",
        predictions_csv(results),
        "predictions.csv",
        "text/csv",
        key="batch_download",
        type="primary",
        icon=":material/download:",
    )
    if versions:
        st.caption(
            f"Answered by model version {', '.join(versions)}. Needs review: failed, or probability "
            f"below the API's review threshold of {review_below:.0%}."
        )
    if failed.any():
        st.warning(f"{int(failed.sum())} listings could not be predicted: see the `error` column.")
    which = st.segmented_control(
        "Rows", ["All", "Needs review"], default="All", key="batch_filter", selection_mode="single"
    )
    shown = results.copy()
    if lang == "en":
        shown["category"] = shown["category_en"]
    if which == "Needs review":
        shown = shown[review.to_numpy()]
    st.dataframe(
        shown[SHOWN_COLUMNS],
        hide_index=True,
        width="stretch",
        key="batch_table",
        column_config={
            "probability": st.column_config.ProgressColumn(
                "probability", format="percent", min_value=0.0, max_value=1.0
            ),
            "error": st.column_config.TextColumn("error", width="medium"),
            "designation": st.column_config.TextColumn("designation", width="large"),
            "category": st.column_config.TextColumn("category", width="medium"),
        },
    )
    dist = class_distribution(results, lang)
    if not dist.empty:
        chart = (
            alt.Chart(dist)
            .mark_bar()
            .encode(
                x="rows:Q",
                y=alt.Y("category:N", sort="-x", title=None, axis=LABELS),
                tooltip=["category", "rows"],
            )
            .properties(title="Predicted class distribution", height=alt.Step(22))
        )
        st.altair_chart(chart, width="stretch")


def _limits(user: UserSession) -> dict[str, Any]:
    """The API's limits (batch size, image bytes, review threshold); the UI's settings if it cannot say."""
    try:
        return session.api().limits(user.token)
    except ApiError as exc:
        if exc.status == 401:
            session.fail(exc)
        s = session.settings()
        return {"max_batch_size": s.max_batch_size, "max_image_bytes": s.max_image_bytes, "review_below": 0.5}


def main() -> None:
    user = session.require_login()
    lang = session.lang()
    s = session.settings()
    limits = _limits(user)
    st.title("Batch predictions")
    st.caption(
        "Upload listings in the challenge format (`X_test_update.csv`: index, designation, description, "
        "productid, imageid) and, optionally, a zip of their images named "
        "`image_<imageid>_product_<productid>.jpg` "
        f"(each image at most {limits['max_image_bytes'] // 1024} kB, the API's limit)."
    )
    listings_file = st.file_uploader("Listings (CSV)", type=["csv"], key="batch_csv")
    images_file = st.file_uploader("Images (optional, zip)", type=["zip"], key="batch_zip")
    rows_per_request = st.number_input(
        f"Listings per request (the API takes at most {limits['max_batch_size']})",
        min_value=1,
        max_value=int(limits["max_batch_size"]),
        value=int(limits["max_batch_size"]),
        key="batch_rows",
    )
    if st.button("Predict all", type="primary", disabled=listings_file is None, key="batch_submit"):
        st.session_state.pop(RESULT_KEY, None)
        assert listings_file is not None
        try:
            listings = read_listings_upload(listings_file.getvalue(), listings_file.name)
            images, skipped = (
                read_images_zip(images_file.getvalue(), int(limits["max_image_bytes"]), MAX_IMAGES_BYTES)
                if images_file is not None
                else ({}, [])
            )
        except (LayoutError, ValueError) as exc:
            st.error(f"Cannot read the upload: {exc}")
            st.stop()
        for line in skipped[:10]:
            st.warning(f"Image skipped: {line}")
        bar = st.progress(0.0, text=f"0 / {len(listings)} listings")

        def advance(done: int, total: int) -> None:
            bar.progress(done / max(total, 1), text=f"{done} / {total} listings")

        try:
            st.session_state[RESULT_KEY] = predict_listings(
                session.api(),
                user.token,
                listings,
                images,
                max_rows=int(rows_per_request),
                max_bytes=max(s.max_request_bytes // 2, 1024),
                on_progress=advance,
            )
        except ApiError as exc:
            session.fail(exc)
        bar.empty()
    results = st.session_state.get(RESULT_KEY)
    if results is not None:
        show_results(results, lang, float(limits["review_below"]))


if __name__ == "__main__":
    main()
