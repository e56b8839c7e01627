"""Behaviour of the text model on generated listings (fast: one small fit shared by the module)."""

from __future__ import annotations

import io
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score

from rakuten_mlops.categories import CODES
from rakuten_mlops.config import TEXT_CANDIDATES, TextParams
from rakuten_mlops.errors import InvalidInputError
from rakuten_mlops.models.text import TextClassifier, selection_line
from rakuten_mlops.simulation.core.sample import generate_listings
from rakuten_mlops.simulation.core.vocabulary import COLOURS

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


def test_short_titles_only_data_trains_without_the_joined_blocks(train) -> None:
    titles_only = train.assign(description="")
    fitted = TextClassifier(TextParams(calibration_cv=2)).fit(titles_only, titles_only["prdtypecode"])
    assert set(fitted.vectorizers_) == {"word", "char"}  # the joined blocks would repeat them
    np.testing.assert_allclose(fitted.predict_proba(train.head(3)).sum(axis=1), 1.0, rtol=1e-9)


def test_long_designations_keep_a_short_title_block_and_the_whole_text(train) -> None:
    """Exports that put the description into `designation` (like en17k)."""
    joined = train.assign(designation=train["designation"] + " " + train["description"], description="")
    params = TextParams(calibration_cv=2, title_max_chars=40)
    fitted = TextClassifier(params).fit(joined, joined["prdtypecode"])
    assert set(fitted.vectorizers_) == {"word", "char", "text_word", "text_char"}
    texts = fitted._texts(joined.head(50))
    assert max(map(len, texts["char"])) <= 40 < max(map(len, texts["text_char"]))


def test_selection_records_every_candidate_and_picks_the_best(model: TextClassifier, train) -> None:
    selection = model.selection_
    assert set(selection["candidates"]) == set(TEXT_CANDIDATES)
    assert selection["rows"] == len(train) and selection["folds"] == 3
    assert model.chosen_ == selection["chosen"] and selection["by"] == "weighted_f1"
    means = {n: float(np.mean(c["folds"])) for n, c in selection["candidates"].items()}
    assert means[model.chosen_] >= max(means.values()) - TextParams().selection_margin
    # the simplest candidate within the margin of the best: none before it is that good
    order = list(selection["candidates"])
    assert all(
        means[n] < max(means.values()) - TextParams().selection_margin
        for n in order[: order.index(model.chosen_)]
    )
    for c in selection["candidates"].values():
        assert len(c["folds"]) == len(c["folds_log_loss"]) == 3
        assert c["cv_log_loss"] == round(float(np.mean(c["folds_log_loss"])), 4) and c["cv_log_loss"] > 0


def test_selection_by_log_loss_when_asked(train) -> None:
    params = TextParams(selection="log_loss", sentence_encoder=None, calibration_cv=2)
    fitted = TextClassifier(params, random_state=0).fit(train, train["prdtypecode"])
    losses = {n: float(np.mean(c["folds_log_loss"])) for n, c in fitted.selection_["candidates"].items()}
    assert fitted.selection_["by"] == "log_loss"
    assert losses[fitted.chosen_] <= min(losses.values()) + params.selection_margin
    assert "chosen by cross-validated log-loss: svm " in selection_line(fitted.selection_)


def test_the_plain_svm_is_chosen_where_the_stack_loses() -> None:
    # 8 rows per class: the stacker (27 classes x 54 meta-features) has too little to learn from.
    small = generate_listings(8, seed=1)
    params = TextParams(sentence_encoder=None)  # TF-IDF candidates only (see test_text_sentences)
    fitted = TextClassifier(params, random_state=0).fit(small, small["prdtypecode"])
    scores = {n: c["cv_weighted_f1"] for n, c in fitted.selection_["candidates"].items()}
    assert scores["stack"] < max(scores["svm"], scores["svm_balanced"])
    assert fitted.chosen_ in ("svm", "svm_balanced")
    assert not hasattr(fitted, "stacker_") and "nb" not in fitted.members_
    np.testing.assert_allclose(fitted.oof_proba_.sum(axis=1), 1.0, rtol=1e-9)


def test_the_stack_is_chosen_where_it_wins(train) -> None:
    # An SVM regularised to near-constant scores: naive Bayes carries the signal, and only the
    # stack can use it.
    params = TextParams(C=1e-3, sentence_encoder=None)  # TF-IDF candidates only (see test_text_sentences)
    fitted = TextClassifier(params, random_state=0).fit(train, train["prdtypecode"])
    scores = {n: c["cv_weighted_f1"] for n, c in fitted.selection_["candidates"].items()}
    assert fitted.chosen_ == "stack"
    assert scores["stack"] > max(scores["svm"], scores["svm_balanced"]) + 0.05
    assert set(fitted.members_) == {"svm", "nb"}


@pytest.mark.parametrize("rows_per_class,C", [(8, 0.25), (20, 1e-3)])
def test_models_fitted_during_selection_are_those_a_fixed_choice_fits(rows_per_class: int, C: float) -> None:
    """The most complex candidate's models are fitted on every row beside the stacker, before
    selection ends; whichever candidate wins, the model equals that candidate fitted alone."""
    data = generate_listings(rows_per_class, seed=1)
    params = TextParams(C=C, sentence_encoder=None)
    auto = TextClassifier(params, random_state=0).fit(data, data["prdtypecode"])
    alone = TextClassifier(params.model_copy(update={"model": auto.chosen_}), random_state=0)
    alone.fit(data, data["prdtypecode"])
    probe = generate_listings(4, seed=5)
    np.testing.assert_array_equal(auto.predict_proba(probe), alone.predict_proba(probe))
    np.testing.assert_array_equal(auto.oof_proba_, alone.oof_proba_)
    assert set(auto.members_) == set(alone.members_)
    assert {"tfidf", "folds", "stacker_and_final_fits", "selection", "final"} <= set(auto.seconds_)
    assert all(v >= 0 for v in auto.seconds_.values())
    # Two fits of the same model pickle to the same bytes (registering it again is a no-op): the
    # timings stay out of the artefact.
    again = TextClassifier(params, random_state=0).fit(data, data["prdtypecode"])
    assert "seconds_" not in auto.__getstate__()
    assert pickle.dumps(auto) == pickle.dumps(again)


def test_a_fixed_model_skips_selection(train) -> None:
    params = TextParams(model="svm_balanced", calibration_cv=2)
    fitted = TextClassifier(params).fit(train, train["prdtypecode"])
    assert fitted.chosen_ == "svm_balanced" and list(fitted.selection_["candidates"]) == ["svm_balanced"]
    proba = fitted.predict_proba(train.head(5))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
    # the temperature calibrates without moving a decision
    svm = fitted.members_["svm_balanced"]
    x = fitted.transform(train.head(50))
    np.testing.assert_array_equal(fitted.predict(train.head(50)), svm.predict(x))


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
        {"nb_alpha": None, "description_weight": 0.0},  # no stack candidate, title blocks only
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


@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_svm_split_over_threads_is_the_same_model(train, class_weight) -> None:
    """Classes split over threads train the same one-vs-rest problems as one liblinear call."""
    from sklearn.svm import LinearSVC

    from rakuten_mlops.models.text import fit_svm

    clf = TextClassifier(random_state=0)
    clf.vectorizers_ = clf._make_vectorizers()
    x = clf._features(train, fit=True)["all"]
    y = train["prdtypecode"].astype(str).to_numpy()  # labels of any type
    one = LinearSVC(C=0.25, class_weight=class_weight, random_state=0).fit(x, y)
    split = fit_svm(LinearSVC(C=0.25, class_weight=class_weight, random_state=0), x, y, n_jobs=3)
    assert list(split.classes_) == list(one.classes_)
    np.testing.assert_allclose(split.coef_, one.coef_, atol=1e-3)
    np.testing.assert_array_equal(split.predict(x), one.predict(x))


@pytest.mark.parametrize("chosen", ["svm_balanced", "stack", "svm+use"])
def test_refit_keeps_the_choice_and_learns_the_new_rows(train, chosen: str) -> None:
    model = TextClassifier(TextParams(model=chosen), random_state=0).fit(train, train["prdtypecode"])
    more = pd.concat([train, generate_listings(10, seed=3)], ignore_index=True)
    marker = more.index[more["prdtypecode"] == POOL][:8]
    more.loc[marker, "designation"] = "zorglubix " + more.loc[marker, "designation"]
    refitted = model.refit(more, more["prdtypecode"])
    assert refitted.chosen_ == chosen and refitted.selection_ is model.selection_
    assert refitted.params is model.params and refitted.refit_rows_ == len(more)
    if chosen == "stack":  # the stacker is fitted again on out-of-fold scores of the new rows
        assert refitted.stacker_ is not model.stacker_
    else:  # the temperature and the pooling weights move no decision: kept, one fit
        assert refitted.temperature_ == model.temperature_
        assert getattr(refitted, "pooling_", None) == getattr(model, "pooling_", None)
    assert "zorglubix" in refitted.vectorizers_["word"].vocabulary_
    assert "zorglubix" not in model.vectorizers_["word"].vocabulary_  # the original is untouched
    probe = pd.DataFrame({"designation": ["zorglubix"], "description": [""]})
    assert refitted.predict(probe)[0] == POOL


def test_refit_refuses_rows_with_other_classes(model: TextClassifier, train) -> None:
    fewer = train[train["prdtypecode"] != POOL]
    with pytest.raises(InvalidInputError, match="classes"):
        model.refit(fewer, fewer["prdtypecode"])


def test_weight_matrices_are_stored_column_major_for_fast_prediction(model: TextClassifier, held_out) -> None:
    """Sparse X @ W.T copies a W.T that is not row-major on every call; the stored W avoids it."""
    for name, member in model.members_.items():
        weights = {"nb": "feature_log_prob_"}.get(name, "coef_")
        if name != "use":
            assert getattr(member, weights).flags.f_contiguous, name
    restored = joblib.load(io.BytesIO(_dumps(model)))
    assert all(getattr(m, "coef_", np.zeros((1, 1))).flags.f_contiguous for m in restored.members_.values())
    np.testing.assert_array_equal(restored.predict_proba(held_out), model.predict_proba(held_out))


def _dumps(model: TextClassifier) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()
