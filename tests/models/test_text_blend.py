"""The transformer blended with the TF-IDF model (`text.transformer.blend_tfidf`), on a tiny backbone.

The data set is built so that the TF-IDF model carries signal the tiny transformer lacks: one
epoch at a tiny learning rate leaves the random-init transformer near chance, while each class
has its own words.
"""

from __future__ import annotations

import io

import joblib
import numpy as np
import pandas as pd
import pytest

from rakuten_mlops.config import Params
from rakuten_mlops.models import text as text_module
from rakuten_mlops.models.explain import ExplanationUnavailable, explain_listing
from rakuten_mlops.models.product import ProductClassifier
from rakuten_mlops.models.pyfunc import pip_requirements, text_runtime
from rakuten_mlops.models.text_blend import KIND, BlendedTextModel, cross_validate_blend
from rakuten_mlops.models.transformer import TransformerTextClassifier
from rakuten_mlops.pipelines.train import fit_text
from tests.helpers import word_listings

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")

WORDS = {
    10: "livre roman poche auteur",
    2583: "piscine hors sol filtre",
    1280: "jouet peluche enfant doudou",
    50: "manette console chargeur sans",
}


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def listings(n_per_class: int, seed: int) -> pd.DataFrame:
    return word_listings(WORDS, n_per_class, seed, html_descriptions=False)


def params(blend: str | bool) -> Params:
    return Params.model_validate(
        {
            "text": {
                "kind": "transformer", "sentence_encoder": None, "calibration_cv": 2, "min_df": 1,
                "transformer": {
                    "tiny": {"layers": 1, "hidden": 16, "heads": 2, "intermediate": 32, "vocab_size": 200},
                    "max_length": 16, "epochs": 1, "lr": 1e-6, "batch_size": 32, "patience": 1,
                    "precision": "no", "device": "cpu", "blend_tfidf": blend,
                },
            },
        }
    )  # fmt: skip


@pytest.fixture(scope="module")
def splits() -> tuple[pd.DataFrame, pd.DataFrame]:
    return listings(16, 0), listings(6, 1)


@pytest.fixture(scope="module")
def blended(splits: tuple[pd.DataFrame, pd.DataFrame]) -> BlendedTextModel:
    train, val = splits
    model = fit_text(train, params("auto"), val=val)
    assert isinstance(model, BlendedTextModel), model.selection_
    return model


def test_auto_keeps_the_tfidf_model_when_cross_validation_says_it_helps(
    blended: BlendedTextModel, splits: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    _, val = splits
    sel = blended.selection_
    assert sel["kind"] == KIND and sel["tfidf_blend"]["chosen"] == KIND and sel["tfidf_blend"]["folds"] == 3
    scores = sel["candidates"]
    assert scores[KIND]["cv_weighted_f1"] > scores["transformer"]["cv_weighted_f1"]
    assert scores[KIND]["cv_weighted_f1"] > 0.9 and scores["transformer"]["cv_weighted_f1"] < 0.6
    assert blended.weights_[1] > 0  # the TF-IDF model weighs in the pool
    y = val["prdtypecode"].to_numpy()
    assert (blended.predict(val) == y).mean() > 0.9
    assert (blended.transformer.predict(val) == y).mean() < 0.6  # the transformer alone is near chance
    assert blended.val_proba_ is not None and blended.val_proba_.shape == (len(val), 4)


def test_false_never_fits_the_tfidf_model(
    splits: tuple[pd.DataFrame, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    train, val = splits

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the TF-IDF model was fitted")

    monkeypatch.setattr(text_module.TextClassifier, "fit", refuse)
    model = fit_text(train, params(False), val=val)
    assert isinstance(model, TransformerTextClassifier) and "tfidf_blend" not in model.selection_


def test_auto_drops_a_pool_that_does_not_help() -> None:
    rng = np.random.default_rng(0)
    codes = np.repeat(np.arange(4), 9)
    p_transformer = np.full((len(codes), 4), 0.1 / 3)
    p_transformer[np.arange(len(codes)), codes] = 0.9  # always right
    p_tfidf = rng.dirichlet(np.ones(4), len(codes))  # noise
    report = cross_validate_blend(p_transformer, p_tfidf, codes, folds=3, by="weighted_f1", seed=0)
    assert report["blend"] is False and report["candidates"]["transformer"]["cv_weighted_f1"] == 1.0
    assert report["oof_proba"].shape == p_transformer.shape


def test_the_pickled_blend_predicts_the_same_and_names_what_it_needs(
    blended: BlendedTextModel, splits: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    _, val = splits
    buf = io.BytesIO()
    joblib.dump(ProductClassifier(text=blended), buf)
    buf.seek(0)
    loaded: ProductClassifier = joblib.load(buf)
    np.testing.assert_allclose(loaded.text.predict_proba(val), blended.predict_proba(val), atol=1e-6)
    assert text_runtime(loaded) == "onnx"  # the transformer inside is exported: no torch to serve it
    names = {r.split("==")[0] for r in pip_requirements(False, False, text_runtime(loaded))}
    assert "onnxruntime" in names and "torch" not in names
    with pytest.raises(ExplanationUnavailable):
        explain_listing(loaded, val.head(1), int(val["prdtypecode"].iloc[0]))


def test_refit_keeps_the_pool_and_both_choices(
    blended: BlendedTextModel, splits: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, val = splits
    frame = pd.concat([train, val])
    new = blended.refit(frame, frame["prdtypecode"].to_numpy())
    assert isinstance(new, BlendedTextModel) and new.weights_ == blended.weights_
    assert new.tfidf.chosen_ == blended.tfidf.chosen_ and len(new.transformer.history_) == 1
    assert (new.predict(val) == val["prdtypecode"].to_numpy()).mean() > 0.9
