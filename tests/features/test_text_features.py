"""Text cleaning: the same function runs at training, batch prediction and serving."""

from __future__ import annotations

import html
import math
import re
import sys
import unicodedata

import numpy as np
import pandas as pd
import pytest

from rakuten_mlops.features.text import clean_text, frame_descriptions, frame_titles, is_missing


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<p>Piscine <b>Intex</b></p><br />bleue", "piscine intex bleue"),
        ("Lampe<br>LED<br/>USB", "lampe led usb"),
        ('<div class="x" style="color:red">Ballon</div>', "ballon"),
        ("prix < 20 euros <br> neuf", "prix < 20 euros neuf"),  # a lone "<" is text, not a tag
        ("<ul><li>filtre à sable</li><li>skimmer</li></ul>", "filtre à sable skimmer"),
    ],
)
def test_html_tags_become_spaces(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("&eacute;t&eacute;", "été"),
        ("&amp;eacute;t&amp;eacute;", "été"),  # escaped twice by the marketplace feed
        ("Type d&#39;ombre", "type d'ombre"),
        ("&lt;b&gt;Gras&lt;/b&gt;", "gras"),  # escaped markup is still markup
        ("étanche &amp; amp; durable", "étanche & durable"),  # broken entity leftovers
        ("Caractéristiques&nbsp;: neuf", "caractéristiques : neuf"),
        ("Vague &amp; nbsp; Boîte", "vague & boîte"),
    ],
)
def test_entities_are_unescaped_even_when_double_escaped(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ｐｉｓｃｉｎｅ", "piscine"),  # full-width letters
        ("e\u0301te\u0301", "été"),  # combining accents are composed
        ("ﬁltre", "filtre"),  # ligature
        ("Taille\u00a0XL", "taille xl"),  # no-break space
        ("l\x92enfant", "l enfant"),  # stray cp1252 control character
        ("  BIG\t\n Sale  ", "big sale"),
        ("Straße", "straße"),
    ],
)
def test_unicode_is_normalised_and_lowercased(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


@pytest.mark.parametrize("missing", [None, float("nan"), np.nan, np.float32("nan"), pd.NA, math.nan])
def test_missing_values_give_empty_text(missing: object) -> None:
    assert clean_text(missing) == ""


@pytest.mark.parametrize(("value", "expected"), [(42, "42"), (3.5, "3.5"), ("", ""), ("nc", "nc")])
def test_non_text_values_are_stringified(value: object, expected: str) -> None:
    assert clean_text(value) == expected


@pytest.mark.parametrize(
    ("raw", "max_chars", "expected"),
    [
        ("abcdef", 3, "abc"),
        ("abc", 10, "abc"),
        ("<p>" * 50 + "abcdef", 4, "abcd"),  # markup does not count towards the limit
        ("&eacute;" * 10, 3, "ééé"),
        ("mot un deux", 4, "mot"),  # no trailing space after the cut
        ("abc", 0, ""),
    ],
)
def test_max_chars_limits_the_cleaned_text(raw: str, max_chars: int, expected: str) -> None:
    assert clean_text(raw, max_chars) == expected


def test_frame_texts_work_without_a_description_column() -> None:
    frame = pd.DataFrame({"designation": ["Robot Piscine", "Spa"]})
    assert frame_titles(frame) == ["robot piscine", "spa"]
    assert frame_descriptions(frame) == ["", ""]
    assert frame_titles(frame.assign(description="x")) == ["robot piscine", "spa"]


def clean_text_as_it_was(text: object, max_chars: int | None = None) -> str:
    """`clean_text` before it skipped the patterns absent from a text: every regex on every text."""
    if is_missing(text):
        return ""
    s = str(text)
    if max_chars is not None:
        s = s[: max_chars * 4 + 200]
    s = html.unescape(html.unescape(s))
    s = re.sub(r"<[^<>]{0,500}>", " ", s)
    s = re.sub(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]", " ", s)
    s = unicodedata.normalize("NFKC", s).lower()
    s = re.sub(r"\b(?:nbsp|amp|quot|apos)\b;?", " ", s)
    s = re.sub(r"\s+", " ", s).strip()
    return s[:max_chars].rstrip() if max_chars is not None else s


WHITE_SPACE = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
AWKWARD = [
    "",
    WHITE_SPACE,
    f"{WHITE_SPACE}un{WHITE_SPACE}deux\u200b trois{WHITE_SPACE}",
    "nbsp amp quot apos nbsp; amp; camp ampoule quota apostrophe snbsp nbspx",
    "un nbsp; deux",
    "un amp deux",
    "un &quot;quot;deux",
    "l'apos;s",
    "AMP NBSP; Quot &amp;nbsp; &amp;amp; &amp; nbsp; &nbsp;x &quot;a&quot;",
    "a<b c>d <<x>> < > <> 5 < 7 et 8 > 2 <" + "y" * 600 + ">",
    "<p>Filtre &agrave; sable</p><br />\x92\x00\x1f\x7f\x9f\ufeff\u2028\u2029",
    "ＡＭＰ ｎｂｓｐ ﬁn Ⅻ ½ straße ΟΔΟΣ Σ e\u0301 \ud800",
    "mot\u3000\u3000fin \u00a0\u2003 ",
]


@pytest.mark.parametrize("text", AWKWARD)
@pytest.mark.parametrize("max_chars", [None, 0, 1, 3, 7, 2000])
def test_cleaning_gives_what_every_regex_on_every_text_gave(text: str, max_chars: int | None) -> None:
    assert clean_text(text, max_chars) == clean_text_as_it_was(text, max_chars)


def test_cleaning_gives_what_it_gave_for_every_code_point() -> None:
    """Each code point between letters and next to white space, in texts of 4,096 code points."""
    for start in range(0, sys.maxunicode + 1, 4096):
        text = "".join(f"a{chr(c)} b{chr(c)}" for c in range(start, min(start + 4096, sys.maxunicode + 1)))
        assert clean_text(text) == clean_text_as_it_was(text), hex(start)
