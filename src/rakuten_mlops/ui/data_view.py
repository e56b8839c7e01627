"""What the Data page shows, built from the API's training data routes (no Streamlit here)."""

from __future__ import annotations

import base64
from typing import Any

import pandas as pd

from rakuten_mlops.ui.labels import category_with_code


def class_frame(summary: dict[str, Any], lang: str) -> pd.DataFrame:
    """Rows and share of each class, largest first, category names in `lang`."""
    counts = summary["class_counts"]
    return pd.DataFrame(
        {
            "category": [category_with_code(c["code"], lang) for c in counts],
            "code": [int(c["code"]) for c in counts],
            "rows": [int(c["rows"]) for c in counts],
            "share": [float(c["share"]) for c in counts],
        },
        columns=["category", "code", "rows", "share"],
    )


def length_frame(summary: dict[str, Any]) -> pd.DataFrame:
    """Listings per band of characters of each text field (field, start, end, listings)."""
    return pd.DataFrame(summary["lengths"], columns=["field", "start", "end", "listings"])


def decoded_images(examples: dict[str, Any]) -> list[tuple[bytes, str]]:
    """(image bytes, caption) of the example listings the API sent an image for."""
    return [(base64.b64decode(i["base64"]), i["caption"]) for i in examples["images"]]
