"""Behaviour of the text model on generated listings (fast: one small fit shared by the module)."""

from __future__ import annotations

import io

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score

from rakuten_mlops.categories import CODES
from rakuten_mlops.config import TextParams
from rakuten_mlops.data.sample import generate_listings
from rakuten_mlops.data.vocabulary import COLOURS
from rakuten_mlops.models.text import TextClassifier

POOL = 2583


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return generate_listings(20, seed=1)


@pytest.fixture(scope="module")
def model(train: pd.DataFrame) -> TextClassifier:
    return TextClassifier(random_state=0).fit(train, train["prdtypecode"])


@pytest.fixture(scope="module")
def held_out() -> pd.DataFrame:
    return generate_listings(10, seed=2)


def test_classes_are_the_27_codes(model: TextClassifier) -> None:
    assert list(model.classes_) == sorted(CODES)


def test_probabilities_are_a_distribution_over_classes(model: TextClassifier, held_out) -> None:
    proba = model.predict_proba(held_out)
    assert proba.shape == (len(held_out), len(CODES))
    assert np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
    np.testing.assert_array_equal(model.predict(held_out), model.classes_[proba.argmax(axis=1)])


def test_oof_probabilities_cover_every_training_row(model: TextClassifier, train) -> None:
    oof = model.oof_proba_
    assert oof.shape == (len(train), len(CODES))
    np.testing.assert_allclose(oof.sum(axis=1), 1.0, rtol=1e-9)


def test_oof_probabilities_are_out_of_fold(model: TextClassifier, train, held_out) -> None:
    """Honest out-of-fold accuracy matches unseen data, not the (higher) in-sample accuracy."""
    y = train["prdtypecode"].to_numpy()
    in_sample = accuracy_score(y, model.predict(train))
    out_of_fold = accuracy_score(y, model.classes_[model.oof_proba_.argmax(axis=1)])
    unseen = accuracy_score(held_out["prdtypecode"], model.predict(held_out))
    assert out_of_fold < in_sample - 0.05
    assert abs(out_of_fold - unseen) < 0.05


@pytest.mark.parametrize("colour", COLOURS)
def test_a_pool_stays_a_pool_when_its_colour_changes(model: TextClassifier, colour: str) -> None:
    listing = pd.DataFrame(
        {
            "designation": [f"Piscine hors sol Intex {colour} 4 x 1.2 m"],
            "description": [f"<p>Piscine tubulaire avec filtre &agrave; sable.</p>Couleur : {colour}"],
        }
    )
    assert model.predict(listing)[0] == POOL


def test_weighted_f1_on_held_out_listings(model: TextClassifier, held_out) -> None:
    # About 30% of generated listings only use their family's shared words, which caps the
    # score well below 1; a model that learnt nothing scores about 0.04.
    score = f1_score(held_out["prdtypecode"], model.predict(held_out), average="weighted")
    assert score >= 0.65


def test_the_description_is_read_when_the_title_says_little(model: TextClassifier) -> None:
    listing = pd.DataFrame(
        {
            "designation": ["Article neuf"],
            "description": ["<p>Piscine hors sol Intex avec filtre &agrave; sable et skimmer</p>"],
        }
    )
    assert model.predict(listing)[0] == POOL


def test_titles_only_data_trains_without_a_description_block(train) -> None:
    titles_only = train.assign(description="")  # like en17k: everything in the title
    fitted = TextClassifier(TextParams(calibration_cv=2)).fit(titles_only, titles_only["prdtypecode"])
    assert "description" not in fitted.vectorizers_
    np.testing.assert_allclose(fitted.predict_proba(train.head(3)).sum(axis=1), 1.0, rtol=1e-9)


def test_missing_or_empty_description_is_accepted(model: TextClassifier) -> None:
    title_only = pd.DataFrame({"designation": ["Robot piscine Zodiac"]})
    empty = title_only.assign(description=[""])
    nan = title_only.assign(description=[np.nan])
    np.testing.assert_allclose(model.predict_proba(title_only), model.predict_proba(empty))
    np.testing.assert_allclose(model.predict_proba(title_only), model.predict_proba(nan))


def test_pickle_round_trip_gives_identical_probabilities(model: TextClassifier, held_out) -> None:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    restored = joblib.load(buffer)
    np.testing.assert_array_equal(restored.predict_proba(held_out), model.predict_proba(held_out))


@pytest.mark.parametrize(
    "overrides",
    [
        {"nb_alpha": None, "description_weight": 0.0},  # SVM + calibrator only
        {"char_analyzer": "char", "class_weight": "balanced", "word_ngram_max": 1},
    ],
)
def test_other_settings_still_give_calibrated_probabilities(overrides: dict, train) -> None:
    params = TextParams(calibration_cv=2, min_df=1, **overrides)
    small = train.groupby("prdtypecode").head(8)
    fitted = TextClassifier(params).fit(small, small["prdtypecode"])
    proba = fitted.predict_proba(small.head(5))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
    assert fitted.oof_proba_.shape == (len(small), len(CODES))


def test_a_class_with_one_row_is_refused(train) -> None:
    rows = pd.concat([train[train["prdtypecode"] != POOL], train[train["prdtypecode"] == POOL].head(1)])
    with pytest.raises(ValueError, match="at least 2 training rows"):
        TextClassifier().fit(rows, rows["prdtypecode"])
