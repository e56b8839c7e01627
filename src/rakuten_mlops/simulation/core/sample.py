"""Built-in sample generator: realistic listings and images in the exact challenge layout.

Text carries most of the class signal, but about a third of listings use only their
family's shared vocabulary (ambiguous between e.g. the four book classes); the image
carries part of the signal (a class-specific shape and hue, with noise), so fusion
beats text alone and image alone. Deterministic for a seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFilter

from rakuten_mlops.categories import CODES, REAL_CLASS_COUNTS
from rakuten_mlops.data.schema import (
    LABEL,
    TEST_IMAGES_DIR,
    TRAIN_IMAGES_DIR,
    X_COLUMNS,
    X_TEST,
    X_TRAIN,
    Y_TRAIN,
    image_filename,
)
from rakuten_mlops.simulation.core.vocabulary import (
    ADJECTIVES,
    CLASS_WORDS,
    COLOURS,
    DESCRIPTION_OPENERS,
    FAMILIES,
    FAMILY_WORDS,
    FOREIGN_NOUNS,
)

FAMILY_OF = {code: fam for fam, codes in FAMILIES.items() for code in codes}
SHAPES = ("circle", "square", "triangle", "stripes", "ring", "cross")
AMBIGUOUS_SHARE = 0.3
EMPTY_DESCRIPTION_SHARE = 0.35
IMAGE_NOISE_SHARE = 0.2


@dataclass(frozen=True)
class SampleSummary:
    out_dir: Path
    n_train: int
    n_test: int
    n_images: int
    class_counts: dict[int, int]


def class_sizes(n_per_class: int, minimum: int = 6) -> dict[int, int]:
    """Rows per class for an average of `n_per_class`, in the challenge's class proportions."""
    mean = sum(REAL_CLASS_COUNTS.values()) / len(REAL_CLASS_COUNTS)
    return {c: max(minimum, round(n_per_class * REAL_CLASS_COUNTS[c] / mean)) for c in CODES}


def _pick(rng: np.random.Generator, seq: tuple[str, ...] | list[str]) -> str:
    return seq[int(rng.integers(len(seq)))]


def _reference(rng: np.random.Generator) -> str:
    letters = "".join(chr(65 + int(i)) for i in rng.integers(0, 26, 2))
    return f"{letters}-{int(rng.integers(100, 9999))}"


def _title(code: int, rng: np.random.Generator, ambiguous: bool) -> str:
    nouns, brands, details = CLASS_WORDS[code]
    family = FAMILY_OF[code]
    lang = rng.random()
    if ambiguous:
        # Only words shared by the whole family, and a brand of any family member.
        sibling = int(_pick(rng, [str(c) for c in FAMILIES[family]]))
        words = list(rng.choice(FAMILY_WORDS[family], size=2, replace=False))
        parts = [*words, _pick(rng, CLASS_WORDS[sibling][1]), _reference(rng)]
    elif lang < 0.04:
        parts = [_pick(rng, FOREIGN_NOUNS[code][0]), _pick(rng, brands), "Neu", _pick(rng, details)]
    elif lang < 0.07:
        parts = [_pick(rng, FOREIGN_NOUNS[code][1]), _pick(rng, brands), "new", _pick(rng, details)]
    else:
        parts = [_pick(rng, nouns), _pick(rng, brands), _pick(rng, details)]
        if rng.random() < 0.5:
            parts.append(_pick(rng, COLOURS))
        if rng.random() < 0.4:
            parts.append(f"Réf {_reference(rng)}")
        if rng.random() < 0.3:
            parts.append(_pick(rng, FAMILY_WORDS[family]))
    sep = " - " if rng.random() < 0.4 else " "
    return sep.join(p[:1].upper() + p[1:] for p in parts)


def _escape_accents(text: str) -> str:
    for char, entity in (("é", "&eacute;"), ("è", "&egrave;"), ("à", "&agrave;"), ("ç", "&ccedil;")):
        text = text.replace(char, entity)
    return text


def _description(code: int, rng: np.random.Generator, ambiguous: bool) -> str:
    if rng.random() < EMPTY_DESCRIPTION_SHARE:
        return ""
    nouns, brands, details = CLASS_WORDS[code]
    family = FAMILY_OF[code]
    if ambiguous:
        sentences = [
            "Article en très bon état, vendu par un particulier.",
            f"Caractéristiques : {', '.join(rng.choice(FAMILY_WORDS[family], size=3, replace=False))}.",
        ]
    else:
        opener = _pick(rng, DESCRIPTION_OPENERS).format(
            adj=_pick(rng, ADJECTIVES), brand=_pick(rng, brands), noun=_pick(rng, nouns)
        )
        feats = "".join(f"<li>{d}</li>" for d in rng.choice(details, size=2, replace=False))
        sentences = [opener, f"<b>Caractéristiques</b> :<ul>{feats}</ul>"]
        if rng.random() < 0.5:
            sentences.append(f"Couleur : {_pick(rng, COLOURS)}<br />Marque : {_pick(rng, brands)}")
    text = "<p>" + "</p><br /><p>".join(sentences) + "</p>"
    if rng.random() < 0.4:
        text = _escape_accents(text)
    return text


def _unique_ids(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    ids = np.unique(rng.integers(low, high, size=n + n // 10 + 10, dtype=np.int64))
    while len(ids) < n:  # pragma: no cover - collisions among billions of values
        ids = np.unique(np.concatenate([ids, rng.integers(low, high, size=n, dtype=np.int64)]))
    return rng.permutation(ids)[:n]


def generate_listings(n_per_class: int = 40, seed: int = 42) -> pd.DataFrame:
    """Labelled listings (no images written): the challenge columns plus `prdtypecode`."""
    rng = np.random.default_rng(seed)
    sizes = class_sizes(n_per_class)
    labels = np.repeat(np.array(list(sizes.keys())), list(sizes.values()))
    rng.shuffle(labels)
    n = len(labels)
    productids = _unique_ids(rng, n, 10_000_000, 4_000_000_000)
    imageids = _unique_ids(rng, n, 100_000_000, 1_400_000_000)
    rows = []
    for code in labels:
        ambiguous = bool(rng.random() < AMBIGUOUS_SHARE)
        rows.append((_title(int(code), rng, ambiguous), _description(int(code), rng, ambiguous)))
    frame = pd.DataFrame(rows, columns=["designation", "description"])
    frame["productid"] = productids
    frame["imageid"] = imageids
    frame[LABEL] = labels.astype(int)
    frame.index.name = None
    return frame


def render_image(code: int, rng: np.random.Generator, size: int = 500) -> Image.Image:
    """A product photo stand-in: a class-specific shape and hue on a random background, noisily."""
    if rng.random() < IMAGE_NOISE_SHARE:
        code = int(_pick(rng, [str(c) for c in CODES]))
    # Class identity = (shape, hue band): 6 shapes x 5 bands 72 degrees apart.
    k = CODES.index(code)
    hue = ((k // len(SHAPES)) * 72 + rng.normal(0, 8)) % 360
    shape = SHAPES[k % len(SHAPES)]
    bg = tuple(int(v) for v in rng.integers(170, 256, 3))
    img = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(img)
    colour = _hsv_to_rgb(hue, 0.55 + 0.4 * rng.random(), 0.45 + 0.5 * rng.random())
    r = size * (0.25 + 0.15 * rng.random())
    cx, cy = size / 2 + rng.normal(0, size * 0.08, 2)
    box = [cx - r, cy - r, cx + r, cy + r]
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    elif shape == "stripes":
        step = max(4, int(r / 3))
        for x in range(int(cx - r), int(cx + r), 2 * step):
            draw.rectangle([x, cy - r, x + step, cy + r], fill=colour)
    elif shape == "ring":
        draw.ellipse(box, outline=colour, width=max(3, int(r / 3)))
    else:
        w = r / 3
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=colour)
        draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=colour)
    for _ in range(int(rng.integers(2, 6))):  # clutter
        pts = [tuple(float(v) for v in rng.integers(0, size, 2)) for _ in range(2)]
        grey = int(rng.integers(60, 200))
        draw.line(pts, fill=(grey, grey, grey), width=int(rng.integers(1, 6)))
    return img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0, 1.5))))


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    c = v * s
    x = c * (1 - abs((h / 60) % 2 - 1))
    m = v - c
    sector = int(h // 60) % 6
    r, g, b = [(c, x, 0), (x, c, 0), (0, c, x), (0, x, c), (x, 0, c), (c, 0, x)][sector]
    return (round((r + m) * 255), round((g + m) * 255), round((b + m) * 255))


def _write_images(
    frame: pd.DataFrame, folder: Path, seed: int, size: int, on_image: Callable[[], None] | None
) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    for i, row in enumerate(frame.itertuples()):
        rng = np.random.default_rng([seed, i, 7])
        img = render_image(int(row.prdtypecode), rng, size)
        img.save(folder / image_filename(row.imageid, row.productid), "JPEG", quality=85)
        if on_image is not None:
            on_image()
    return len(frame)


def generate_sample(
    out_dir: str | Path,
    n_per_class: int = 40,
    seed: int = 42,
    *,
    with_images: bool = True,
    image_size: int = 500,
    test_fraction: float = 0.1,
    on_image: Callable[[], None] | None = None,
) -> SampleSummary:
    """Write a labelled train part and an unlabelled test part in the challenge layout."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = generate_listings(n_per_class, seed)
    n_test = math.floor(len(frame) * test_fraction)
    test, train = frame.iloc[:n_test], frame.iloc[n_test:].reset_index(drop=True)
    train[list(X_COLUMNS)].to_csv(out / X_TRAIN)
    train[[LABEL]].to_csv(out / Y_TRAIN)
    test_x = test[list(X_COLUMNS)].copy()
    test_x.index = range(len(train), len(train) + len(test))
    test_x.to_csv(out / X_TEST)
    n_images = 0
    if with_images:
        n_images += _write_images(train, out / TRAIN_IMAGES_DIR, seed, image_size, on_image)
        n_images += _write_images(test, out / TEST_IMAGES_DIR, seed + 1, image_size, on_image)
    counts = train[LABEL].value_counts().sort_index().to_dict()
    return SampleSummary(out, len(train), len(test), n_images, {int(k): int(v) for k, v in counts.items()})
