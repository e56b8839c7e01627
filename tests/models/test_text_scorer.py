"""The text model's fast scorer gives exactly scikit-learn's numbers, and only where it does."""

from __future__ import annotations

import io
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest

from rakuten_mlops.config import TextParams
from rakuten_mlops.models.text import TextClassifier
from rakuten_mlops.models.text_scorer import TextScorer
from rakuten_mlops.simulation.core.sample import generate_listings


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return generate_listings(12, seed=1)


@pytest.fixture(scope="module")
def listings() -> pd.DataFrame:
    """Held-out listings plus the awkward ones: empty, unknown words, markup, a repeated title."""
    held = generate_listings(4, seed=2)[["designation", "description"]]
    odd = pd.DataFrame(
        {
            "designation": ["", "qwzx vbnm", "Piscine &amp; <b>spa</b> gonflable", "Piscine piscine piscine",
                            "x" * 300, "Lot de 3 T-shirts taille 4 ans"],
            "description": ["", "", "<p>Filtre &agrave; sable</p><br />" * 20, "piscine", "", None],
        }
    )  # fmt: skip
    return pd.concat([held, odd], ignore_index=True)


def fitted(train: pd.DataFrame, **params: object) -> TextClassifier:
    p = TextParams(sentence_encoder=None, calibration_cv=2, **params)  # type: ignore[arg-type]
    return TextClassifier(p, random_state=0).fit(train, train["prdtypecode"])


@pytest.mark.parametrize(
    "params",
    [
        {"model": "stack"},
        {"model": "svm"},
        {"model": "svm_balanced", "word_weight": 0.6, "description_weight": 0.3},
        {"model": "stack", "title_max_chars": None, "char_analyzer": "char", "word_ngram_max": 1},
        {"model": "stack", "description_weight": 0.0, "sublinear_tf": False},
    ],
    ids=["stack", "svm", "weighted-blocks", "char-no-cut", "titles-only"],
)
def test_the_scorer_gives_scikit_learns_probabilities_bit_for_bit(
    train: pd.DataFrame, listings: pd.DataFrame, params: dict[str, object]
) -> None:
    model = fitted(train, **params)
    assert isinstance(model.scorer(), TextScorer)  # the fast path is the one measured here
    expected = model.predict_proba_reference(listings)
    assert np.array_equal(model.predict_proba(listings), expected)
    for start, size in ((0, 1), (5, 8), (3, 32)):  # one listing, a micro-batch, a batch
        part = listings.iloc[start : start + size]
        assert np.array_equal(model.predict_proba(part), model.predict_proba_reference(part))
    listed = model.predict_proba_listings(list(listings["designation"]), list(listings["description"]))
    assert np.array_equal(listed, expected)


def test_the_scorer_builds_the_same_sparse_features(train: pd.DataFrame, listings: pd.DataFrame) -> None:
    model = fitted(train, model="stack", word_weight=0.7)
    scorer = model.scorer()
    assert scorer is not None
    texts = model._texts(listings)
    expected, got = model._features_of(texts, fit=False), scorer.features(texts)
    for name in ("all", "words"):
        assert got[name].shape == expected[name].shape
        assert got[name].dtype == expected[name].dtype == np.float32
        assert np.array_equal(got[name].indptr, expected[name].indptr)
        assert np.array_equal(got[name].indices, expected[name].indices)
        assert np.array_equal(got[name].data, expected[name].data)


def test_a_scorer_that_differs_by_any_amount_is_not_used(
    train: pd.DataFrame, listings: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = fitted(train, model="stack")
    exact = TextScorer.stack_proba

    def nearly(self: TextScorer, meta: np.ndarray) -> np.ndarray:
        out = exact(self, meta)
        out[:, 0] += 1e-12
        return out

    monkeypatch.setattr(TextScorer, "stack_proba", nearly)
    assert model.scorer() is None
    assert np.array_equal(model.predict_proba(listings), model.predict_proba_reference(listings))


def test_the_scorer_is_never_pickled_and_a_model_saved_without_it_predicts_the_same(
    train: pd.DataFrame, listings: pd.DataFrame
) -> None:
    model = fitted(train, model="stack")
    before = model.predict_proba(listings)  # builds the scorer
    assert model.scorer() is not None
    buf = io.BytesIO()
    joblib.dump(model, buf)
    assert b"TextScorer" not in pickle.dumps(model)
    buf.seek(0)
    loaded = joblib.load(buf)
    assert "_scorer_cache" not in vars(loaded)  # what a model saved before the scorer looks like
    assert np.array_equal(loaded.predict_proba(listings), before)
    assert isinstance(loaded.scorer(), TextScorer)


def test_a_refitted_copy_scores_with_its_own_parts(train: pd.DataFrame, listings: pd.DataFrame) -> None:
    model = fitted(train, model="svm")
    model.predict_proba(listings)  # the original's scorer, cached on it
    more = pd.concat([train, generate_listings(3, seed=9)], ignore_index=True)
    refitted = model.refit(more, more["prdtypecode"])  # a shallow copy with new vectorizers and SVM
    assert refitted.scorer() is not model.scorer()
    assert np.array_equal(refitted.predict_proba(listings), refitted.predict_proba_reference(listings))
    assert not np.array_equal(refitted.predict_proba(listings), model.predict_proba(listings))
