"""Batch page against the real test API: CSV + images zip → table, chart, download; bad rows fail alone."""

from __future__ import annotations

import io
import zipfile

import pandas as pd

from rakuten_mlops.data.schema import TEST_IMAGES_DIR, X_TEST, image_filename
from tests.ui.helpers import chart_specs, texts


def _upload(stack, n: int = 12) -> tuple[pd.DataFrame, bytes, bytes]:
    """The first `n` test listings, one with an empty title and one with a broken image, and their zip."""
    frame = pd.read_csv(stack.data_dir / X_TEST, dtype=str, keep_default_na=False, index_col=0).head(n)
    frame.iloc[3, frame.columns.get_loc("designation")] = ""
    broken = frame.iloc[5]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for _, row in frame.iterrows():
            name = image_filename(int(row["imageid"]), int(row["productid"]))
            if row.name == broken.name:
                z.writestr(f"images/{name}", b"not a jpeg at all")
            else:
                z.write(stack.data_dir / TEST_IMAGES_DIR / name, f"images/{name}")
    csv = io.StringIO()
    frame.to_csv(csv)
    return frame, csv.getvalue().encode(), buf.getvalue()


def test_batch_predicts_every_listing_and_isolates_bad_rows(make_app, stack):
    frame, csv, images = _upload(stack)
    at = make_app(page="batch_page.py")
    at.file_uploader(key="batch_csv").set_value(("X_test_update.csv", csv, "text/csv"))
    at.file_uploader(key="batch_zip").set_value(("images.zip", images, "application/zip")).run()
    at.button(key="batch_submit").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]

    results = at.session_state["batch_result"]
    threshold = stack.call("GET", "/v1/limits").json()["review_below"]
    low = int(((results["error"] == "") & (results["probability"].astype(float) < threshold)).sum())
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Listings": "12", "Predicted": "10", "Failed": "2", "Needs review": str(2 + low)}
    assert list(results["index"]) == list(frame.index)
    errors = dict(zip(results["index"], results["error"], strict=True))
    assert errors[frame.index[3]].startswith("designation is empty")
    assert errors[frame.index[5]].startswith("422: ") and "could not be decoded" in errors[frame.index[5]]

    ok = results[results["error"] == ""]
    assert set(ok["model_version"]) == {stack.version}
    assert set(ok["modalities"]) == {"text"}  # a text-only champion ignores the images it receives
    rows = [
        {"designation": frame.loc[i, "designation"], "description": frame.loc[i, "description"]}
        for i in ok["index"][:4]
    ]
    expected = stack.call("POST", "/v1/predict/batch", json={"items": rows}).json()["predictions"]
    assert list(ok["prdtypecode"][:4]) == [p["prdtypecode"] for p in expected]
    assert list(ok["category"][:4]) == [p["category"] for p in expected]

    page = texts(at)
    assert f"Answered by model version {stack.version}." in page
    assert "2 listings could not be predicted" in page
    assert at.get("download_button"), "no download button"
    assert any("Predicted class distribution" in spec for spec in chart_specs(at))
    order = [type(e).__name__ for e in at.main]
    assert order.index("Dataframe") > max(
        i for i, e in enumerate(at.main) if "download_button" in str(getattr(e, "type", ""))
    ), "the download comes before the table"
    table = at.dataframe[0].value
    assert len(table) == 12 and list(table.columns[:4]) == ["index", "error", "category", "probability"]

    at.session_state["batch_filter"] = "Needs review"
    at.run()
    review = at.dataframe[0].value
    assert len(review) == 2 + low
    assert set(review["index"]) >= {frame.index[3], frame.index[5]}
    assert all(e or p < threshold for e, p in zip(review["error"], review["probability"], strict=True))


def test_a_file_in_the_wrong_format_is_explained(make_app):
    at = make_app(page="batch_page.py")
    bad = b",title,price\n0,Chaise,12\n"
    at.file_uploader(key="batch_csv").set_value(("X_test_update.csv", bad, "text/csv")).run()
    at.button(key="batch_submit").click().run()
    message = at.error[0].value
    assert message.startswith("Cannot read the upload: X_test_update.csv: missing column(s)")
    assert "designation" in message
    assert "rakuten-ui-" not in message and "/tmp" not in message, "an internal path leaked"
