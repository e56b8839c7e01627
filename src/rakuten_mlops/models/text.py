"""Text model: cleaned title + description → TF-IDF word and char n-grams → calibrated linear SVM."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from rakuten_mlops.config import TextParams
from rakuten_mlops.features.text import frame_texts


class TextClassifier(ClassifierMixin, BaseEstimator):
    """Calibrated linear classifier on TF-IDF features of the listing text.

    Input: a DataFrame with `designation` and (optionally) `description`.
    """

    def __init__(self, params: TextParams | None = None, random_state: int = 42) -> None:
        self.params = params
        self.random_state = random_state

    def _p(self) -> TextParams:
        return self.params or TextParams()

    def _vectorizers(self) -> list[TfidfVectorizer]:
        p = self._p()
        common = dict(
            min_df=p.min_df,
            sublinear_tf=p.sublinear_tf,
            max_features=p.max_features,
            strip_accents="unicode",
            dtype=np.float32,
        )
        word = TfidfVectorizer(
            analyzer="word", ngram_range=(1, p.word_ngram_max), token_pattern=r"(?u)\b\w+\b", **common
        )
        char = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(p.char_ngram_min, p.char_ngram_max), **common
        )
        return [word, char]

    def _features(self, X: pd.DataFrame, fit: bool) -> sparse.csr_matrix:
        p = self._p()
        docs = frame_texts(X)
        titles = frame_texts(X.assign(description=""))
        if fit:
            self.vectorizers_ = self._vectorizers()
            self.title_vectorizer_ = TfidfVectorizer(
                analyzer="word",
                ngram_range=(1, p.word_ngram_max),
                token_pattern=r"(?u)\b\w+\b",
                min_df=p.min_df,
                sublinear_tf=p.sublinear_tf,
                strip_accents="unicode",
                dtype=np.float32,
            )
            blocks = [v.fit_transform(docs) for v in self.vectorizers_]
            blocks.append(self.title_vectorizer_.fit_transform(titles) * p.title_weight)
        else:
            blocks = [v.transform(docs) for v in self.vectorizers_]
            blocks.append(self.title_vectorizer_.transform(titles) * p.title_weight)
        return sparse.hstack(blocks, format="csr")

    def fit(self, X: pd.DataFrame, y: np.ndarray | pd.Series) -> TextClassifier:
        p = self._p()
        y = np.asarray(y)
        feats = self._features(X, fit=True)
        _, counts = np.unique(y, return_counts=True)
        folds = int(min(p.calibration_cv, counts.min()))
        if folds < 2:
            raise ValueError("every class needs at least 2 training rows to calibrate probabilities")
        svm = LinearSVC(C=p.C, class_weight=p.class_weight, random_state=self.random_state)
        cv = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
        # Out-of-fold decision scores calibrate the SVM (a multinomial logistic regression on
        # the scores) and feed the fusion model without another round of fits.
        oof_scores = cross_val_predict(svm, feats, y, cv=cv, method="decision_function")
        self.svm_ = svm.fit(feats, y)
        self.calibrator_ = LogisticRegression(C=p.calibration_C, max_iter=1000)
        self.calibrator_.fit(oof_scores, y)
        self.classes_ = self.svm_.classes_
        self.oof_proba_ = self.calibrator_.predict_proba(oof_scores)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.calibrator_.predict_proba(self.svm_.decision_function(self._features(X, fit=False)))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
