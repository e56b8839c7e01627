"""Scoring listings with a fitted TF-IDF text model without scikit-learn's per-call checks.

`TextClassifier`'s scikit-learn path runs four `TfidfVectorizer.transform` calls, a
`sparse.hstack`, `LinearSVC.decision_function`, `ComplementNB.predict_log_proba` and the stacker's
`Pipeline.predict_proba`; each checks its input again (array and fitted-state checks, DataFrame
detection), about 2 ms a call whatever the number of rows: most of a one-listing call.
`TextScorer` builds the same float32 matrices, entry for entry in the same order, and applies
the same arithmetic to them, so its scores are bit for bit those of the scikit-learn path. On
the prediction path a matrix stays its three arrays (`CsrRows`): building a scipy matrix, with
its checks, cost more than a small call's arithmetic; the products with the models'
coefficients run scipy's own loop on the arrays.

Counting n-grams, scikit-learn's pure-Python analyzers, is most of a larger call, above all the
char_wb blocks' over long descriptions. `TextScorer` counts a char_wb block's n-grams word by word
from a cache of each word's vocabulary columns (`CharWbColumns`, which says why the sums are
exactly scikit-learn's counts): one look-up per distinct word of a text instead of several slices
and look-ups per character. Other blocks' n-grams are looked up one occurrence at a time, each
counting 1 (one sort of all the call's columns counts their repeats, cheaper than a Counter per
text). A text is preprocessed once for the blocks that preprocess it alike, and analysed once for
the blocks that read it with the same analyzer (`text_reading`, which also strips accents and
lists word n-grams with less Python per character than scikit-learn, to the same strings). A
block's counts are integers, summed exactly in any order; its columns are sorted within each
(row, block), as CountVectorizer leaves them, before the TF-IDF weighting and normalisation,
which follow scikit-learn's operations one for one.

It is built from the fitted model on its first prediction and never pickled, so models saved
before it load and predict unchanged, and its word caches live only in the serving process.
Built, it checks itself against the scikit-learn path on probe texts; a model it does not
reproduce exactly keeps the scikit-learn path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, NamedTuple

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

from rakuten_mlops.models.char_wb import COLUMN_DTYPE, MAX_CACHED_WORDS, CharWbColumns, counts_word_by_word
from rakuten_mlops.models.text_reading import Reading, reading_of

try:  # the loop behind scipy's csr @ dense, called on the arrays (see CsrRows.dot)
    from scipy.sparse._sparsetools import csr_matvecs as _csr_matvecs
except ImportError:  # pragma: no cover - another scipy layout: CsrRows.dot builds the matrix
    _csr_matvecs = None

_INT32_MAX = int(np.iinfo(np.int32).max)

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
        # Per block: its weight as float32 (what `block * weight` multiplies by), whether naive Bayes
        # reads it and by how much its columns move in naive Bayes' input.
        self.weights = np.array([b.weight for b in blocks], dtype=np.float32)
        self.weighted = bool((self.weights != 1.0).any())
        self.in_words = np.array([b.words_offset >= 0 for b in blocks])
        self.words_shift = np.array([b.words_offset - b.offset for b in blocks], dtype=np.int64)
        self.members = {m: model for m, model in members.items() if m in ("svm", "svm_balanced", "nb")}
        # The models' coefficients as the (features, classes) C-order arrays scipy's product reads:
        # views of scikit-learn's column-major arrays (a copy, once, of any other).
        self.coef_t = {
            m: np.ascontiguousarray((model.feature_log_prob_ if m == "nb" else model.coef_).T)
            for m, model in self.members.items()
        }
        self.stacker = stacker
        # The stacker's centre as float32 scores subtract it (StandardScaler casts it to their dtype);
        # empty without a stacker.
        self.stack_mean = np.zeros(0, dtype=np.float32)
        if stacker is not None:
            self.stack_mean = stacker.steps[0][1].mean_.astype(np.float32)
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
        return {name: rows.csr() for name, rows in self.rows(texts).items()}

    def rows(self, texts: dict[str, list[str]]) -> dict[str, CsrRows]:
        """`features(texts)` as arrays (`all`, and `words` where naive Bayes reads some blocks):
        the same entries without a scipy matrix, whose checks cost more than a small call's arithmetic."""
        n = len(next(iter(texts.values()))) if texts else 0
        nb = len(self.blocks)
        key, count = self._counts(texts, n)
        segment, column = np.divmod(key, self.n_features)
        block = segment % nb  # each entry's block
        # 32-bit indices where they fit, as scipy chooses them
        fits = max(self.n_features, n * nb, len(key)) <= _INT32_MAX
        index_dtype = np.int32 if fits else np.int64
        indices = column.astype(index_dtype)
        # Where each (row, block) starts (every row's first block is where the row starts).
        first_segments = np.arange(n * nb + 1)
        segments = segment.searchsorted(first_segments).astype(index_dtype)
        data = count.astype(np.float32)  # as CountVectorizer builds it: integer counts as float32
        if self.sublinear[0]:  # TfidfTransformer.transform, on every block's entries at once
            np.log(data, data)
            data += 1.0
        data *= self.idf[indices]
        # Each (row, block) normalised on its own: the same sums, in the same order, as per block.
        inplace_csr_row_normalize_l2(CsrRows(data, indices, segments, n * nb, self.n_features))
        if self.weighted:  # `block * weight` in float32, as scipy does it (x * 1.0 is x)
            data *= self.weights[block]
        out = {"all": CsrRows(data, indices, segments[::nb].copy(), n, self.n_features)}
        if self.in_words.any():  # the word blocks' entries, in the same order, in naive Bayes' columns
            keep = self.in_words[block]
            word_rows = segment[keep].searchsorted(first_segments[::nb]).astype(index_dtype)
            word_indices = (indices[keep] + self.words_shift[block[keep]]).astype(index_dtype)
            out["words"] = CsrRows(data[keep], word_indices, word_rows, n, self.n_word_features)
        return out

    def _counts(self, texts: dict[str, list[str]], n: int) -> tuple[np.ndarray, np.ndarray]:
        """Each block's n-gram counts: the keys (row * blocks + block) * n_features + column (the
        column in `all`), sorted and distinct, and their counts (integers).

        Sorted keys are sorted columns within each (row, block), a column's counts summed (scipy's
        canonical format), as CountVectorizer leaves them; the sums are of integers, exact in any
        order.
        """
        nb, n_features = len(self.blocks), self.n_features
        # Blocks counted n-gram by n-gram: each occurrence's column in its block (-1 when out of
        # vocabulary), counting 1, and the key of the block's column 0 in their (row, block).
        cols: list[int] = []
        gram_bases: list[int] = []
        gram_sizes: list[int] = []
        # char_wb blocks: each distinct word's columns (one per n-gram occurrence, see
        # CharWbColumns) and how often the word occurs, and the key of their block's column 0.
        chunks: list[bytes] = []
        repeats: list[int] = []
        word_bases: list[int] = []
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
                    gram_bases.append((i * nb + k) * n_features + b.offset)
                    gram_sizes.append(len(units))
                else:
                    chunks.extend(map(b.by_word.columns, units))
                    repeats.extend(units.values())
                    word_bases.append((i * nb + k) * n_features + b.offset)
                    word_sizes.append(len(units))
        gram_cols = np.array(cols, dtype=np.int64)
        known = gram_cols >= 0
        gram_keys = (np.repeat(np.array(gram_bases, dtype=np.int64), gram_sizes) + gram_cols)[known]
        chunk_sizes = np.fromiter(map(len, chunks), np.int64, len(chunks)) // COLUMN_DTYPE.itemsize
        word_keys = np.repeat(np.repeat(np.array(word_bases, dtype=np.int64), word_sizes), chunk_sizes)
        word_keys += np.frombuffer(b"".join(chunks), dtype=COLUMN_DTYPE)
        # A word's columns once per occurrence of the word: every key counts 1.
        word_keys = np.repeat(word_keys, np.repeat(np.array(repeats, dtype=np.int64), chunk_sizes))
        key = np.concatenate([gram_keys, word_keys])
        # Sorted, and each distinct key's occurrences counted: what scipy's coo -> csr conversion
        # gives (summing the 1s), without its checks. Sorting the keys themselves, not an argsort
        # and its gathers, is most of this for a batch.
        key.sort()
        bounds = np.ones(len(key) + 1, dtype=bool)
        np.not_equal(key[1:], key[:-1], out=bounds[1:-1])
        bounds = bounds.nonzero()[0]  # where each distinct key starts, then the end
        return key[bounds[:-1]], bounds[1:] - bounds[:-1]

    # ------------------------------------------------------------------ models
    def member_scores(self, feats: dict[str, CsrRows]) -> dict[str, np.ndarray]:
        """The TF-IDF base models' scores from `rows`, as `TextClassifier._scores` gives them (float32)."""
        scores = {}
        for name, model in self.members.items():
            if name == "nb":
                # ComplementNB.predict_log_proba: joint log-likelihood, normalised by its log-sum-exp.
                jll = feats["words"].dot(self.coef_t[name])
                log_proba = jll - _logsumexp_rows(jll)[:, None]
                scores[name] = np.maximum(log_proba, self.nb_log_floor).astype(np.float32)
            else:
                scores[name] = self.svm_scores(model, feats["all"], self.coef_t[name])
        return scores

    @staticmethod
    def svm_scores(
        model: LinearSVC, x: CsrRows | sparse.csr_matrix, coef_t: np.ndarray | None = None
    ) -> np.ndarray:
        """`LinearSVC.decision_function(x)` without its checks, as float32 (`TextClassifier._scores`);
        `coef_t`: `model.coef_.T` in C order, when kept (`self.coef_t`)."""
        rows = x if isinstance(x, CsrRows) else CsrRows.of(x)
        return (rows.dot(model.coef_.T if coef_t is None else coef_t) + model.intercept_).astype(np.float32)

    def stack_proba(self, meta: np.ndarray) -> np.ndarray:
        """The stacker's `predict_proba` on the stacked float32 scores (a new array is returned)."""
        if self.stacker is None:
            raise ValueError("this text model has no stacker")
        scaler, lr = (s for _, s in self.stacker.steps)
        mean = self.stack_mean if meta.dtype == self.stack_mean.dtype else scaler.mean_.astype(meta.dtype)
        x = meta - mean  # StandardScaler.transform (with_std=False), in the scores' dtype
        decision = x @ lr.coef_.T + lr.intercept_  # LogisticRegression.decision_function
        # Its predict_proba (more than two classes): scikit-learn's softmax, step for step, without
        # its array-namespace look-up.
        decision -= decision.max(axis=1).reshape(-1, 1)
        np.exp(decision, out=decision)
        decision /= decision.sum(axis=1).reshape(-1, 1)
        return decision


class CsrRows(NamedTuple):
    """A csr matrix as its arrays (float32 entries), for the arithmetic scipy would do on it."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    n_rows: int
    n_cols: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_rows, self.n_cols

    @classmethod
    def of(cls, x: sparse.csr_matrix) -> CsrRows:
        """The arrays of a (canonical) csr matrix."""
        return cls(x.data, x.indices, x.indptr, *x.shape)

    def csr(self) -> sparse.csr_matrix:
        """The matrix itself, sharing the arrays."""
        return sparse.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape, copy=False)

    def dot(self, dense: np.ndarray) -> np.ndarray:
        """`csr() @ dense` for a 2-d `dense`, the same numbers: scipy's own loop (csr_matvecs adds each
        row's entries in stored order into zeros, after casting both sides to a common type)."""
        if _csr_matvecs is None:  # a scipy without it: the same loop behind the matrix product
            return np.asarray(self.csr() @ dense)
        dtype = np.result_type(self.data.dtype, dense.dtype)  # scipy's upcast
        out = np.zeros((self.n_rows, dense.shape[1]), dtype=dtype)
        # A no-op for scikit-learn's coefficients, which are stored column-major (their .T is C order).
        vectors = np.ascontiguousarray(dense, dtype=dtype)
        _csr_matvecs(
            self.n_rows, self.n_cols, dense.shape[1], self.indptr, self.indices,
            self.data.astype(dtype, copy=False), vectors.ravel(), out.ravel(),
        )  # fmt: skip
        return out


def _logsumexp_rows(a: np.ndarray) -> np.ndarray:
    """Row-wise log-sum-exp, computed exactly as scikit-learn's naive Bayes computes it (scipy's
    logsumexp: the maxima apart, the others' exponentials summed, then scaled by their number)."""
    a_max = a.max(axis=1, keepdims=True)
    at_max = a == a_max
    m = at_max.sum(axis=1, keepdims=True, dtype=a.dtype)
    exp = np.exp(np.where(at_max, -np.inf, a) - np.where(np.isfinite(a_max), a_max, 0))
    s = exp.sum(axis=1, keepdims=True)
    s = np.where(s == 0, s, s / m)
    return (np.log1p(s) + np.log(m) + a_max)[:, 0]
