"""Category labels in the language the person picked (French or English)."""

from __future__ import annotations

from rakuten_mlops.categories import CODES, category_name, is_known_code

LANGUAGES = {"fr": "Français", "en": "English"}


def category_label(code: object, lang: str = "fr") -> str:
    """Name of a product type code in `lang`; the code itself when it is not one of the 27."""
    return category_name(int(code), lang) if is_known_code(code) else str(code)  # type: ignore[call-overload]


def category_with_code(code: object, lang: str = "fr") -> str:
    """``Name (code)``, e.g. ``Piscines et spas (2583)``."""
    return f"{category_label(code, lang)} ({code})"


def other_language(lang: str) -> str:
    return "en" if lang == "fr" else "fr"


def category_options(lang: str) -> dict[str, int]:
    """Select-box choices: ``Name (code)`` → code, in code order."""
    return {category_with_code(code, lang): code for code in CODES}
