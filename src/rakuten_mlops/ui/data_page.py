"""Data page: class distribution, text lengths, example listings and images per class of the training data."""

from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from rakuten_mlops.data.schema import LABEL
from rakuten_mlops.ui import session
from rakuten_mlops.ui.charts import LABELS
from rakuten_mlops.ui.data_view import (
    class_counts,
    data_sources,
    empty_description_share,
    examples,
    image_files,
    load_source,
    pipeline_version,
    text_lengths,
)
from rakuten_mlops.ui.labels import category_options
from rakuten_mlops.ui.registry_view import champion_version

NO_DATA = (
    "No training data yet: run `rakuten-mlops pipeline run --data-dir DATA` (try `rakuten-mlops data sample "
    "--out DATA` first), or `rakuten-mlops streams make` then `streams next` for a training pool."
)


@st.cache_data(show_spinner=False, max_entries=8)
def _load(path: str, mtime: float) -> pd.DataFrame:
    return load_source(Path(path))


def show_classes(frame: pd.DataFrame, lang: str) -> None:
    counts = class_counts(frame, lang)
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


def show_lengths(frame: pd.DataFrame) -> None:
    lengths = text_lengths(frame)
    chart = (
        alt.Chart(lengths)
        .mark_bar(opacity=0.8)
        .encode(
            x=alt.X("chars:Q", bin=alt.Bin(maxbins=40), title="characters"),
            y=alt.Y("count():Q", title="listings"),
            color=alt.Color("field:N"),
            column=alt.Column("field:N", title=None),
        )
        .resolve_scale(x="independent", y="independent")
        .properties(title="Text lengths", width=320)
    )
    st.altair_chart(chart)
    medians = lengths.groupby("field")["chars"].median()
    st.caption(
        f"Median title {medians.get('designation', 0):.0f} characters, median description "
        f"{medians.get('description', 0):.0f}; "
        f"{empty_description_share(frame):.0%} of descriptions are empty."
    )


def show_examples(frame: pd.DataFrame, lang: str) -> None:
    st.subheader("Examples per class")
    options = category_options(lang)
    present = set(frame[LABEL].astype(int))
    labels = [label for label, code in options.items() if code in present]
    choice = st.selectbox("Class", labels, key="data_class")
    rows = examples(frame, options[choice])
    columns = [c for c in ("designation", "description", "productid", "imageid") if c in rows.columns]
    st.dataframe(rows[columns], hide_index=True)
    images = image_files(rows)
    if not images:
        st.caption("No images for these listings on this machine (the data has none, or they were moved).")
        return
    grid = st.columns(4)
    for i, (path, caption) in enumerate(images):
        grid[i % 4].image(path, caption=caption, width="stretch")


def main() -> None:
    session.require_login()
    lang = session.lang()
    s = session.settings()
    st.title("Training data")
    champion = champion_version(s)
    sources = data_sources(s, champion)
    if not sources:
        st.info(NO_DATA)
        st.stop()
    label = st.selectbox("Data", list(sources), index=0, key="data_source")
    path = sources[label]
    version = pipeline_version(s)
    if "pipeline" in label and version:
        status = "the champion" if version == champion else f"not the champion (version {champion or 'none'})"
        st.caption(f"From {path} — the data model version {version} ({status}) was trained and evaluated on.")
    else:
        st.caption(f"From {path}")
    frame = _load(str(path), path.stat().st_mtime)
    c1, c2, c3 = st.columns(3)
    c1.metric("Listings", len(frame))
    c2.metric("Classes", frame[LABEL].nunique())
    c3.metric("Empty descriptions", f"{empty_description_share(frame):.0%}")
    show_classes(frame, lang)
    show_lengths(frame)
    show_examples(frame, lang)


if __name__ == "__main__":
    main()
