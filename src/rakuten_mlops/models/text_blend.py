"""Text model: a fine-tuned transformer blended with the TF-IDF model (`text.transformer.blend_tfidf`).

With `text.kind: transformer` the pipeline may also fit the TF-IDF
:class:`~rakuten_mlops.models.text.TextClassifier` on the train split. Neither model learned from
the validation split, so their probabilities there are honest: a log-linear pool
``softmax(a·log p_transformer + b·log p_tfidf)`` (the same pooling `TextClassifier` uses for
sentence embeddings, `a, b >= 0`, starting from the transformer alone) is fitted on them.
:func:`cross_validate_blend` scores the pool against the transformer alone by a k-fold
cross-validation on the validation rows (the pool's weights fitted on k - 1 folds, scored on the
held-out one; stratified when every class has k validation rows); `auto` keeps the TF-IDF model
only when the pool wins on `text.selection` (a tie keeps the transformer alone).

:class:`BlendedTextModel` answers like a text model (`classes_`, `predict_proba` on a frame,
`refit`, `chosen_`, `selection_`, `val_proba_`), so the fusion with an image model, the pyfunc
model, the API and Spark scoring serve it unchanged. Its `val_proba_` are the pool's out-of-fold
probabilities on the validation rows (what an image fusion learns from).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, log_loss
from sklearn.model_selection import KFold, StratifiedKFold

from rakuten_mlops.models.image import align_proba
from rakuten_mlops.models.text import TextClassifier, _fit_pooling, _log, _pool
from rakuten_mlops.models.transformer import TransformerTextClassifier

KIND = "transformer+tfidf"


def _scores(proba: np.ndarray, codes: np.ndarray) -> dict[str, float]:
    pred = np.argmax(proba, axis=1)
    return {
        "cv_weighted_f1": round(float(f1_score(codes, pred, average="weighted")), 6),
        "cv_log_loss": round(float(log_loss(codes, proba, labels=np.arange(proba.shape[1]))), 6),
    }


def cross_validate_blend(
    p_transformer: np.ndarray, p_tfidf: np.ndarray, codes: np.ndarray, folds: int, by: str, seed: int
) -> dict[str, Any]:
    """The transformer alone vs the pool of both, by k-fold cross-validation on validation rows.

    Args:
        p_transformer, p_tfidf: both models' probabilities on the validation rows (same columns).
        codes: the rows' class indices (columns of the probabilities).
        folds: k (at most the row count; below 2 nothing is cross-validated). Stratified folds
            when every class has k rows, plain shuffled folds otherwise.
        by: `weighted_f1` (higher wins) or `log_loss` (lower wins); a tie keeps the transformer alone.

    Returns:
        `candidates` (each one's `cv_weighted_f1`, `cv_log_loss`), `by`, `folds`, `rows`,
        `blend` (whether the pool won), `weights` (fitted on every row) and `oof_proba` (the pool's
        out-of-fold probabilities; in-sample when nothing could be cross-validated).
    """
    log_tr, log_tf = _log(p_transformer), _log(p_tfidf)
    weights = _fit_pooling([log_tr, log_tf], codes)
    k = min(folds, len(codes))
    if k < 2:
        return {"candidates": {}, "by": by, "folds": 0, "rows": len(codes), "blend": None,
                "weights": weights, "oof_proba": _pool([log_tr, log_tf], weights)}  # fmt: skip
    oof = np.zeros_like(p_transformer, dtype=np.float64)
    present = np.bincount(codes)
    # Stratified when every class has k rows; else plain folds (the pool has two weights, not per class).
    splitter = StratifiedKFold if present[present > 0].min() >= k else KFold
    for train, test in splitter(k, shuffle=True, random_state=seed).split(codes, codes):
        w = _fit_pooling([log_tr[train], log_tf[train]], codes[train])
        oof[test] = _pool([log_tr[test], log_tf[test]], w)
    candidates = {"transformer": _scores(p_transformer, codes), KIND: _scores(oof, codes)}
    key = f"cv_{by}"
    alone, pooled = candidates["transformer"][key], candidates[KIND][key]
    blend = pooled < alone if by == "log_loss" else pooled > alone
    return {"candidates": candidates, "by": by, "folds": k, "rows": len(codes), "blend": bool(blend),
            "weights": weights, "oof_proba": oof}  # fmt: skip


class BlendedTextModel:
    """A transformer and a TF-IDF model pooled log-linearly, behind the text model's interface."""

    chosen_ = KIND
    linear_member = None
    oof_proba_: np.ndarray | None = None  # no out-of-fold probabilities on train: fusion uses `val_proba_`

    def __init__(
        self,
        transformer: TransformerTextClassifier,
        tfidf: TextClassifier,
        weights: tuple[float, float],
        selection: dict[str, Any],
        val_proba: np.ndarray | None = None,
    ) -> None:
        self.transformer = transformer
        self.tfidf = tfidf
        self.weights_ = weights
        self.selection_ = selection
        self.val_proba_ = val_proba
        self.classes_ = transformer.classes_

    # The sentence-embedding cache and progress bar the pipeline hands a text model go to the TF-IDF one.
    @property
    def sentence_cache(self) -> Any:
        return self.tfidf.sentence_cache

    @sentence_cache.setter
    def sentence_cache(self, value: Any) -> None:
        self.tfidf.sentence_cache = value

    @property
    def embed_progress(self) -> Any:
        return self.tfidf.embed_progress

    @embed_progress.setter
    def embed_progress(self, value: Any) -> None:
        self.tfidf.embed_progress = value

    @property
    def uses_sentences(self) -> bool:
        return self.tfidf.uses_sentences

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p_tr = self.transformer.predict_proba(X)
        p_tf = align_proba(self.tfidf.predict_proba(X), self.tfidf.classes_, self.classes_)
        return _pool([_log(p_tr), _log(p_tf)], self.weights_)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]  # type: ignore[no-any-return]

    def refit(self, X: pd.DataFrame, y: np.ndarray | pd.Series) -> BlendedTextModel:
        """Both models refitted on `X` with their choices (epoch count, TF-IDF candidate); the pool's
        weights are kept (they were fitted on the validation split, which a refit absorbs)."""
        return BlendedTextModel(
            self.transformer.refit(X, y), self.tfidf.refit(X, y), self.weights_, self.selection_
        )


def blend_with_tfidf(
    transformer: TransformerTextClassifier,
    tfidf: TextClassifier,
    val: pd.DataFrame,
    y_val: np.ndarray,
    mode: str | bool,
    folds: int,
    by: str,
    seed: int,
) -> TransformerTextClassifier | BlendedTextModel:
    """The blend when `mode` is true, or `auto` and cross-validation says the pool helps; else the
    transformer alone. Both scores and the choice go into the returned model's `selection_`."""
    classes = transformer.classes_
    known = np.isin(y_val, classes)
    p_tr = transformer.val_proba_ if transformer.val_proba_ is not None else transformer.predict_proba(val)
    p_tf = align_proba(tfidf.predict_proba(val), tfidf.classes_, classes)
    codes = np.searchsorted(classes, np.asarray(y_val)[known])
    report = cross_validate_blend(p_tr[known], p_tf[known], codes, folds, by, seed)
    keep = bool(report["blend"]) if mode == "auto" else True
    summary = {
        "blend_tfidf": mode,
        "chosen": KIND if keep else "transformer",
        "pooling_weights": [round(w, 6) for w in report["weights"]],
        "tfidf_model": tfidf.chosen_,
        **{k: report[k] for k in ("by", "folds", "rows")},
    }
    selection = {
        **transformer.selection_,
        "candidates": report["candidates"],
        "by": by,
        "tfidf_blend": summary,
    }
    if not keep:
        transformer.selection_ = selection
        return transformer
    val_proba = p_tr.astype(np.float64)
    val_proba[known] = report["oof_proba"]
    transformer.val_proba_ = None  # the blend's own (out-of-fold) ones feed a fusion
    selection["kind"] = KIND
    selection["tfidf_selection"] = tfidf.selection_
    return BlendedTextModel(transformer, tfidf, report["weights"], selection, val_proba)
