"""A cheap language guess (fr / en / de / unknown) from function words and letters: no model, no download."""

from __future__ import annotations

import re

_MARKERS = {
    "fr": {
        "de", "du", "des", "la", "le", "les", "et", "pour", "avec", "en", "un", "une", "au", "aux", "sur",
        "dans", "par", "est", "neuf", "très", "état", "taille", "couleur", "marque", "produit", "lot",
    },
    "en": {
        "the", "and", "for", "with", "of", "new", "brand", "free", "shipping", "from", "our", "is", "size",
        "colour", "color", "set", "kids", "used", "box", "original", "item", "this",
    },
    "de": {
        "der", "die", "das", "und", "für", "mit", "von", "vom", "neu", "ist", "ein", "eine", "aus", "unserem",
        "zustand", "größe", "farbe", "versand", "originalverpackt", "gebraucht", "kinder", "spiel",
    },
}  # fmt: skip
_LETTERS = {"fr": set("éèêàçùûôîœ"), "de": set("äöüß")}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
LANGUAGES = ("fr", "en", "de", "unknown")


def detect_language(text: str) -> str:
    """The language whose marker words (and letters) occur most; `unknown` when none does.

    Expects cleaned text (lowercase, entities unescaped). Ties go to French, the marketplace's language.
    """
    words = _WORD.findall(text)
    if not words:
        return "unknown"
    scores = {lang: sum(w in markers for w in words) for lang, markers in _MARKERS.items()}
    letters = set(text)
    for lang, marks in _LETTERS.items():
        if letters & marks:
            scores[lang] += 1
    best = max(scores.values())
    if best == 0:
        return "unknown"
    return next(lang for lang in ("fr", "en", "de") if scores[lang] == best)
