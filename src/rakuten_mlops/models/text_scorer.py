"""Scoring listings with a fitted TF-IDF text model without scikit-learn's per-call checks.

`TextClassifier`'s scikit-learn path runs four `TfidfVectorizer.transform` calls, a
`sparse.hstack`, `LinearSVC.decision_function`, `ComplementNB.predict_log_proba` and the stacker's
`Pipeline.predict_proba`; each checks its input again (array and fitted-state checks, DataFrame
detection), about 2 ms a call whatever the number of rows: most of a one-listing call.
`TextScorer` builds the same float32 matrices, entry for entry in the same order, and applies
the same arithmetic to them, so its scores are bit for bit those of the scikit-learn path. It
also counts a listing's n-grams with one dictionary look-up per distinct n-gram instead of one
per occurrence, and analyses a text once when two blocks read it with the same analyzer.

It is built from the fitted model on its first prediction and never pickled, so models saved
before it load and predict unchanged. Built, it checks itself against the scikit-learn path on
probe texts (`agrees_with`); a model it does not reproduce exactly keeps the scikit-learn path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
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

# Analyzer settings: two blocks whose vectorizers agree on all of them read a text the same way.
_ANALYZER_PARAMS = (
    "analyzer", "ngram_range", "token_pattern", "strip_accents", "lowercase", "preprocessor",
    "tokenizer", "stop_words", "input", "encoding", "decode_error",
)  # fmt: skip


@dataclass(frozen=True)
class _Block:
    name: str
    analyze: Callable[[str], list[str]]
    analyzer_key: int  # equal for blocks whose analyzers give the same n-grams
    vocabulary: dict[str, int]
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
    """

    def __init__(
        self,
        vectorizers: dict[str, TfidfVectorizer],
        weights: dict[str, float],
        word_blocks: Sequence[str],
        members: dict[str, Any],
        stacker: Pipeline | None,
        nb_log_floor: float,
    ) -> None:
        keys: dict[tuple[Any, ...], int] = {}
        blocks, offset, words_offset = [], 0, 0
        for name, vec in vectorizers.items():
            params = tuple(repr(getattr(vec, p, None)) for p in _ANALYZER_PARAMS)
            in_words = name in word_blocks
            blocks.append(
                _Block(
                    name, vec.build_analyzer(), keys.setdefault(params, len(keys)), vec.vocabulary_,
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
            if name in ("svm", "svm_balanced") and not isinstance(model, LinearSVC):
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
        cols: list[int] = []  # the block's column of each distinct n-gram, -1 when out of vocabulary
        counts: list[int] = []
        lengths = np.zeros(n * nb, dtype=np.int64)  # distinct n-grams per (row, block) segment
        for i in range(n):
            seen: dict[tuple[int, str], Counter[str]] = {}
            for k, b in enumerate(self.blocks):
                text = texts[b.name][i]
                grams = seen.get((b.analyzer_key, text))
                if grams is None:
                    grams = seen[(b.analyzer_key, text)] = Counter(b.analyze(text))
                cols.extend(map(b.vocabulary.get, grams, repeat(-1)))
                counts.extend(grams.values())
                lengths[i * nb + k] = len(grams)
        segment = np.repeat(np.arange(n * nb), lengths)
        local = np.asarray(cols, dtype=np.int64)
        known = local >= 0
        offsets = np.array([b.offset for b in self.blocks], dtype=np.int64)
        # Columns sorted within each (row, block), as CountVectorizer leaves them.
        segment, columns = segment[known], local[known] + offsets[segment[known] % nb]
        order = np.lexsort((columns, segment))
        index_dtype = np.int32 if max(len(columns), self.n_features) < np.iinfo(np.int32).max else np.int64
        # As CountVectorizer builds it: integer counts stored as float32.
        data = np.asarray(counts, dtype=np.float32)[known][order]
        indices = columns[order].astype(index_dtype)
        lengths = np.bincount(segment, minlength=n * nb)
        segments = np.zeros(n * nb + 1, dtype=index_dtype)  # one segment per (row, block)
        np.cumsum(lengths, out=segments[1:])
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
            else:  # LinearSVC.decision_function
                scores[name] = (feats["all"] @ model.coef_.T + model.intercept_).astype(np.float32)
        return scores

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
