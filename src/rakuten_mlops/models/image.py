"""Image model: a linear head on frozen CNN embeddings."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


def align_proba(proba: np.ndarray, have: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Reorder probability columns from classes `have` to classes `want` (absent classes get 0)."""
    out = np.zeros((proba.shape[0], len(want)), dtype=np.float64)
    pos = {c: i for i, c in enumerate(want)}
    for j, c in enumerate(have):
        out[:, pos[c]] = proba[:, j]
    return out


class ImageClassifier(ClassifierMixin, BaseEstimator):
    """Standardised embeddings → multinomial logistic regression."""

    def __init__(self, C: float = 1.0, cv_folds: int = 3, random_state: int = 42) -> None:
        self.C = C
        self.cv_folds = cv_folds
        self.random_state = random_state

    def _pipeline(self) -> Pipeline:
        return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=self.C, max_iter=2000))])

    def fit(self, X: np.ndarray, y: np.ndarray) -> ImageClassifier:
        y = np.asarray(y)
        _, counts = np.unique(y, return_counts=True)
        folds = int(min(self.cv_folds, counts.min()))
        if folds >= 2:
            cv = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
            self.oof_proba_ = cross_val_predict(self._pipeline(), X, y, cv=cv, method="predict_proba")
        else:  # a class with one image: no honest out-of-fold estimate
            self.oof_proba_ = None
        self.model_ = self._pipeline().fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
