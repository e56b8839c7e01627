"""Data page: class distribution, text lengths, example listings and images per class of the training data.

Read through the API's training data routes (`GET /v1/data/...`): summaries and a few examples,
never the data set itself.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from rakuten_mlops.api_client import ApiError, UserSession
from rakuten_mlops.ui import session
from rakuten_mlops.ui.charts import LABELS
from rakuten_mlops.ui.data_view import class_frame, decoded_images, length_frame
from rakuten_mlops.ui.explain_view import plain_text
from rakuten_mlops.ui.labels import category_options

NO_DATA = (
    "No training data yet: run `rakuten-mlops pipeline run --data-dir DATA` (try `rakuten-mlops data sample "
    "--out DATA` first), or `rakuten-mlops streams make` then `streams next` for a training pool."
)


def show_classes(summary: dict[str, Any], lang: str) -> None:
    counts = class_frame(summary, lang)
    chart = (
        alt.Chart(counts)
        .mark_bar()
        .encode(
            x=alt.X("rows:Q"),
            y=alt.Y("category:N", sort="-x", title=None, axis=LABELS),
            tooltip=["category", "rows", alt.Tooltip("share:Q", format=".1%")],
        )
        .properties(title="Class distribution", height=alt.Step(20))
    )
    st.altair_chart(chart, width="stretch")


def show_lengths(summary: dict[str, Any]) -> None:
    """One histogram per text field, each with its own axes (titles are short, descriptions long)."""
    lengths = length_frame(summary)
    panels = st.columns(2)
    for panel, field in zip(panels, ("designation", "description"), strict=True):
        part = lengths[(lengths["field"] == field) & (lengths["listings"] > 0)]
        if part.empty:
            panel.caption(f"No {field} text.")
            continue
        chart = (
            alt.Chart(part)
            .mark_bar(opacity=0.85)
            .encode(
                x=alt.X(
                    "start:Q", title=f"{field} length (characters)", scale=alt.Scale(zero=True, nice=True)
                ),
                x2="end:Q",
                y=alt.Y("listings:Q", title="listings"),
                tooltip=["start", "end", "listings"],
            )
            .properties(title=f"{'Title' if field == 'designation' else 'Description'} length")
        )
        panel.altair_chart(chart, width="stretch")
    medians = summary["median_chars"]
    st.caption(
        f"Median title {medians.get('designation', 0):.0f} characters, median description "
        f"{medians.get('description', 0):.0f}; "
        f"{summary['empty_description_share']:.0%} of descriptions are empty."
    )


def show_examples(user: UserSession, source_id: str, summary: dict[str, Any], lang: str) -> None:
    st.subheader("Examples per class")
    options = category_options(lang)
    present = {int(c["code"]) for c in summary["class_counts"]}
    labels = [label for label, code in options.items() if code in present]
    choice = st.selectbox("Class", labels, key="data_class")
    if choice is None:
        return
    try:
        examples = session.api().data_examples(user.token, source_id, options[choice])
    except ApiError as exc:
        session.fail(exc)
    rows = pd.DataFrame(examples["rows"])
    for field in ("designation", "description"):  # as a reader sees them: no tags, no entities
        if field in rows.columns:
            rows[field] = [plain_text(str(v)) if v is not None else "" for v in rows[field]]
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        column_config={"description": st.column_config.TextColumn("description", width="large")},
    )
    images = decoded_images(examples)
    if not images:
        st.caption(
            "No images for these listings on the API's machine (the data has none, or they were moved)."
        )
        return
    grid = st.columns(4)
    for i, (image, caption) in enumerate(images):
        grid[i % 4].image(image, caption=caption, width="stretch")


def _champion_source(sources: list[dict[str, Any]], pipeline: str | None, champion: str | None) -> int | None:
    """Index of the serving champion's training data among `sources`; None when it is not there."""
    for i, s in enumerate(sources):
        if s["kind"] == "champion":
            return i
    if champion is not None and pipeline == champion:
        return next((i for i, s in enumerate(sources) if s["id"] == "split-train"), None)
    return None


def main() -> None:
    user = session.require_login()
    lang = session.lang()
    st.title("Training data")
    try:
        known = session.api().data_sources(user.token)
    except ApiError as exc:
        session.fail(exc)
    sources = {s["label"]: s for s in known["sources"]}
    if not sources:
        st.info(NO_DATA)
        st.stop()
    version, champion = known["pipeline_version"], known["champion"]
    labels = list(sources)
    default = _champion_source(known["sources"], version, champion)
    if default is None:
        st.warning(
            f"The training data of champion version {champion or '(none)'} is not available on the API's "
            "machine (a later run replaced it and monitoring kept no sample): choose another data set."
        )
    label = st.selectbox("Data", labels, index=default or 0, key="data_source")
    source = sources[label]
    if source["kind"] == "pipeline" and version:
        status = "the champion" if version == champion else f"not the champion (version {champion or 'none'})"
        st.caption(
            f"From {source['location']} — the data model version {version} ({status}) "
            "was trained and evaluated on."
        )
    else:
        st.caption(f"From {source['location']}")
    try:
        summary = session.api().data_summary(user.token, source["id"])
    except ApiError as exc:
        session.fail(exc)
    c1, c2, c3 = st.columns(3)
    c1.metric("Listings", summary["listings"])
    c2.metric("Classes", summary["classes"])
    c3.metric("Empty descriptions", f"{summary['empty_description_share']:.0%}")
    show_classes(summary, lang)
    show_lengths(summary)
    show_examples(user, source["id"], summary, lang)


if __name__ == "__main__":
    main()
