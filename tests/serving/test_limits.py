"""Limits and validation: each malformed or oversize request gets a 4xx that says what to fix."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image


def _image(fmt: str, size: tuple[int, int] = (32, 32)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buf, fmt)
    return buf.getvalue()


def _post_b64(api, data: bytes):
    body = {"designation": "Lampe", "image_base64": base64.b64encode(data).decode()}
    return api.client.post("/v1/predict", json=body, headers=api.headers())


def test_unknown_field_is_rejected_by_name(api):
    r = api.client.post(
        "/v1/predict", json={"designation": "x", "image_path": "/etc/passwd"}, headers=api.headers()
    )
    assert r.status_code == 422
    assert r.json()["detail"] == "body.image_path: Extra inputs are not permitted"
    assert r.json()["errors"][0]["loc"] == ["body", "image_path"]


def test_unknown_field_in_batch_item_is_rejected(api):
    r = api.client.post(
        "/v1/predict/batch", json={"items": [{"designation": "x", "price": 3}]}, headers=api.headers()
    )
    assert r.status_code == 422
    assert "body.items.0.price: Extra inputs are not permitted" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, "body.designation: Field required"),
        ({"designation": ""}, "body.designation: String should have at least 1 character"),
        ({"designation": 12}, "body.designation: Input should be a valid string"),
        ({"designation": "   "}, "designation is blank"),
        ([1, 2], "body: Input should be an object"),
    ],
)
def test_invalid_listing_is_422_with_the_field(api, body, expected):
    r = api.client.post("/v1/predict", json=body, headers=api.headers())
    assert r.status_code == 422
    assert expected in r.json()["detail"]


def test_malformed_json_is_422(api):
    r = api.client.post(
        "/v1/predict",
        content=b'{"designation": "x"',
        headers={**api.headers(), "content-type": "application/json"},
    )
    assert r.status_code == 422
    assert "Invalid JSON" in r.json()["detail"]


def test_empty_body_is_422(api):
    r = api.client.post(
        "/v1/predict", content=b"", headers={**api.headers(), "content-type": "application/json"}
    )
    assert r.status_code == 422
    assert "empty" in r.json()["detail"]


def test_unsupported_content_type_is_415(api):
    r = api.client.post(
        "/v1/predict", content=b"designation", headers={**api.headers(), "content-type": "text/plain"}
    )
    assert r.status_code == 415
    assert "application/json or multipart/form-data" in r.json()["detail"]


def test_text_longer_than_the_limit_is_422(api):
    limit = api.settings.max_designation_chars
    r = api.client.post("/v1/predict", json={"designation": "a" * (limit + 1)}, headers=api.headers())
    assert r.status_code == 422
    assert r.json()["detail"] == f"designation has {limit + 1} characters; the limit is {limit}"
    big = "b" * (api.settings.max_description_chars + 1)
    r = api.client.post("/v1/predict", json={"designation": "ok", "description": big}, headers=api.headers())
    assert r.status_code == 422 and "description has" in r.json()["detail"]


def test_batch_larger_than_the_limit_is_422(api):
    n = api.settings.max_batch_size + 1
    r = api.client.post(
        "/v1/predict/batch", json={"items": [{"designation": "x"}] * n}, headers=api.headers()
    )
    assert r.status_code == 422
    assert r.json()["detail"] == f"batch has {n} items; the limit is {api.settings.max_batch_size}; split it"


def test_empty_batch_is_422(api):
    r = api.client.post("/v1/predict/batch", json={"items": []}, headers=api.headers())
    assert r.status_code == 422 and "items" in r.json()["detail"]


def test_batch_item_errors_name_the_item(api):
    limit = api.settings.max_designation_chars
    items = [{"designation": "ok"}, {"designation": "a" * (limit + 1)}]
    r = api.client.post("/v1/predict/batch", json={"items": items}, headers=api.headers())
    assert r.status_code == 422 and r.json()["detail"].startswith("items[1].designation has")


def test_body_over_the_limit_is_413(api):
    r = api.client.post(
        "/v1/predict",
        content=b"x" * (api.settings.max_request_bytes + 1),
        headers={**api.headers(), "content-type": "application/json"},
    )
    assert r.status_code == 413
    assert (
        r.json()["detail"] == f"request body is larger than the {api.settings.max_request_bytes} byte limit"
    )


def test_streamed_body_over_the_limit_is_413(api):
    def chunks():
        for _ in range(api.settings.max_request_bytes // 65536 + 2):
            yield b" " * 65536

    r = api.client.post(
        "/v1/predict/batch", content=chunks(), headers={**api.headers(), "content-type": "application/json"}
    )
    assert r.status_code == 413
    assert "byte limit" in r.json()["detail"]


def test_image_over_the_byte_limit_is_413(api):
    data = _image("PNG") + b"\0" * api.settings.max_image_bytes
    r = _post_b64(api, data[: api.settings.max_image_bytes + 10])
    assert r.status_code == 413
    assert r.json()["detail"] == f"image is larger than the {api.settings.max_image_bytes} byte limit"
    r = api.client.post(
        "/v1/predict",
        data={"designation": "x"},
        files={"image": ("big.png", data[: api.settings.max_image_bytes + 10], "image/png")},
        headers=api.headers(),
    )
    assert r.status_code == 413
    limit = api.settings.max_image_bytes
    assert r.json()["detail"] == f"image is {limit + 1} bytes; the limit is {limit}"


def test_decompression_bomb_is_refused_by_pixel_count(api):
    bomb = _image("PNG", (2000, 2000))  # 4 Mpx of one colour: a few kB compressed
    assert len(bomb) < api.settings.max_image_bytes
    r = _post_b64(api, bomb)
    assert r.status_code == 413
    assert (
        r.json()["detail"]
        == f"image is 2000x2000 = 4000000 pixels; the limit is {api.settings.max_image_pixels}"
    )


@pytest.mark.parametrize(
    "data",
    [
        b"definitely not an image",
        b"\x89PNG\r\n\x1a\n" + b"\0" * 50,  # PNG signature, junk after
        _image("JPEG")[:200],  # truncated JPEG
        _image("GIF"),  # a real image, in a format we do not accept
        _image("BMP"),
    ],
    ids=["text", "png-header-junk", "truncated-jpeg", "gif", "bmp"],
)
def test_non_images_are_422_naming_the_allowed_formats(api, data):
    r = _post_b64(api, data)
    assert r.status_code == 422
    assert r.json()["detail"] == "image could not be decoded; allowed formats: JPEG, PNG, WEBP"


def test_invalid_base64_is_422(api):
    r = api.client.post(
        "/v1/predict", json={"designation": "x", "image_base64": "%%% not base64 %%%"}, headers=api.headers()
    )
    assert r.status_code == 422
    assert r.json()["detail"] == "image_base64 is not valid base64"


def test_multipart_junk_image_is_422(api):
    r = api.client.post(
        "/v1/predict",
        data={"designation": "x"},
        files={"image": ("x.jpg", b"\xff\xd8\xff junk", "image/jpeg")},
        headers=api.headers(),
    )
    assert r.status_code == 422
    assert "allowed formats: JPEG, PNG, WEBP" in r.json()["detail"]


def test_multipart_unknown_field_and_text_image_are_422(api):
    r = api.client.post(
        "/v1/predict", data={"designation": "x", "path": "/etc/passwd"}, headers=api.headers()
    )
    assert r.status_code == 422 and r.json()["detail"].startswith("unknown form fields: path")
    r = api.client.post("/v1/predict", data={"designation": "x", "image": "abc"}, headers=api.headers())
    assert r.status_code == 422 and "file part" in r.json()["detail"]
    r = api.client.post("/v1/predict", data={"description": "no title"}, headers=api.headers())
    assert r.status_code == 422 and r.json()["detail"] == "body.designation: Field required"


def test_binary_junk_body_never_5xx(api):
    for content_type in ("application/json", "multipart/form-data; boundary=xyz", "multipart/form-data"):
        r = api.client.post(
            "/v1/predict",
            content=bytes(range(256)) * 4,
            headers={**api.headers(), "content-type": content_type},
        )
        assert 400 <= r.status_code < 500, (content_type, r.status_code, r.text)
