"""Explanations on the Predict page: the listing's words that drove the answer, highlighted.

The API names terms in the model's cleaned form (lowercase, accents stripped, word 1–2-grams);
each word of the title and description is compared in that same form. Listing text is user data:
every piece is HTML-escaped before the `<mark>` tags are added around it.
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Any

import pandas as pd

_TAG = re.compile(r"<[^<>]{0,500}>")
_WORD = re.compile(r"\w+")
MARK_STYLE = "background-color: #ffe08a; padding: 0 2px; border-radius: 3px"


def plain_text(text: str) -> str:
    """Listing text as a reader sees it: entities unescaped (twice, as the model does), tags removed."""
    return re.sub(r"\s+", " ", _TAG.sub(" ", html.unescape(html.unescape(text or "")))).strip()


def fold(word: str) -> str:
    """A word as the model's vectorizers see it: NFKC, lowercase, accents stripped."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", word).lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def driving_words(explanation: dict[str, Any]) -> set[str]:
    """Every word of the explanation's terms (a word pair gives both words)."""
    return {w for t in explanation.get("terms", []) for w in str(t["term"]).split()}


def highlight(text: str, words: set[str]) -> str:
    """`text` as escaped HTML with each word in `words` (folded form) wrapped in `<mark>`."""
    out, last = [], 0
    for match in _WORD.finditer(text):
        out.append(html.escape(text[last : match.start()]))
        word = html.escape(match.group())
        out.append(f'<mark style="{MARK_STYLE}">{word}</mark>' if fold(match.group()) in words else word)
        last = match.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


def terms_frame(explanation: dict[str, Any]) -> pd.DataFrame:
    """The explanation's terms as rows: term, weight."""
    return pd.DataFrame(explanation.get("terms", []), columns=["term", "weight"])


def modalities_frame(explanation: dict[str, Any]) -> pd.DataFrame:
    """Modality shares as rows: modality (readable), share, pushed towards the class."""
    names = {"text_ngrams": "text (words)", "text_embeddings": "text (sentence embedding)", "image": "image"}
    return pd.DataFrame(
        [
            {
                "modality": names.get(m["modality"], m["modality"]),
                "share": m["share"],
                "supports": m["supports"],
            }
            for m in explanation.get("modalities", [])
        ],
        columns=["modality", "share", "supports"],
    )
