"""Data page: class distribution, text lengths, examples and images per class of the training split."""

from __future__ import annotations

import pandas as pd

from rakuten_mlops.categories import category_name
from rakuten_mlops.ui.explain_view import plain_text
from tests.ui.helpers import chart_frames, texts


def test_training_split_classes_lengths_examples_and_images(make_app, stack):
    train = pd.read_parquet(stack.home / "pipeline" / "splits" / "train.parquet")
    at = make_app(page="data_page.py")
    assert not at.exception and not at.error, [e.value for e in at.error]
    page = texts(at)
    assert f"the data model version {stack.version} (the champion) was trained and evaluated on" in page
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Listings"] == str(len(train))
    assert metrics["Classes"] == str(train["prdtypecode"].nunique())

    frames = chart_frames(at)
    classes = next(f for f in frames if "rows" in f.columns)
    assert classes["rows"].sum() == len(train)
    top = train["prdtypecode"].value_counts()
    assert f"{category_name(top.index[0], 'fr')} ({top.index[0]})" in set(classes["category"])
    lengths = [f for f in frames if "listings" in f.columns]
    assert len(lengths) == 2, "one histogram per text field, each with its own axes"
    assert lengths[0]["listings"].sum() == len(train)  # every title is in one band
    assert lengths[1]["listings"].sum() <= len(train)  # empty descriptions have no band
    assert "of descriptions are empty" in page

    code = 2583
    at.selectbox(key="data_class").set_value(f"{category_name(code, 'fr')} ({code})").run()
    shown = at.dataframe[0].value
    expected = set(train.loc[train["prdtypecode"] == code, "designation"])
    assert 0 < len(shown) <= 8
    assert not any("<" in str(d) or "&amp;" in str(d) for d in shown["description"]), "raw HTML shown"
    assert len(set(shown["designation"]) & {plain_text(t) for t in expected}) == len(shown)
    images = at.get("image")
    assert len(images) == len(shown), "one image per example listing (the sample has images)"


def test_english_class_names(make_app):
    at = make_app(page="data_page.py")
    at.radio(key="lang").set_value("en").run()
    assert "Pools and spas (2583)" in at.selectbox(key="data_class").options


def test_no_training_data_says_what_to_run(make_app, ui_env, empty_stack):
    ui_env(url=empty_stack.url)
    at = make_app(page="data_page.py")
    assert "No training data yet: run `rakuten-mlops pipeline run --data-dir DATA`" in texts(at)
