"""Text cleaning shared by training, batch prediction and serving."""

from __future__ import annotations

import html
import math
import re
import unicodedata
from collections.abc import Iterable

import pandas as pd

_TAG = re.compile(r"<[^<>]{0,500}>")
# C0/C1 control characters (e.g. a stray cp1252 "\x92" apostrophe) and zero-width marks.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")
# Leftovers of broken entities (``&amp; nbsp;`` in real listings): no class signal, very frequent.
_NOISE = re.compile(r"\b(?:nbsp|amp|quot|apos)\b;?")


def is_missing(value: object) -> bool:
    """True for None, NaN (any float type) and pandas' NA/NaT."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return math.isnan(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return False


def clean_text(text: object, max_chars: int | None = None) -> str:
    """Unescape HTML entities, strip tags, normalise Unicode (NFKC), lowercase, squeeze spaces.

    Entities are unescaped twice because marketplace feeds often escape them twice
    (``&amp;eacute;``). Accents are kept here (the vectorizers strip them), so the text
    stays readable wherever else it is shown.

    Args:
        text: any value; None and NaN give "".
        max_chars: cut the cleaned text to this many characters.
    """
    if is_missing(text):
        return ""
    s = str(text)
    if max_chars is not None:
        s = s[: max_chars * 4 + 200]  # room for the markup stripped next, without cleaning megabytes
    s = html.unescape(html.unescape(s))
    # Each pattern is searched for only where its literal part occurs (a regex scan of a text
    # costs a few microseconds, a substring test a fraction of that): the same string either way.
    if "<" in s:
        s = _TAG.sub(" ", s)
    s = _CONTROL.sub(" ", s)
    s = unicodedata.normalize("NFKC", s).lower()
    if "nbsp" in s or "amp" in s or "quot" in s or "apos" in s:
        s = _NOISE.sub(" ", s)
    # Runs of white space as one space, none at either end: `\s` in a str pattern, `str.split()`
    # and `str.strip()` all take the characters `str.isspace()` accepts.
    s = " ".join(s.split())
    return s[:max_chars].rstrip() if max_chars is not None else s


def clean_titles(titles: Iterable[object]) -> list[str]:
    """Cleaned titles (`designation` values)."""
    return [clean_text(t) for t in titles]


def clean_descriptions(descriptions: Iterable[object], max_chars: int = 2000) -> list[str]:
    """Cleaned descriptions, cut to `max_chars`."""
    return [clean_text(d, max_chars) for d in descriptions]


def frame_titles(frame: pd.DataFrame) -> list[str]:
    """Cleaned titles (`designation`) of a DataFrame."""
    return clean_titles(frame["designation"])


def frame_descriptions(frame: pd.DataFrame, max_chars: int = 2000) -> list[str]:
    """Cleaned descriptions of a DataFrame ("" for every row when the column is absent)."""
    if "description" not in frame.columns:
        return [""] * len(frame)
    return clean_descriptions(frame["description"], max_chars)
