"""The UI's plain functions (no API, no Streamlit): uploads, error messages, labels."""

from __future__ import annotations

import io
import zipfile

import httpx
import pandas as pd
import pytest

from rakuten_mlops.api_client import ApiClient, ApiError, configured_api_url
from rakuten_mlops.config import Settings
from rakuten_mlops.data.schema import LayoutError
from rakuten_mlops.ui.batch_io import predict_listings, read_images_zip, read_listings_upload
from rakuten_mlops.ui.labels import category_label, category_with_code


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_images_zip_keeps_names_and_skips_oversized_files_before_decompressing():
    data = _zip(
        {"a/image_1_product_2.jpg": b"x" * 10, "image_3_product_4.jpg": b"0" * 5000, "notes.txt": b"hi"}
    )
    images, skipped = read_images_zip(data, max_image_bytes=1000, max_total_bytes=10_000)
    assert images == {"image_1_product_2.jpg": b"x" * 10}
    assert skipped == ["image_3_product_4.jpg: 5000 bytes, over the 1000 byte limit"]
    with pytest.raises(ValueError, match="not a valid zip archive"):
        read_images_zip(b"PK not really", 1000, 10_000)


def test_listings_upload_uses_the_loader_checks():
    good = b",designation,description,productid,imageid\n7,Chaise,,1,2\n"
    assert list(read_listings_upload(good, "X_test_update.csv")["designation"]) == ["Chaise"]
    with pytest.raises(LayoutError, match="missing column") as caught:
        read_listings_upload(b",designation\n0,Chaise\n", "x.csv")
    assert str(caught.value).startswith("x.csv: missing column") and "rakuten-ui-" not in str(caught.value)


def test_api_errors_name_the_status_and_what_to_do():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/auth/token":
            return httpx.Response(429, json={"detail": "too many failed logins; retry in 60 s"})
        return httpx.Response(503, json={"detail": "no model loaded yet; retry later"})

    client = ApiClient("http://api.test", transport=httpx.MockTransport(handler))
    with pytest.raises(ApiError) as exc:
        client.login("alice", "pw")
    assert exc.value.status == 429
    assert exc.value.message == (
        "Logging in failed (429): too many attempts; wait before retrying. "
        "API says: too many failed logins; retry in 60 s"
    )
    with pytest.raises(ApiError, match=r"Prediction failed \(503\): the API is not ready"):
        client.predict("token", "Chaise")


def test_batch_stops_on_errors_that_concern_every_row():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"detail": "token has expired"})

    client = ApiClient("http://api.test", transport=httpx.MockTransport(handler))
    listings = pd.DataFrame(
        {"designation": ["a", "b"], "description": ["", ""], "productid": [1, 2], "imageid": [3, 4]}
    )
    with pytest.raises(ApiError) as exc:
        predict_listings(client, "t", listings)
    assert exc.value.status == 401


def test_batch_sends_chunks_within_row_and_byte_limits():
    sizes: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        import json

        items = json.loads(request.content)["items"]
        sizes.append(len(items))
        preds = [
            {
                "prdtypecode": 2583,
                "probability": 0.9,
                "modalities": "text",
                "model_version": "3",
                "prediction_id": str(i),
            }
            for i in range(len(items))
        ]
        return httpx.Response(200, json={"predictions": preds})

    client = ApiClient("http://api.test", transport=httpx.MockTransport(handler))
    listings = pd.DataFrame(
        {"designation": [f"t{i}" for i in range(7)], "description": "", "productid": 1, "imageid": 2}
    )
    progress: list[tuple[int, int]] = []
    out = predict_listings(
        client, "t", listings, max_rows=3, on_progress=lambda d, t: progress.append((d, t))
    )
    assert sizes == [3, 3, 1]
    assert progress[-1] == (7, 7)
    assert (
        list(out["category"]) == ["Piscines et spas"] * 7
        and list(out["category_en"]) == ["Pools and spas"] * 7
    )


def test_labels_in_both_languages_and_unknown_codes():
    assert category_label(2583, "fr") == "Piscines et spas"
    assert category_with_code(2583, "en") == "Pools and spas (2583)"
    assert category_label(999, "en") == "999"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"serve_host": "0.0.0.0", "serve_port": 9000}, "http://127.0.0.1:9000"),
        ({"api_url": "http://api:8000/"}, "http://api:8000"),
    ],
)
def test_api_url_defaults_to_where_serve_listens(overrides, expected):
    assert configured_api_url(Settings(_env_file=None, **overrides)) == expected  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (2.2e-16, "< 0.001 (2.2e-16)"),
        (0.0004, "< 0.001 (4.0e-04)"),
        (0.866, "0.866"),
        (0.0, "0"),
        (None, "–"),
        (float("nan"), "–"),
        (12345678.0, "1.23e+07"),
    ],
)
def test_scores_are_shown_in_readable_formats(value, shown):
    from rakuten_mlops.ui.monitoring_view import readable

    assert readable(value) == shown


def test_the_reference_warning_names_a_stale_champion():
    from rakuten_mlops.ui.monitoring_view import reference_warning

    ok = {"reference": {"source": "champion v3 training data", "champion_version": "3", "is_champion": True}}
    assert reference_warning(ok, "3") is None
    stale = reference_warning(ok, "4")
    assert stale is not None and "training data of version 3, but version 4 is champion now" in stale
