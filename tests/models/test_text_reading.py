"""A vectorizer's analyzer read in two steps gives exactly scikit-learn's strings, for any text."""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Iterator

import pytest
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.feature_extraction.text import strip_accents_unicode as sklearn_strip_accents

from rakuten_mlops.models.text_reading import (
    combining_characters,
    reading_of,
    strip_accents_unicode,
    word_ngrams,
)
from tests.models.test_text_scorer import AWKWARD

# More texts that accent stripping meets: lone surrogates, combining marks with no base or in a
# run (NFKD reorders them), precomposed and decomposed letters, Hangul, Arabic, Devanagari, emoji.
ACCENTED = [
    *AWKWARD,
    "\ud800",
    "a\udfffb é",
    "\u0301",
    "e\u0301\u0327\u0300x",
    "ǖ ǘ ǚ ǜ Å Å",
    "한국어 텍스트",
    "عَرَبِيّ",
    "हिन्दी",
    "😀 👍🏽 ‍",
    "ｆｕｌｌ ｗｉｄｔｈ café",
]


def test_combining_characters_are_every_character_with_a_combining_class() -> None:
    combining = combining_characters()
    assert len(combining) > 800
    assert all(unicodedata.combining(c) for c in combining)
    # Every one is past ASCII: strip_accents_unicode looks for them among the other characters.
    assert min(map(ord, combining)) >= 0x80


@pytest.mark.parametrize("text", ACCENTED)
def test_strip_accents_gives_scikit_learns_string(text: str) -> None:
    assert strip_accents_unicode(text) == sklearn_strip_accents(text)
    assert strip_accents_unicode(text.lower()) == sklearn_strip_accents(text.lower())


def test_strip_accents_gives_scikit_learns_string_for_every_code_point() -> None:
    """Each code point, between a letter and an accented letter, in texts of 4,096 code points."""
    for start in range(0, sys.maxunicode + 1, 4096):
        text = "".join(f"e{chr(c)}a\u0301" for c in range(start, min(start + 4096, sys.maxunicode + 1)))
        assert strip_accents_unicode(text) == sklearn_strip_accents(text), hex(start)


@pytest.mark.parametrize("ngram_range", [(1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3), (1, 6)])
def test_word_ngrams_are_scikit_learns_in_the_same_order(ngram_range: tuple[int, int]) -> None:
    vec = CountVectorizer(ngram_range=ngram_range)
    words = ["piscine", "hors", "sol", "piscine", "hors", ""]
    for n in range(len(words) + 1):
        tokens = words[:n]
        assert word_ngrams(tokens, *ngram_range) == vec._word_ngrams(tokens)


def _accents(s: str) -> str:
    return s.replace("é", "e")


def _yielded_words(s: str) -> Iterator[str]:
    yield from s.split()


VECTORIZERS = {
    "word, unicode": TfidfVectorizer(strip_accents="unicode", ngram_range=(1, 2)),
    "word, as cased": TfidfVectorizer(strip_accents="unicode", lowercase=False),
    "word, ascii": TfidfVectorizer(strip_accents="ascii", ngram_range=(1, 3)),
    "word, none, stop words": CountVectorizer(stop_words=["de", "et", "la"], ngram_range=(1, 2)),
    "word, own token pattern": TfidfVectorizer(strip_accents="unicode", token_pattern=r"(?u)\b\w+\b"),
    "word, own tokenizer": TfidfVectorizer(strip_accents="unicode", tokenizer=str.split, token_pattern=None),
    "word, own accents": TfidfVectorizer(strip_accents=_accents),
    "word, own preprocessor": TfidfVectorizer(preprocessor=str.upper, strip_accents="unicode"),
    "char_wb": TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 5), strip_accents="unicode"),
    "char_wb, as cased": TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), lowercase=False),
    "char": TfidfVectorizer(analyzer="char", ngram_range=(1, 3), strip_accents="unicode"),
    "own analyzer": TfidfVectorizer(analyzer=str.split),
    "own analyzer, yielding": TfidfVectorizer(analyzer=_yielded_words),
}


@pytest.mark.parametrize("vec", VECTORIZERS.values(), ids=list(VECTORIZERS))
def test_a_reading_gives_the_analyzers_ngrams(vec: TfidfVectorizer) -> None:
    reading = reading_of(vec)
    analyze = vec.build_analyzer()
    for text in ACCENTED:
        assert reading.grams(reading.preprocess(text)) == list(analyze(text))


def test_vectorizers_that_preprocess_alike_share_a_key() -> None:
    keys = {name: reading_of(vec).preprocess_key for name, vec in VECTORIZERS.items()}
    assert keys["word, unicode"] == keys["word, own token pattern"] == keys["char_wb"] == keys["char"]
    assert keys["word, unicode"] == keys["word, own tokenizer"]  # tokenizing comes after
    assert keys["word, as cased"] != keys["word, unicode"]
    assert keys["word, ascii"] != keys["word, unicode"]
    assert keys["word, own accents"] != keys["word, none, stop words"]
    assert keys["word, own preprocessor"] != keys["word, unicode"]
    assert keys["own analyzer"] == keys["own analyzer, yielding"]
    assert keys["own analyzer"] not in {k for name, k in keys.items() if not name.startswith("own analyzer")}


def test_an_unknown_analyzer_is_refused_as_scikit_learn_refuses_it() -> None:
    with pytest.raises(ValueError, match="'words' is not a valid tokenization scheme/analyzer"):
        reading_of(TfidfVectorizer(analyzer="words"))
