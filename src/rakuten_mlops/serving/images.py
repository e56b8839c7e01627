"""Image checks: size in bytes, format by decoding (not by name), and pixel count (decompression bombs)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP")


class ImageRejected(ValueError):
    """The image cannot be accepted; the message says what to fix."""

    def __init__(self, message: str, status_code: int = 422) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    sha256: str
    format: str
    width: int
    height: int


def decode_base64(text: str, max_bytes: int) -> bytes:
    """Bytes of a base64 (standard or URL-safe, optional data: URL prefix) image."""
    if text.startswith("data:"):
        text = text.partition(",")[2]
    if len(text) > (max_bytes * 4) // 3 + 8:
        raise ImageRejected(f"image is larger than the {max_bytes} byte limit", status_code=413)
    compact = "".join(text.split())
    try:
        return base64.b64decode(compact.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise ImageRejected("image_base64 is not valid base64") from None


def check_image(data: bytes, max_bytes: int, max_pixels: int) -> CheckedImage:
    """Accept only a complete JPEG, PNG or WebP image within the byte and pixel limits."""
    allowed = ", ".join(ALLOWED_FORMATS)
    if len(data) == 0:
        raise ImageRejected(f"image is empty; send a {allowed} image")
    if len(data) > max_bytes:
        raise ImageRejected(f"image is {len(data)} bytes; the limit is {max_bytes}", status_code=413)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
            width, height = img.size
            if width * height > max_pixels:  # checked from the header, before decoding
                raise ImageRejected(
                    f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}",
                    status_code=413,
                )
            fmt = str(img.format)
            img.load()  # a truncated or corrupt file fails here
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(
            f"image has too many pixels; the limit is {max_pixels}", status_code=413
        ) from None
    except Exception:  # PIL raises many types (OSError, SyntaxError, ValueError...) on junk
        raise ImageRejected(f"image could not be decoded; allowed formats: {allowed}") from None
    return CheckedImage(data, hashlib.sha256(data).hexdigest(), fmt, width, height)
