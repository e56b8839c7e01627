"""A char_wb vectorizer's n-gram counts, summed word by word from a cache of each word's columns.

scikit-learn's char_wb analyzer decodes a text, preprocesses all of it (`build_preprocessor`:
lowercase, then strip accents), replaces runs of white space by one space (`\\s\\s+`), splits the
result into words (`str.split()`) and lists the n-grams of each word padded with a space on both
sides (`_char_wb_ngrams`). An n-gram never spans two words, so a text's n-gram counts are the sum
over its words of each word's counts, and a word's counts depend on the word alone. The collapse
of white space changes no word: in a str pattern `\\s` matches exactly the characters
`str.isspace()` accepts, the ones `str.split()` splits on, so a run of them separates the same two
words whether it is one character long or several.

`CharWbColumns` is given the text preprocessed (`text_reading.Reading.preprocess`, shared with
the other blocks that read it) and keeps, for each word it has seen, the vocabulary columns of the
word's n-grams: counting a text's n-grams is then one dictionary look-up per distinct word instead
of several slices and look-ups per character (a word of 8 letters has 40 n-grams of 1 to 5
characters), and words repeat from listing to listing (brands, sizes, common words).
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import numpy as np

# Words kept per cache before it is emptied. An entry holds the word and its columns as bytes
# (4 per n-gram in the vocabulary): measured at 230-330 bytes for words of 9-14 letters whose
# n-grams of 1 to 5 characters are all in the vocabulary, plus some 60 for the word itself, so a
# full cache of this size takes 15-20 MB (a model has two char_wb blocks, so two caches).
MAX_CACHED_WORDS = 50_000

# The bytes of one column in a cache entry: a block's columns are numbered from 0 by its own
# vocabulary, and a dict of 2**31 terms would not fit in memory (numpy raises before that anyway).
COLUMN_DTYPE = np.dtype(np.int32)


def counts_word_by_word(vec: Any) -> bool:
    """Whether `vec`'s n-grams are char_wb's, which `CharWbColumns` counts word by word."""
    return isinstance(vec.analyzer, str) and vec.analyzer == "char_wb"


class CharWbColumns:
    """The vocabulary columns of each word's char_wb n-grams, cached by word.

    Safe to share between threads: the cache is one dict, read with `get` (atomic in CPython) and
    never iterated; a word computed for the first time is stored under a lock, so the bound holds
    whatever the threads; and an entry is immutable bytes computed from the word alone, so two
    threads that compute the same word store the same value. When the cache holds `max_words`
    words it is emptied, and refills with the words in use (a hit costs no lock).

    Args:
        vec: a fitted TfidfVectorizer (or CountVectorizer) whose analyzer is "char_wb".
        max_words: how many words the cache holds before it is emptied.
    """

    def __init__(self, vec: Any, max_words: int = MAX_CACHED_WORDS) -> None:
        if not counts_word_by_word(vec):
            raise ValueError(f"CharWbColumns counts char_wb n-grams, not analyzer={vec.analyzer!r}")
        if max_words < 1:
            raise ValueError(f"max_words must be at least 1, got {max_words}")
        self._min_n, self._max_n = vec.ngram_range
        self._vocabulary: dict[str, int] = vec.vocabulary_
        self.max_words = max_words
        self._cache: dict[str, bytes] = {}
        self._storing = threading.Lock()

    @property
    def cached_words(self) -> int:
        """How many words the cache holds now."""
        return len(self._cache)

    def words(self, preprocessed: str) -> Counter[str]:
        """The words the char_wb analyzer sees in a preprocessed text, with how often each occurs."""
        return Counter(preprocessed.split())

    def columns(self, word: str) -> bytes:
        """The columns of `word`'s in-vocabulary n-grams, once per occurrence, as `COLUMN_DTYPE` bytes."""
        found = self._cache.get(word)
        if found is not None:
            return found
        found = np.array(
            [c for c in map(self._vocabulary.get, self._ngrams(word)) if c is not None], dtype=COLUMN_DTYPE
        ).tobytes()
        with self._storing:
            if len(self._cache) >= self.max_words:
                self._cache.clear()
            self._cache[word] = found
        return found

    def _ngrams(self, word: str) -> list[str]:
        """`_char_wb_ngrams` of a one-word text: scikit-learn's loop, step for step."""
        w = f" {word} "
        w_len = len(w)
        grams = []
        for n in range(self._min_n, self._max_n + 1):
            offset = 0
            grams.append(w[offset : offset + n])
            while offset + n < w_len:
                offset += 1
                grams.append(w[offset : offset + n])
            if offset == 0:  # the padded word is no longer than n: counted once, for the smallest n
                break
        return grams
