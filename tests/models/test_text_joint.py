"""The `stack+use+joint` text candidate: the stack pooled with the embedding model and an SVM that
reads the TF-IDF blocks and the embeddings' principal components together."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from rakuten_mlops.config import TextParams
from rakuten_mlops.models.explain import explain_listing
from rakuten_mlops.models.product import ProductClassifier
from rakuten_mlops.models.text import Projection, TextClassifier
from rakuten_mlops.models.text_scorer import TextScorer
from rakuten_mlops.simulation.core.sample import generate_listings


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return generate_listings(12, seed=1)


@pytest.fixture(scope="module")
def held_out() -> pd.DataFrame:
    return generate_listings(4, seed=2)


@pytest.fixture(scope="module")
def joint(train) -> TextClassifier:
    params = TextParams(model="stack+use+joint", calibration_cv=3, joint_dims=16)
    return TextClassifier(params, random_state=0).fit(train, train["prdtypecode"])


def test_a_joint_model_pools_three_models_with_nonnegative_weights(joint, held_out) -> None:
    assert joint.chosen_ == "stack+use+joint" and joint.uses_sentences
    assert set(joint.members_) == {"svm", "nb", "use", "joint"}
    assert joint.pooled_members == ("use", "joint")
    assert len(joint.pooling_) == 3 and min(joint.pooling_) >= 0 and sum(joint.pooling_) > 0
    assert joint.joint_temperature_ > 0
    # The joint SVM reads every TF-IDF column and then the 16 embedding components.
    n_tfidf = sum(len(v.vocabulary_) for v in joint.vectorizers_.values())
    assert joint.members_["joint"].coef_.shape == (len(joint.classes_), n_tfidf + 16)
    proba = joint.predict_proba(held_out)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
    np.testing.assert_allclose(joint.oof_proba_.sum(axis=1), 1.0, rtol=1e-9)
    assert (joint.predict(held_out) == held_out["prdtypecode"]).mean() > 0.5


def test_the_fast_scorer_gives_scikit_learns_answers_bit_for_bit(joint, held_out) -> None:
    assert isinstance(joint.scorer(), TextScorer)
    np.testing.assert_array_equal(joint.predict_proba(held_out), joint.predict_proba_reference(held_out))
    listings = joint.predict_proba_listings(
        held_out["designation"].tolist(), held_out["description"].tolist()
    )
    np.testing.assert_array_equal(listings, joint.predict_proba_reference(held_out))


def test_a_joint_model_survives_pickling_and_pickles_to_the_same_bytes(joint, train, held_out) -> None:
    loaded = pickle.loads(pickle.dumps(joint))
    np.testing.assert_array_equal(loaded.predict_proba(held_out), joint.predict_proba(held_out))
    params = TextParams(model="stack+use+joint", calibration_cv=3, joint_dims=16)
    again = TextClassifier(params, random_state=0).fit(train, train["prdtypecode"])
    assert pickle.dumps(again) == pickle.dumps(joint)  # registering the same model twice is a no-op


def test_auto_selection_tries_the_joint_candidate_unless_turned_off(train) -> None:
    fitted = TextClassifier(TextParams(calibration_cv=2, joint_dims=8), random_state=0)
    fitted.fit(train, train["prdtypecode"])
    assert "stack+use+joint" in fitted.selection_["candidates"]
    off = TextClassifier(TextParams(calibration_cv=2, joint_dims=None), random_state=0)
    off.fit(train, train["prdtypecode"])
    assert "stack+use+joint" not in off.selection_["candidates"]
    assert "stack+use" in off.selection_["candidates"]
    assert off.projection_ is None and "joint" not in off.members_


def test_a_joint_model_chosen_among_all_candidates_is_the_one_fitted_alone(
    joint, train, held_out, monkeypatch
) -> None:
    # Selection fits the joint SVM on every row only once it is chosen (it is the slowest fit):
    # the model must be the same as when it is the only candidate.
    select = TextClassifier._select

    def choose_joint(self, probas, y, splits):  # type: ignore[no-untyped-def]
        return {**select(self, probas, y, splits), "chosen": "stack+use+joint"}

    monkeypatch.setattr(TextClassifier, "_select", choose_joint)
    auto = TextClassifier(TextParams(calibration_cv=3, joint_dims=16), random_state=0)
    auto.fit(train, train["prdtypecode"])
    assert auto.chosen_ == "stack+use+joint" and set(auto.members_) == {"svm", "nb", "use", "joint"}
    np.testing.assert_array_equal(auto.predict_proba(held_out), joint.predict_proba(held_out))


def test_the_joint_candidate_needs_its_dimensions_and_the_encoder() -> None:
    with pytest.raises(ValueError, match="needs joint_dims"):
        TextParams(model="stack+use+joint", joint_dims=None)
    with pytest.raises(ValueError, match="needs sentence_encoder"):
        TextParams(model="stack+use+joint", sentence_encoder=None)


def test_refitting_a_joint_model_keeps_its_choice(joint, train, held_out) -> None:
    more = pd.concat([train, held_out], ignore_index=True)
    refitted = joint.refit(more, more["prdtypecode"])
    assert refitted.chosen_ == "stack+use+joint" and refitted.refit_rows_ == len(more)
    assert refitted.projection_ is not None and len(refitted.pooling_) == 3
    np.testing.assert_allclose(refitted.predict_proba(held_out).sum(axis=1), 1.0, rtol=1e-9)


def test_the_projection_is_exact_principal_components_at_unit_mean_norm() -> None:
    rng = np.random.default_rng(0)
    emb = (rng.normal(size=(500, 12)) * np.linspace(3, 0.1, 12)).astype(np.float32)
    proj = Projection.fit(emb, 4, chunk=128)  # several chunks
    out = proj.apply(emb)
    assert out.shape == (500, 4) and out.dtype == np.float32
    assert np.mean((out**2).sum(axis=1)) == pytest.approx(1.0, rel=1e-4)
    # The components are the covariance's leading eigenvectors: uncorrelated, decreasing variance.
    cov = np.cov(out.T.astype(np.float64), bias=True)
    np.testing.assert_allclose(cov - np.diag(np.diag(cov)), 0, atol=1e-5)
    assert (np.diff(np.diag(cov)) < 0).all()
    again = Projection.fit(emb, 4)
    np.testing.assert_array_equal(again.components, proj.components)
    assert Projection.fit(emb, 40).components.shape == (12, 12)  # no more components than dimensions


def test_a_pooled_model_saved_without_a_projection_still_predicts(train, held_out) -> None:
    # Models saved before the joint SVM existed have no `projection_` and two pooling weights.
    old = TextClassifier(TextParams(model="stack+use", calibration_cv=3), random_state=0)
    old.fit(train, train["prdtypecode"])
    state = old.__getstate__()
    state.pop("projection_", None)
    restored = TextClassifier.__new__(TextClassifier)
    restored.__setstate__(state)
    assert len(restored.pooling_) == 2
    np.testing.assert_array_equal(restored.predict_proba(held_out), old.predict_proba(held_out))


def test_explanations_share_the_joint_term_between_ngrams_and_embeddings(joint, held_out) -> None:
    system = ProductClassifier(text=joint)
    row = held_out.iloc[:1]
    code = int(joint.predict(row)[0])
    shares = {m["modality"]: m["share"] for m in explain_listing(system, row, code)["modalities"]}
    assert set(shares) == {"text_ngrams", "text_embeddings"}
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
    # All the pool's weight on the joint SVM: both parts come from its two blocks.
    joint_only = pickle.loads(pickle.dumps(joint))
    joint_only.pooling_ = (0.0, 0.0, 1.0)
    parts = joint_only.score_parts(row)[1]
    assert parts is not None
    ngrams, embeddings = parts
    index = int(np.flatnonzero(joint.classes_ == code)[0])
    a = abs(ngrams[0, index] - ngrams[0].mean())
    b = abs(embeddings[0, index] - embeddings[0].mean())
    shares = {
        m["modality"]: m["share"]
        for m in explain_listing(ProductClassifier(text=joint_only), row, code)["modalities"]
    }
    assert shares["text_embeddings"] == pytest.approx(b / (a + b), abs=1e-3)
