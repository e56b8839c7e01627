"""Review-queue thumbnails: a small JPEG of an image sent with a low-confidence prediction.

Built by the prediction-log writer thread (never in a request handler) from an image the API
already accepted (`images.check_image`), so only the resize and the encoding can fail here.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

from PIL import Image, ImageOps

log = logging.getLogger(__name__)
THUMBNAIL_SIDE = 256  # longest side, in pixels
THUMBNAIL_QUALITIES = (80, 65, 50)  # the first whose JPEG fits THUMBNAIL_MAX_BYTES is kept
THUMBNAIL_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class Thumbnail:
    jpeg: bytes
    width: int
    height: int


def make_thumbnail(data: bytes) -> Thumbnail | None:
    """A JPEG of `data` with its longest side at most THUMBNAIL_SIDE, within THUMBNAIL_MAX_BYTES.

    None when the image cannot be read or no quality fits the size cap (the listing is then shown
    without its image; nothing else depends on it).
    """
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.draft("RGB", (THUMBNAIL_SIDE, THUMBNAIL_SIDE))  # JPEG: decode at a reduced scale
            small = ImageOps.exif_transpose(img).convert("RGB")
            small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
            for quality in THUMBNAIL_QUALITIES:
                out = io.BytesIO()
                small.save(out, "JPEG", quality=quality, optimize=True)
                if out.tell() <= THUMBNAIL_MAX_BYTES:
                    return Thumbnail(out.getvalue(), small.width, small.height)
    except Exception as exc:  # PIL raises many types; a thumbnail is never worth a failure
        log.warning("review thumbnail not made (%s)", exc.__class__.__name__)
        return None
    log.warning("review thumbnail not kept: over %d bytes even at quality %d", THUMBNAIL_MAX_BYTES, quality)
    return None
