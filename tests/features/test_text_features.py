"""Text cleaning: the same function runs at training, batch prediction and serving."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rakuten_mlops.features.text import clean_text, frame_descriptions, frame_titles


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
