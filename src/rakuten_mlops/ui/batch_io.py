"""Batch predictions for the UI: read an ``X_*_update.csv`` upload and an images zip, send them in chunks.

No Streamlit here, so the logic is testable on its own; the page only shows progress and results.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from rakuten_mlops.api_client import ApiClient, ApiError
from rakuten_mlops.data.loader import read_listings
from rakuten_mlops.data.schema import image_filename
from rakuten_mlops.infra import neutralise_cell
from rakuten_mlops.ui.labels import category_label

RESULT_COLUMNS = [
    "index", "productid", "imageid", "designation", "prdtypecode", "category", "category_en",
    "probability", "modalities", "model_version", "prediction_id", "error",
]  # fmt: skip
MAX_ZIP_ENTRIES = 100_000
MAX_IMAGES_BYTES = 512 * 1024 * 1024  # decompressed images kept in memory for one batch


def read_listings_upload(data: bytes, filename: str = "X_test_update.csv") -> pd.DataFrame:
    """Listings of an uploaded CSV in the challenge format (the loader's checks and messages)."""
    name = Path(filename).name or "listings.csv"
    with tempfile.TemporaryDirectory(prefix="rakuten-ui-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            return read_listings(path)
        except ValueError as exc:  # LayoutError too: say the uploaded file's name, not where it was put
            exc.args = (str(exc).replace(str(path), name).replace(tmp, ""),)
            raise exc from None  # same kind (LayoutError stays LayoutError), no temporary path


def needs_review(results: pd.DataFrame, review_below: float) -> pd.Series:
    """Rows to look at: failed, or predicted with a probability below the review threshold."""
    failed = results["error"].astype(str) != ""
    low = pd.to_numeric(results["probability"], errors="coerce").fillna(0.0) < review_below
    return failed | low


def read_images_zip(
    data: bytes, max_image_bytes: int, max_total_bytes: int
) -> tuple[dict[str, bytes], list[str]]:
    """Image bytes by file name (folders in the zip ignored), and what was skipped and why.

    Sizes are checked from the zip directory before anything is decompressed, so a zip bomb
    costs nothing.
    """
    images: dict[str, bytes] = {}
    skipped: list[str] = []
    total = 0
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ValueError(f"the images file is not a valid zip archive ({exc})") from None
    with archive:
        entries = [e for e in archive.infolist() if not e.is_dir()]
        if len(entries) > MAX_ZIP_ENTRIES:
            raise ValueError(f"the zip holds {len(entries)} files; the limit is {MAX_ZIP_ENTRIES}")
        for entry in entries:
            name = PurePosixPath(entry.filename).name
            if not name.lower().endswith((".jpg", ".jpeg", ".png", ".webp")):
                continue
            if entry.file_size > max_image_bytes:
                skipped.append(f"{name}: {entry.file_size} bytes, over the {max_image_bytes} byte limit")
                continue
            if total + entry.file_size > max_total_bytes:
                skipped.append(f"{name}: the zip holds more than {max_total_bytes} bytes of images")
                continue
            images[name] = archive.read(entry)
            total += len(images[name])
    return images, skipped


def image_for(row: pd.Series, images: dict[str, bytes]) -> bytes | None:
    """The challenge-named image of a listing, when the zip has it."""
    try:
        return images.get(image_filename(int(row["imageid"]), int(row["productid"])))
    except (TypeError, ValueError):
        return None


def _chunks(items: list[dict[str, Any]], max_rows: int, max_bytes: int) -> Iterator[list[dict[str, Any]]]:
    """Consecutive chunks of at most `max_rows` items and about `max_bytes` of base64 images."""
    chunk: list[dict[str, Any]] = []
    size = 0
    for item in items:
        item_bytes = (
            len(item.get("image") or b"") * 4 // 3 + len(item["designation"]) + len(item["description"])
        )
        if chunk and (len(chunk) >= max_rows or size + item_bytes > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += item_bytes
    if chunk:
        yield chunk


def _row(item: dict[str, Any], pred: dict[str, Any] | None, error: str = "") -> dict[str, Any]:
    code = pred["prdtypecode"] if pred else None
    return {
        "index": item["index"],
        "productid": item["productid"],
        "imageid": item["imageid"],
        "designation": item["designation"],
        "prdtypecode": code,
        "category": category_label(code, "fr") if code is not None else None,
        "category_en": category_label(code, "en") if code is not None else None,
        "probability": pred["probability"] if pred else None,
        "modalities": pred["modalities"] if pred else None,
        "model_version": pred["model_version"] if pred else None,
        "prediction_id": pred["prediction_id"] if pred else None,
        "error": error,
    }


def predict_listings(
    client: ApiClient,
    token: str,
    listings: pd.DataFrame,
    images: dict[str, bytes] | None = None,
    *,
    max_rows: int = 64,
    max_bytes: int = 8 * 1024 * 1024,
    on_progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Predict every listing through the batch route; one row per listing, in input order.

    A chunk the API rejects as a whole (413/422: an oversized or broken image, a title over the
    limit) is retried row by row, so one bad listing fails alone, with the API's reason in
    `error`. Errors that concern every row (401, 403, 503, API down) raise `ApiError`.
    """
    images = images or {}
    items, rows = [], {}
    for index, row in listings.iterrows():
        item = {
            "index": index,
            "productid": row.get("productid"),
            "imageid": row.get("imageid"),
            "designation": str(row.get("designation") or ""),
            "description": str(row.get("description") or ""),
            "image": image_for(row, images),
        }
        if item["designation"].strip():
            items.append(item)
        else:
            rows[index] = _row(item, None, "designation is empty: nothing to predict from")
    done = len(rows)
    if on_progress:
        on_progress(done, len(listings))
    for chunk in _chunks(items, max_rows, max_bytes):
        try:
            preds = client.predict_batch(token, chunk)
            results = [_row(item, pred) for item, pred in zip(chunk, preds, strict=True)]
        except ApiError as exc:
            if exc.status not in (413, 422):
                raise
            results = []
            for item in chunk:
                try:
                    results.append(_row(item, client.predict_batch(token, [item])[0]))
                except ApiError as one:
                    if one.status not in (413, 422):
                        raise
                    results.append(_row(item, None, f"{one.status}: {one.detail}"))
        for result in results:
            rows[result["index"]] = result
        done += len(chunk)
        if on_progress:
            on_progress(done, len(listings))
    return pd.DataFrame([rows[i] for i in listings.index], columns=RESULT_COLUMNS)


def predictions_csv(results: pd.DataFrame) -> bytes:
    """The predictions as CSV, index column first like the challenge files.

    Text cells that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first)
    get a leading `'`: the uploaded titles come from anyone.
    """
    return results.map(neutralise_cell).to_csv(index=False).encode("utf-8")
