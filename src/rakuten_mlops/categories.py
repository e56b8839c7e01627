"""The 27 Rakuten France product type codes and their names (French and English)."""

from __future__ import annotations

from typing import NamedTuple


class Category(NamedTuple):
    code: int
    name_fr: str
    name_en: str


CATEGORIES: tuple[Category, ...] = (
    Category(10, "Livres d'occasion", "Used books"),
    Category(40, "Jeux vidéo et accessoires tech", "Video games and tech accessories"),
    Category(50, "Accessoires de console", "Console accessories"),
    Category(60, "Consoles de jeux", "Game consoles"),
    Category(1140, "Figurines", "Figurines"),
    Category(1160, "Cartes à collectionner", "Trading cards"),
    Category(1180, "Jeux de plateau et figurines (wargames)", "Tabletop games and miniatures"),
    Category(1280, "Jouets et déguisements pour enfants", "Children's toys and costumes"),
    Category(1281, "Jeux de société pour enfants", "Board games for children"),
    Category(1300, "Modélisme et drones", "Remote-control models and drones"),
    Category(1301, "Chaussettes et vêtements bébé", "Socks and baby clothing"),
    Category(1302, "Jeux d'extérieur", "Outdoor games"),
    Category(1320, "Puériculture", "Childcare"),
    Category(1560, "Mobilier d'intérieur", "Indoor furniture"),
    Category(1920, "Linge de lit et coussins", "Bedding and cushions"),
    Category(1940, "Épicerie", "Groceries"),
    Category(2060, "Décoration", "Decoration"),
    Category(2220, "Animalerie", "Pet supplies"),
    Category(2280, "Magazines", "Magazines"),
    Category(2403, "Lots de livres et BD", "Book and comic lots"),
    Category(2462, "Jeux vidéo d'occasion", "Used video games"),
    Category(2522, "Papeterie", "Stationery"),
    Category(2582, "Mobilier de jardin", "Garden furniture"),
    Category(2583, "Piscines et spas", "Pools and spas"),
    Category(2585, "Outillage et jardinage", "DIY and garden tools"),
    Category(2705, "Livres neufs", "New books"),
    Category(2905, "Jeux PC en téléchargement", "PC games (downloads)"),
)

CODES: tuple[int, ...] = tuple(c.code for c in CATEGORIES)
_BY_CODE = {c.code: c for c in CATEGORIES}

# Class counts in the challenge's 84,916 training rows: the generator and the
# stream cutter use them to reproduce the real class mix.
REAL_CLASS_COUNTS: dict[int, int] = {
    10: 3116, 40: 2508, 50: 1681, 60: 832, 1140: 2671, 1160: 3953, 1180: 764,
    1280: 4870, 1281: 2070, 1300: 5045, 1301: 807, 1302: 2491, 1320: 3241,
    1560: 5073, 1920: 4303, 1940: 803, 2060: 4993, 2220: 824, 2280: 4760,
    2403: 4774, 2462: 1421, 2522: 4989, 2582: 2589, 2583: 10209, 2585: 2496,
    2705: 2761, 2905: 872,
}  # fmt: skip


def category_name(code: int, lang: str = "fr") -> str:
    """Name of a product type code in French (`fr`) or English (`en`)."""
    cat = _BY_CODE.get(int(code))
    if cat is None:
        raise KeyError(f"unknown product type code {code}; known codes: {', '.join(map(str, CODES))}")
    return cat.name_fr if lang == "fr" else cat.name_en


def is_known_code(code: object) -> bool:
    """True when `code` is one of the 27 product type codes."""
    try:
        return int(code) in _BY_CODE  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False
