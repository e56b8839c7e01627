"""Text cleaning shared by training, batch prediction and serving."""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable

import numpy as np
import pandas as pd

_TAG = re.compile(r"<[^>]{0,500}>")
_SPACE = re.compile(r"\s+")
# Tokens that carry no class signal but are frequent in marketplace text.
_NOISE = re.compile(r"\b(?:nbsp|amp|quot|apos)\b")


def clean_text(text: object, max_chars: int | None = None) -> str:
    """Unescape HTML entities, strip tags, normalise Unicode (NFKC), lowercase, squeeze spaces.

    Entities are unescaped twice because marketplace feeds often escape them twice
    (``&amp;eacute;``).
    """
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return ""
    s = str(text)
    if max_chars is not None:
        s = s[: max_chars * 2]  # room for the markup that is stripped next
    s = html.unescape(html.unescape(s))
    s = _TAG.sub(" ", s)
    s = unicodedata.normalize("NFKC", s).lower()
    s = _NOISE.sub(" ", s)
    s = _SPACE.sub(" ", s).strip()
    return s[:max_chars] if max_chars is not None else s


def product_texts(
    designations: Iterable[object],
    descriptions: Iterable[object],
    *,
    title_repeat: int = 1,
    max_description_chars: int = 2000,
) -> list[str]:
    """One cleaned document per product: the title (repeated to weight it) then the description."""
    out = []
    for title, body in zip(designations, descriptions, strict=True):
        t = clean_text(title)
        b = clean_text(body, max_description_chars)
        out.append(" ".join([t] * title_repeat + ([b] if b else [])))
    return out


def frame_texts(frame: pd.DataFrame, title_repeat: int = 1) -> list[str]:
    """`product_texts` over a DataFrame with `designation` and optional `description`."""
    desc = frame["description"] if "description" in frame.columns else [""] * len(frame)
    return product_texts(frame["designation"], desc, title_repeat=title_repeat)
