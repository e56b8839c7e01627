"""Explanations name the words that really drive a class and weigh each modality (constructed data)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rakuten_mlops.config import TextParams
from rakuten_mlops.models.explain import explain_listing, term_contributions
from rakuten_mlops.models.fusion import FusionClassifier
from rakuten_mlops.models.image import ImageClassifier
from rakuten_mlops.models.product import ProductClassifier
from rakuten_mlops.models.text import TextClassifier

COMMON = ["lot", "neuf", "couleur", "taille", "grand", "petit", "rouge", "bleu", "qualite", "modele"]
CLASS_WORDS = {
    10: ["livre", "roman", "auteur"],
    2583: ["piscine", "pompe", "filtre"],
    1920: ["coussin", "housse"],
}
MADE_UP = "zorblax"  # only ever in class 1920's titles


def _rows(seed: int = 0, per_class: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for code, words in CLASS_WORDS.items():
        for i in range(per_class):
            title = [*rng.choice(COMMON, 3), str(rng.choice(words))]
            if code == 1920 and i % 2 == 0:
                title.append(MADE_UP)
            rows.append({"designation": " ".join(title), "description": "", "y": code})
    return pd.DataFrame(rows)


def _text(model: str, **kw: object) -> TextClassifier:
    data = _rows()
    params = TextParams(model=model, calibration_cv=3, min_df=1, nb_alpha=0.3, **kw)  # type: ignore[arg-type]
    return TextClassifier(params).fit(data, data["y"])


LISTING = pd.DataFrame({"designation": ["Zorblax grand rouge"], "description": ["<b>lot</b> qualité"]})


@pytest.mark.parametrize("model", ["svm", "svm_balanced", "stack"])
def test_a_made_up_word_of_one_class_is_what_explains_it(model):
    system = ProductClassifier(text=_text(model, sentence_encoder=None))
    code = int(system.predict_frame(LISTING)["prdtypecode"][0])
    assert code == 1920  # nothing but the made-up word points there
    explanation = explain_listing(system, LISTING, code)
    assert explanation["code"] == 1920 and explanation["text_model"] == model
    assert explanation["terms_from"] == ("svm" if model == "stack" else model)
    assert explanation["terms"][0]["term"] == MADE_UP
    assert explanation["terms"][0]["weight"] > 0
    assert explanation["modalities"] == [{"modality": "text_ngrams", "share": 1.0, "supports": True}]
    # Explaining another class: the made-up word pushes against it, so it is not among its terms.
    other = explain_listing(system, LISTING, 2583)
    assert MADE_UP not in [t["term"] for t in other["terms"]]


def test_terms_add_up_to_the_svm_score():
    text = _text("svm", sentence_encoder=None)
    listing = pd.DataFrame({"designation": ["petit coussin zorblax bleu"], "description": ["grand lot neuf"]})
    svm = text.members_["svm"]
    scores = svm.decision_function(text.transform(listing))[0]
    for i, code in enumerate(text.classes_):
        terms = term_contributions(text, listing, code)
        # Every n-gram, word or character, is given to some word: nothing is lost or counted twice.
        assert sum(terms.values()) == pytest.approx(scores[i] - svm.intercept_[i], abs=1e-5)
        assert {w for t in terms for w in t.split()} <= set(
            listing.iloc[0, 0].split() + listing.iloc[0, 1].split()
        )


def test_char_ngrams_carry_a_misspelt_word():
    text = _text("svm", sentence_encoder=None)
    listing = pd.DataFrame({"designation": ["zorblaxx"], "description": [""]})  # not a word of the vocabulary
    terms = term_contributions(text, listing, 1920)
    assert "zorblaxx" not in text.vectorizers_["word"].vocabulary_
    assert terms["zorblaxx"] > 0


def test_pooled_sentence_embeddings_get_a_share():
    system = ProductClassifier(text=_text("svm+use"))
    explanation = explain_listing(system, LISTING, 1920)
    names = [m["modality"] for m in explanation["modalities"]]
    assert names == ["text_ngrams", "text_embeddings"]
    assert sum(m["share"] for m in explanation["modalities"]) == pytest.approx(1.0, abs=1e-3)
    # The pooling's weights decide the split: all on one input gives it the whole share.
    for weights, expected in (((1.0, 0.0), "text_ngrams"), ((0.0, 1.0), "text_embeddings")):
        system.text.pooling_ = weights
        shares = {m["modality"]: m["share"] for m in explain_listing(system, LISTING, 1920)["modalities"]}
        assert shares[expected] == 1.0 and sum(shares.values()) == 1.0


class _FixedEmbedder:
    """Stands in for the CNN: each listing's image 'embedding' is given by its image bytes."""

    backbone, image_size = "fixed", 1

    def embed_bytes(self, data, cache=None, on_progress=None):
        ok = np.array([d is not None for d in data])
        emb = np.array(
            [np.frombuffer(d, np.float32) if d is not None else np.zeros(3, np.float32) for d in data]
        )
        return emb, ok


def _one_hot_image(code: int) -> bytes:
    return np.eye(3, dtype=np.float32)[list(CLASS_WORDS).index(code)].tobytes()


def test_an_image_that_decides_gets_the_image_share():
    # Titles of common words only: the text cannot tell the classes apart, the image can.
    rng = np.random.default_rng(1)
    codes = np.repeat(list(CLASS_WORDS), 30)
    data = pd.DataFrame({"designation": [" ".join(rng.choice(COMMON, 4)) for _ in codes], "description": ""})
    text = TextClassifier(TextParams(model="svm", calibration_cv=3, min_df=1, sentence_encoder=None)).fit(
        data, codes
    )
    emb = np.array([np.frombuffer(_one_hot_image(c), np.float32) for c in codes]) + rng.normal(
        0, 0.1, (len(codes), 3)
    )
    image = ImageClassifier(cv_folds=3).fit(emb, codes)
    fusion = FusionClassifier().fit(text.oof_proba_, image.oof_proba_, codes)
    system = ProductClassifier(text=text, image=image, fusion=fusion, embedder=_FixedEmbedder())  # type: ignore[arg-type]
    for shown in CLASS_WORDS:
        listing = pd.DataFrame(
            {"designation": ["grand rouge lot"], "description": [""], "image": [_one_hot_image(shown)]}
        )
        code = int(system.predict_frame(listing)["prdtypecode"][0])
        assert code == shown
        shares = {m["modality"]: m for m in explain_listing(system, listing, code)["modalities"]}
        assert set(shares) == {"text_ngrams", "image"}
        assert shares["image"]["share"] > 0.5 and shares["image"]["supports"]
        assert shares["image"]["share"] + shares["text_ngrams"]["share"] == pytest.approx(1.0, abs=1e-3)
    # Without an image the fused system answers from text alone: no image share.
    no_image = listing.assign(image=[None])
    text_only = explain_listing(system, no_image, int(system.predict_frame(no_image)["prdtypecode"][0]))
    assert [m["modality"] for m in text_only["modalities"]] == ["text_ngrams"]
