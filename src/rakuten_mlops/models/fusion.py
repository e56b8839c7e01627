"""Fusion: stacking a logistic regression on the text and image models' class probabilities."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

_EPS = 1e-6


def stack_features(p_text: np.ndarray, p_image: np.ndarray) -> np.ndarray:
    """Log-probabilities of both models side by side: the meta-model's input."""
    return np.hstack([np.log(p_text + _EPS), np.log(p_image + _EPS)])


class FusionClassifier(ClassifierMixin, BaseEstimator):
    """Meta-model trained on out-of-fold probabilities (never on in-sample ones)."""

    def __init__(self, C: float = 1.0) -> None:
        self.C = C

    def fit(self, p_text: np.ndarray, p_image: np.ndarray, y: np.ndarray) -> FusionClassifier:
        self.model_ = LogisticRegression(C=self.C, max_iter=2000)
        self.model_.fit(stack_features(p_text, p_image), np.asarray(y))
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, p_text: np.ndarray, p_image: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(stack_features(p_text, p_image))
