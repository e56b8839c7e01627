"""Scoring listings with a fitted TF-IDF text model without scikit-learn's per-call checks.

`TextClassifier`'s scikit-learn path runs four `TfidfVectorizer.transform` calls, a
`sparse.hstack`, `LinearSVC.decision_function`, `ComplementNB.predict_log_proba` and the stacker's
`Pipeline.predict_proba`; each checks its input again (array and fitted-state checks, DataFrame
detection), about 2 ms a call whatever the number of rows: most of a one-listing call.
`TextScorer` builds the same float32 matrices, entry for entry in the same order, and applies
the same arithmetic to them, so its scores are bit for bit those of the scikit-learn path.

Counting n-grams, scikit-learn's pure-Python analyzers, is most of a larger call, above all the
char_wb blocks' over long descriptions. `TextScorer` counts a char_wb block's n-grams word by word
from a cache of each word's vocabulary columns (`CharWbColumns`, which says why the sums are
exactly scikit-learn's counts): one look-up per distinct word of a text instead of several slices
and look-ups per character. Other blocks' n-grams are looked up one occurrence at a time, each
counting 1 (scipy sums a column's repeats, cheaper than a Counter per text). A text is
preprocessed once for the blocks that preprocess it alike, and analysed once for the blocks that
read it with the same analyzer (`text_reading`, which also strips accents and lists word n-grams
with less Python per character than scikit-learn, to the same strings). A block's counts are
integers, summed exactly in any order; its columns are sorted within each (row, block),
as CountVectorizer leaves them, before the TF-IDF weighting and normalisation, which follow
scikit-learn's operations one for one.

It is built from the fitted model on its first prediction and never pickled, so models saved
before it load and predict unchanged, and its word caches live only in the serving process.
Built, it checks itself against the scikit-learn path on probe texts; a model it does not
reproduce exactly keeps the scikit-learn path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.utils.extmath import softmax
from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

from rakuten_mlops.models.char_wb import COLUMN_DTYPE, MAX_CACHED_WORDS, CharWbColumns, counts_word_by_word
from rakuten_mlops.models.text_reading import Reading, reading_of

# Analyzer settings: two blocks whose vectorizers agree on all of them read a text the same way.
_ANALYZER_PARAMS = (
    "analyzer", "ngram_range", "token_pattern", "strip_accents", "lowercase", "preprocessor",
    "tokenizer", "stop_words", "input", "encoding", "decode_error",
)  # fmt: skip


@dataclass(frozen=True)
class _Block:
    name: str
    reading: Reading  # the block's analyzer, in two steps
    preprocess_key: int  # equal for blocks that preprocess a text alike
    analyzer_key: int  # equal for blocks whose analyzers give the same n-grams
    vocabulary: dict[str, int]
    by_word: CharWbColumns | None  # a char_wb block's n-grams, counted word by word; else None
    offset: int  # first column of the block in the SVM's input ("all")
    words_offset: int  # first column in naive Bayes' input ("words"); -1 when it does not read it
    weight: float


def supports_vectorizer(vec: Any) -> bool:
    """Whether `vec` is a fitted TfidfVectorizer whose transform `TextScorer` reproduces."""
    return (
        isinstance(vec, TfidfVectorizer)
        and hasattr(vec, "idf_")
        and hasattr(vec, "vocabulary_")
        and vec.norm == "l2"
        and vec.use_idf
        and not vec.binary
        and vec.dtype == np.float32
        and vec.idf_.dtype == np.float32
        and vec.input == "content"
    )


class TextScorer:
    """The TF-IDF features and base models of a fitted `TextClassifier`, scored in plain NumPy/SciPy.

    Args:
        vectorizers: the model's `vectorizers_`, in the order of the SVM's feature columns.
        weights: each block's weight (`TextClassifier._weights`).
        word_blocks: the blocks naive Bayes reads, in the order of its feature columns.
        members: the fitted base models by name (`svm`, `svm_balanced`, `nb`; others are skipped).
        stacker: the stack's calibrator (StandardScaler without scaling, then a multinomial
            LogisticRegression), or None.
        nb_log_floor: where naive Bayes' log-probabilities are clipped.
        max_cached_words: the words each char_wb block's cache holds before it is emptied.
    """

    def __init__(
        self,
        vectorizers: dict[str, TfidfVectorizer],
        weights: dict[str, float],
        word_blocks: Sequence[str],
        members: dict[str, Any],
        stacker: Pipeline | None,
        nb_log_floor: float,
        max_cached_words: int = MAX_CACHED_WORDS,
    ) -> None:
        keys: dict[tuple[Any, ...], int] = {}
        preprocess_keys: dict[tuple[str, ...], int] = {}
        blocks, offset, words_offset = [], 0, 0
        for name, vec in vectorizers.items():
            params = tuple(repr(getattr(vec, p, None)) for p in _ANALYZER_PARAMS)
            reading = reading_of(vec)
            in_words = name in word_blocks
            by_word = CharWbColumns(vec, max_cached_words) if counts_word_by_word(vec) else None
            blocks.append(
                _Block(
                    name, reading, preprocess_keys.setdefault(reading.preprocess_key, len(preprocess_keys)),
                    keys.setdefault(params, len(keys)), vec.vocabulary_, by_word,
                    offset, words_offset if in_words else -1, float(weights[name]),
                )
            )  # fmt: skip
            offset += len(vec.vocabulary_)
            words_offset += len(vec.vocabulary_) if in_words else 0
        self.blocks = blocks
        self.n_features, self.n_word_features = offset, words_offset
        self.sublinear = [bool(v.sublinear_tf) for v in vectorizers.values()]
        self.idf = np.concatenate([v.idf_ for v in vectorizers.values()])
        self.members = {m: model for m, model in members.items() if m in ("svm", "svm_balanced", "nb")}
        self.stacker = stacker
        self.nb_log_floor = nb_log_floor

    @classmethod
    def supports(cls, vectorizers: dict[str, Any], members: dict[str, Any], stacker: Any) -> bool:
        """Whether every part is one this scorer reproduces (else the model keeps scikit-learn's path)."""
        if not vectorizers or not all(supports_vectorizer(v) for v in vectorizers.values()):
            return False
        sublinear = {bool(v.sublinear_tf) for v in vectorizers.values()}
        if len(sublinear) != 1:
            return False
        for name, model in members.items():
            if name in ("svm", "svm_balanced", "joint") and not isinstance(model, LinearSVC):
                return False
            if name == "nb" and not (isinstance(model, ComplementNB) and len(model.classes_) > 1):
                return False
        if stacker is not None:
            steps = [s for _, s in stacker.steps] if isinstance(stacker, Pipeline) else []
            if not (
                len(steps) == 2
                and isinstance(steps[0], StandardScaler)
                and steps[0].with_mean
                and not steps[0].with_std
                and isinstance(steps[1], LogisticRegression)
                and len(steps[1].classes_) > 2
            ):
                return False
        return True

    # ------------------------------------------------------------------ features
    def features(self, texts: dict[str, list[str]]) -> dict[str, sparse.csr_matrix]:
        """`all` and `words`: what `TextClassifier._features(X, fit=False)` gives, entry for entry."""
        n = len(next(iter(texts.values()))) if texts else 0
        nb = len(self.blocks)
        counted = self._counts(texts, n)
        indices, segments = counted.indices, counted.indptr
        index_dtype = indices.dtype
        lengths = np.diff(segments)  # stored entries per (row, block)
        data = counted.data.astype(np.float32)  # as CountVectorizer builds it: integer counts as float32
        if self.sublinear[0]:  # TfidfTransformer.transform, on every block's entries at once
            np.log(data, data)
            data += 1.0
        data *= self.idf[indices]
        # Each (row, block) normalised on its own: the same sums, in the same order, as per block.
        by_segment = sparse.csr_matrix((data, indices, segments), shape=(n * nb, self.n_features), copy=False)
        inplace_csr_row_normalize_l2(by_segment)
        data = by_segment.data
        block_of = np.tile(np.arange(nb), n)
        for k, b in enumerate(self.blocks):
            if b.weight != 1.0:  # `block * weight` in float32, as scipy does it
                mask = np.repeat(block_of == k, lengths)
                data[mask] = data[mask] * b.weight
        rows = segments[::nb]
        out = {"all": sparse.csr_matrix((data, indices, rows), shape=(n, self.n_features), copy=False)}
        in_words = np.array([b.words_offset >= 0 for b in self.blocks])
        if in_words.any():
            shift = np.array([b.words_offset - b.offset for b in self.blocks], dtype=index_dtype)
            keep = np.repeat(in_words[block_of], lengths)
            word_rows = np.zeros(n + 1, dtype=index_dtype)
            np.cumsum((lengths * in_words[block_of]).reshape(n, nb).sum(axis=1), out=word_rows[1:])
            out["words"] = sparse.csr_matrix(
                (data[keep], indices[keep] + np.repeat(shift[block_of], lengths)[keep], word_rows),
                shape=(n, self.n_word_features),
                copy=False,
            )
        return out

    def _counts(self, texts: dict[str, list[str]], n: int) -> sparse.csr_matrix:
        """Each block's n-gram counts: one row per (row, block), integer counts, sorted columns.

        The columns within a row are sorted and a column's counts summed (scipy's canonical
        format), as CountVectorizer leaves them; the sums are of integers, exact in any order.
        """
        nb = len(self.blocks)
        # Blocks counted n-gram by n-gram: each occurrence's column in its block (-1 when out of
        # vocabulary), counting 1, and which (row, block) they belong to.
        cols: list[int] = []
        gram_segments: list[int] = []
        gram_sizes: list[int] = []
        # char_wb blocks: each distinct word's columns (one per n-gram occurrence, see
        # CharWbColumns) and how often the word occurs, and which (row, block) they belong to.
        chunks: list[bytes] = []
        repeats: list[int] = []
        word_segments: list[int] = []
        word_sizes: list[int] = []
        for i in range(n):
            preprocessed: dict[tuple[int, str], str] = {}  # by preprocessing and text
            seen: dict[tuple[int, str], Any] = {}  # n-grams (char_wb: words) by analyzer and text
            for k, b in enumerate(self.blocks):
                text = texts[b.name][i]
                units: Any = seen.get((b.analyzer_key, text))  # list[str], or Counter[str] (char_wb)
                if units is None:
                    pre = preprocessed.get((b.preprocess_key, text))
                    if pre is None:
                        pre = preprocessed[(b.preprocess_key, text)] = b.reading.preprocess(text)
                    units = b.reading.grams(pre) if b.by_word is None else b.by_word.words(pre)
                    seen[(b.analyzer_key, text)] = units
                if b.by_word is None:
                    cols.extend(map(b.vocabulary.get, units, repeat(-1)))
                    gram_segments.append(i * nb + k)
                    gram_sizes.append(len(units))
                else:
                    chunks.extend(map(b.by_word.columns, units))
                    repeats.extend(units.values())
                    word_segments.append(i * nb + k)
                    word_sizes.append(len(units))
        gram_cols = np.asarray(cols, dtype=np.int64)
        known = gram_cols >= 0
        chunk_sizes = np.fromiter(map(len, chunks), np.int64, len(chunks)) // COLUMN_DTYPE.itemsize
        segment = np.concatenate(
            [
                np.repeat(np.asarray(gram_segments, dtype=np.int64), gram_sizes)[known],
                np.repeat(np.repeat(np.asarray(word_segments, dtype=np.int64), word_sizes), chunk_sizes),
            ]
        )
        local = np.concatenate([gram_cols[known], np.frombuffer(b"".join(chunks), dtype=COLUMN_DTYPE)])
        count = np.concatenate(
            [
                np.ones(int(known.sum()), dtype=np.int64),
                np.repeat(np.asarray(repeats, dtype=np.int64), chunk_sizes),
            ]
        )
        offsets = np.array([b.offset for b in self.blocks], dtype=np.int64)
        counted = sparse.csr_matrix(
            (count, (segment, local + offsets[segment % nb])), shape=(n * nb, self.n_features)
        )
        counted.sum_duplicates()  # a no-op after scipy's constructor, which sums them: what is relied on
        return counted

    # ------------------------------------------------------------------ models
    def member_scores(self, feats: dict[str, sparse.csr_matrix]) -> dict[str, np.ndarray]:
        """The TF-IDF base models' scores, as `TextClassifier._scores` gives them (float32)."""
        scores = {}
        for name, model in self.members.items():
            if name == "nb":
                # ComplementNB.predict_log_proba: joint log-likelihood, normalised by its log-sum-exp.
                jll = feats["words"] @ model.feature_log_prob_.T
                log_proba = jll - _logsumexp_rows(jll)[:, None]
                scores[name] = np.maximum(log_proba, self.nb_log_floor).astype(np.float32)
            else:
                scores[name] = self.svm_scores(model, feats["all"])
        return scores

    @staticmethod
    def svm_scores(model: LinearSVC, x: sparse.csr_matrix) -> np.ndarray:
        """`LinearSVC.decision_function(x)` without its checks, as float32 (`TextClassifier._scores`)."""
        return np.asarray(x @ model.coef_.T + model.intercept_).astype(np.float32)

    def stack_proba(self, meta: np.ndarray) -> np.ndarray:
        """The stacker's `predict_proba` on the stacked float32 scores (a new array is returned)."""
        if self.stacker is None:
            raise ValueError("this text model has no stacker")
        scaler, lr = (s for _, s in self.stacker.steps)
        x = np.array(meta, copy=True)
        x -= scaler.mean_.astype(x.dtype)  # StandardScaler.transform (with_std=False)
        decision = x @ lr.coef_.T + lr.intercept_  # LogisticRegression.decision_function
        return np.asarray(softmax(decision, copy=False))  # its predict_proba, more than two classes


def _logsumexp_rows(a: np.ndarray) -> np.ndarray:
    """Row-wise log-sum-exp, computed exactly as scikit-learn's naive Bayes computes it."""
    a_max = np.max(a, axis=1, keepdims=True)
    at_max = a == a_max
    rest = np.array(a, copy=True)
    rest[at_max] = -np.inf
    m = np.sum(at_max.astype(a.dtype), axis=1, keepdims=True, dtype=a.dtype)
    shift = np.where(np.isfinite(a_max), a_max, 0)
    exp = np.exp(rest - shift)
    s = np.sum(exp, axis=1, keepdims=True, dtype=exp.dtype)
    s = np.where(s == 0, s, s / m)
    return np.squeeze(np.log1p(s) + np.log(m) + a_max, axis=1)
