"""Highlighting the words an explanation names: same folding as the model, user text escaped."""

from __future__ import annotations

from rakuten_mlops.ui.explain_view import driving_words, highlight, modalities_frame, plain_text


def test_words_are_matched_in_the_models_folded_form():
    words = driving_words(
        {"terms": [{"term": "bache", "weight": 1.0}, {"term": "pompe filtre", "weight": 0.5}]}
    )
    assert words == {"bache", "pompe", "filtre"}
    out = highlight("Bâche + POMPE, filtre à sable", words)
    assert out.count("<mark") == 3
    assert ">Bâche</mark>" in out and ">POMPE</mark>" in out and ">filtre</mark>" in out
    assert "sable" in out and ">sable</mark>" not in out


def test_listing_text_is_escaped():
    out = highlight('<script>alert("x")</script> piscine', {"piscine", "script"})
    assert "<script>" not in out
    assert "&lt;" in out and ">script</mark>" in out and ">piscine</mark>" in out


def test_description_markup_is_shown_as_text_the_model_read():
    assert plain_text("<p>Filtre &amp;eacute; <b>sable</b></p>") == "Filtre é sable"


def test_modalities_are_named_for_people():
    frame = modalities_frame(
        {
            "modalities": [
                {"modality": "text_ngrams", "share": 0.7, "supports": True},
                {"modality": "image", "share": 0.3, "supports": False},
            ]
        }
    )
    assert frame["modality"].tolist() == ["text (words)", "image"]
    assert frame["share"].sum() == 1.0
