"""Why a listing got its class: the words that pushed it there, and how much each modality weighed.

Words (see :func:`term_contributions`): the TF-IDF part of every text candidate ends in a linear
SVM, so the SVM's score for class c is ``intercept[c] + Σ_j coef[c, j] · x[j]`` with ``x`` the
weighted TF-IDF blocks (block weights are already folded into ``x``): feature j contributed
``coef[c, j] · x[j]``. For the ``stack`` the words are those of its SVM member (the complement
naive Bayes beside it reads the same word n-grams; the stacker weighs the two). Word 1–2-grams
are reported as they are, summed over the title block and the title + description block; each
character n-gram's contribution is shared out over the words it was cut from (``char_wb``: the
whitespace-separated chunk it lies in, split equally between the chunk's word tokens; ``char``:
the word tokens its span overlaps), so a misspelt or unseen word still carries its characters'
weight. Contributions are in SVM score units for the explained class.

Modalities (see :func:`modality_shares`): softmax is invariant to adding a constant to every
class's logit, so each input's part in class c's logit is measured against the average class:
``d = z[c] − mean_k z[k]``. For a ``+use`` text model (``softmax(a·log p_tfidf + b·log p_use)``)
the two terms are ``a·log p_tfidf`` and ``b·log p_use``; a ``+joint`` model's third term
(``c·log p_joint``, an SVM on n-grams and embedding components) is shared out between the two in
the ratio of its n-gram and embedding parts of the class's score; for the fusion (a logistic regression on
``log p_text`` and ``log p_image``) the two blocks of its coefficients times their (centred)
inputs. A part's share is ``|d| / Σ|d|``; the text share is split between n-grams and sentence
embeddings in their own ratio; ``supports`` says whether the part pushed towards the class.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from rakuten_mlops.errors import RakutenError
from rakuten_mlops.models.fusion import stack_features
from rakuten_mlops.models.image import align_proba
from rakuten_mlops.models.product import ProductClassifier
from rakuten_mlops.models.text import TOKEN_PATTERN, TextClassifier

TOP_TERMS = 10


class ExplanationUnavailable(RakutenError, RuntimeError):
    """The model's text member has no word-level explanation (a fine-tuned transformer)."""


_TOKEN = re.compile(TOKEN_PATTERN)
_CHUNK = re.compile(r"\S+")
_SPACES = re.compile(r"\s\s+")  # what scikit-learn's "char" analyzer squeezes


def _class_row(coef: np.ndarray, classes: np.ndarray, code: Any) -> np.ndarray:
    """coef's row for class `code` (a binary model keeps one row, for its second class)."""
    index = int(np.flatnonzero(classes == code)[0])
    if coef.shape[0] == 1 and len(classes) == 2:
        return np.asarray(coef[0] if index == 1 else -coef[0]).ravel()
    return np.asarray(coef[index]).ravel()


def _char_spans(text: str, analyzer: str, min_n: int, max_n: int) -> Iterator[tuple[str, int, int]]:
    """Every character n-gram the vectorizer cuts from `text` (spaces already squeezed), with the
    span of `text` whose words own it: its chunk for ``char_wb``, its own span for ``char``.

    Mirrors scikit-learn's ``_char_wb_ngrams`` (each whitespace-separated chunk padded with one
    space each side; a chunk shorter than n counts once) and ``_char_ngrams``.
    """
    if analyzer == "char":
        for n in range(min_n, max_n + 1):
            for i in range(max(len(text) - n + 1, 0)):
                yield text[i : i + n], i, i + n
        return
    for chunk in _CHUNK.finditer(text):
        padded, lo, hi = f" {chunk.group()} ", chunk.start(), chunk.end()
        for n in range(min_n, max_n + 1):
            offset = 0
            yield padded[:n], lo, hi
            while offset + n < len(padded):
                offset += 1
                yield padded[offset : offset + n], lo, hi
            if offset == 0:
                break


def _share_chars_out(text: str, vec: Any, values: dict[int, float], into: dict[str, float]) -> None:
    """Add each char n-gram's contribution (`values`, by column) to the word tokens it was cut from."""
    text = _SPACES.sub(" ", vec.build_preprocessor()(text))
    tokens = [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]
    occurrences = []
    for gram, lo, hi in _char_spans(text, str(vec.analyzer), *vec.ngram_range):
        column = vec.vocabulary_.get(gram)
        if column is not None and column in values:
            occurrences.append((column, lo, hi))
    counts: dict[int, int] = defaultdict(int)
    for column, _, _ in occurrences:
        counts[column] += 1
    for column, lo, hi in occurrences:
        owners = [t for t, a, b in tokens if a < hi and b > lo]
        for token in owners:
            into[token] += values[column] / counts[column] / len(owners)


def term_contributions(text: TextClassifier, frame: pd.DataFrame, code: Any) -> dict[str, float]:
    """Contribution of each word 1–2-gram of the first row of `frame` to the SVM score of `code`."""
    svm = text.members_[text.linear_member]
    row = _class_row(svm.coef_, svm.classes_, code)
    blocks = text.feature_blocks(frame.iloc[:1])
    texts = text.block_texts(frame.iloc[:1])
    out: dict[str, float] = defaultdict(float)
    offset = 0
    for name, x in blocks.items():
        vec = text.vectorizers_[name]
        x = x.tocsr()
        values = dict(zip(x.indices.tolist(), (row[offset + x.indices] * x.data).tolist(), strict=True))
        offset += x.shape[1]
        if vec.analyzer == "word":
            for term in set(vec.build_analyzer()(texts[name][0])):
                column = vec.vocabulary_.get(term)
                if column is not None and column in values:
                    out[term] += values[column]
        else:
            _share_chars_out(texts[name][0], vec, values, out)
    return dict(out)


def _centred(z: np.ndarray, index: int) -> float:
    return float(z[index] - z.mean())


def _text_parts(text: TextClassifier, frame: pd.DataFrame, index: int) -> tuple[np.ndarray, dict[str, float]]:
    """The text model's probabilities (first row) and each of its inputs' part in class `index`'s logit."""
    row = frame.iloc[:1]
    all_scores, joint_parts = text.score_parts(row)
    scores = {m: s[:1] for m, s in all_scores.items()}
    base = text.base_proba(scores)
    if not text.uses_sentences:
        return base[0], {"text_ngrams": 1.0}
    logs = [x[0].astype(np.float64) for x in text.pooled_logs(base, scores)]
    weights = text.pooling_
    z = sum(w * x for w, x in zip(weights, logs, strict=True))
    proba = np.exp(z - z.max())
    terms = [w * _centred(x, index) for w, x in zip(weights, logs, strict=True)]
    parts = {"text_ngrams": terms[0], "text_embeddings": 0.0}
    for name, term in zip(text.pooled_members, terms[1:], strict=True):
        if name == "use":
            parts["text_embeddings"] += term
        else:  # the joint SVM: its term shared out in the ratio of its two blocks' parts of the score
            assert joint_parts is not None  # a model that pools `joint` has the joint SVM
            ngrams, embeddings = joint_parts
            a, b = abs(_centred(ngrams[0], index)), abs(_centred(embeddings[0], index))
            share = b / (a + b) if a + b > 0 else 0.5
            parts["text_ngrams"] += (1 - share) * term
            parts["text_embeddings"] += share * term
    return proba / proba.sum(), parts


def _fusion_parts(
    model: ProductClassifier, p_text: np.ndarray, p_image: np.ndarray, code: Any
) -> dict[str, float]:
    """The fusion's text and image terms in class `code`'s logit (centred classes, centred inputs)."""
    assert model.fusion is not None
    coef = model.fusion.model_.coef_
    classes = model.fusion.classes_
    if coef.shape[0] == 1:  # binary: logits (-z/2, z/2)
        coef = np.vstack([-coef, coef]) / 2
    w = coef[int(np.flatnonzero(classes == code)[0])] - coef.mean(axis=0)
    x = stack_features(p_text[None, :], p_image[None, :])[0]
    k = len(p_text)
    x_text, x_image = x[:k] - x[:k].mean(), x[k:] - x[k:].mean()
    return {"text": float(w[:k] @ x_text), "image": float(w[k:] @ x_image)}


def modality_shares(parts: dict[str, float]) -> list[dict[str, Any]]:
    """Parts' logit terms → shares of their absolute sum (equal shares when every term is 0)."""
    total = sum(abs(v) for v in parts.values())
    return [
        {
            "modality": name,
            "share": round(abs(v) / total if total > 0 else 1 / len(parts), 4),
            "supports": bool(v >= 0),
        }
        for name, v in parts.items()
    ]


def explain_listing(
    model: ProductClassifier, frame: pd.DataFrame, code: Any, top: int = TOP_TERMS
) -> dict[str, Any]:
    """Why the first row of `frame` is `code`: top terms and modality shares (see the module doc).

    Args:
        model: the trained system.
        frame: one listing (`designation`, `description`, optional `image` bytes).
        code: the class to explain (the one the system answered).
        top: how many terms to return, strongest first (only those that pushed towards `code`).
    """
    text = model.text
    if not isinstance(text, TextClassifier):
        raise ExplanationUnavailable("explanations are not available for a transformer text model")
    index = int(np.flatnonzero(text.classes_ == code)[0])
    p_text, text_parts = _text_parts(text, frame, index)
    parts = text_parts
    if (
        model.uses_images
        and model.fusion is not None
        and model.image is not None
        and model.embedder is not None
    ):
        emb, ok = model.embedder.embed_bytes(model.image_bytes(frame.iloc[:1]))
        if ok[0]:
            p_image = align_proba(model.image.predict_proba(emb[:1]), model.image.classes_, text.classes_)[0]
            fused = _fusion_parts(model, p_text, p_image, code)
            text_total = sum(abs(v) for v in text_parts.values()) or 1.0
            # The fusion's text term, split between the text model's own inputs in their ratio.
            parts = {n: fused["text"] * v / text_total for n, v in text_parts.items()}
            parts["image"] = fused["image"]
    terms = term_contributions(text, frame, code)
    strongest = sorted((t for t in terms.items() if t[1] > 0), key=lambda t: -t[1])[:top]
    return {
        "code": int(code),
        "text_model": str(text.chosen_),
        "terms_from": text.linear_member,
        "terms": [{"term": t, "weight": round(v, 5)} for t, v in strongest],
        "modalities": modality_shares(parts),
    }
