"""What drift is measured on: one row of monitored columns per listing (no disk I/O: the caller
passes each listing's image bytes, see `rakuten_mlops.pipelines.monitoring_sources.image_bytes`)."""

from __future__ import annotations

import io
import math
from collections.abc import Iterable

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from rakuten_mlops.data.schema import LABEL
from rakuten_mlops.features.text import frame_descriptions, frame_titles
from rakuten_mlops.monitoring.language import detect_language

TEXT = "text"
TITLE_LENGTH = "title_length"
DESCRIPTION_LENGTH = "description_length"
DESCRIPTION_EMPTY = "description_empty"
LANGUAGE = "language"
IMAGE_BRIGHTNESS = "image_brightness"
IMAGE_CONTRAST = "image_contrast"
IMAGE_SIZE = "image_size"
PREDICTED = "predicted_code"
TRUE_LABEL = "label"

TEXT_COLUMNS = (TEXT,)
NUMERICAL_COLUMNS = (TITLE_LENGTH, DESCRIPTION_LENGTH, IMAGE_BRIGHTNESS, IMAGE_CONTRAST, IMAGE_SIZE)
CATEGORICAL_COLUMNS = (DESCRIPTION_EMPTY, LANGUAGE, PREDICTED, TRUE_LABEL)
DESCRIPTIONS = {
    TEXT: "cleaned title + description (domain-classifier text drift)",
    TITLE_LENGTH: "characters in the cleaned title",
    DESCRIPTION_LENGTH: "characters in the cleaned description",
    DESCRIPTION_EMPTY: "description empty (yes/no)",
    LANGUAGE: "guessed language of title + description",
    IMAGE_BRIGHTNESS: "mean grey level of the image (0-255)",
    IMAGE_CONTRAST: "standard deviation of the grey levels",
    IMAGE_SIZE: "image side in pixels (square root of width x height)",
    PREDICTED: "product type code predicted by the champion",
    TRUE_LABEL: "true product type code",
}


def image_stats(image: bytes | None) -> tuple[float, float, float]:
    """(brightness, contrast, size) of one encoded image; NaNs when there is none or it cannot be decoded."""
    if not image:
        return (math.nan, math.nan, math.nan)
    try:
        with Image.open(io.BytesIO(image)) as im:
            w, h = im.size
            im.draft("L", (128, 128))  # JPEG decodes at a fraction of the cost; stats barely move
            grey = np.asarray(im.convert("L").resize((64, 64)), dtype=np.float32)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return (math.nan, math.nan, math.nan)
    return (float(grey.mean()), float(grey.std()), float(math.sqrt(w * h)))


def monitoring_frame(
    listings: pd.DataFrame,
    *,
    images: Iterable[bytes | None] | None = None,
    predicted: Iterable[object] | None = None,
    text_max_chars: int = 500,
) -> pd.DataFrame:
    """Monitored columns of each listing.

    Args:
        listings: `designation`, optional `description` and `prdtypecode`.
        images: each row's encoded image (None where it has none) for brightness, contrast and
            size; None: no image columns.
        predicted: the champion's code per row (None: no `predicted_code` column).
    """
    titles = frame_titles(listings)
    bodies = frame_descriptions(listings, 4 * text_max_chars)
    out = pd.DataFrame(index=listings.index)
    joined = [f"{t} {b}".strip() for t, b in zip(titles, bodies, strict=True)]
    out[TEXT] = [j[:text_max_chars] for j in joined]
    out[TITLE_LENGTH] = np.array([len(t) for t in titles], dtype=float)
    out[DESCRIPTION_LENGTH] = np.array([len(b) for b in bodies], dtype=float)
    out[DESCRIPTION_EMPTY] = ["yes" if not b else "no" for b in bodies]
    out[LANGUAGE] = [detect_language(j) for j in joined]
    if images is not None:
        stats = np.array([image_stats(image) for image in images], dtype=float).reshape(-1, 3)
        if len(stats) != len(out):
            raise ValueError(f"{len(stats)} images for {len(out)} listings")
        out[IMAGE_BRIGHTNESS], out[IMAGE_CONTRAST], out[IMAGE_SIZE] = stats.T
    if predicted is not None:
        out[PREDICTED] = [_code(v) for v in predicted]
    if LABEL in listings.columns:
        out[TRUE_LABEL] = [_code(v) for v in listings[LABEL]]
    return out


def _code(value: object) -> str | None:
    """Codes as strings (categories, not numbers); missing values stay missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        return str(int(float(text)))
    except ValueError:
        return text
