"""Cut a labelled frame into an initial pool and ordered batches; inject described drift (pure functions).

A drift spec names batches (1-based) and kinds, e.g. ``"3"`` (the default kinds on batch 3),
``"3:class_mix+language"``, ``"2:empty_description=0.5;4,5:dark_images"``. Values override
the strengths of ``params.yaml`` (`streams.drift`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageEnhance
from sklearn.model_selection import train_test_split

from rakuten_mlops.config import InjectedDriftParams
from rakuten_mlops.data.schema import LABEL
from rakuten_mlops.errors import InvalidInputError

TEXT_KINDS = ("class_mix", "empty_description", "language")
IMAGE_KINDS = ("dark_images", "small_images")
KINDS = TEXT_KINDS + IMAGE_KINDS
_STRENGTH_FIELD = {
    "class_mix": "class_mix_share",
    "empty_description": "empty_description_share",
    "language": "language_share",
    "dark_images": "dark_images_factor",
    "small_images": "small_images_factor",
}


@dataclass(frozen=True)
class DriftKind:
    kind: str
    strength: float


@dataclass(frozen=True)
class StreamCut:
    initial: pd.DataFrame
    batches: list[pd.DataFrame]


@dataclass
class AppliedDrift:
    """A batch after drift injection, with what was done to it (for its metadata.json)."""

    frame: pd.DataFrame
    described: list[dict[str, Any]] = field(default_factory=list)
    image_ops: list[DriftKind] = field(default_factory=list)


def parse_drift_spec(
    spec: str | None, n_batches: int, default_kinds: list[str], strengths: InjectedDriftParams
) -> dict[int, list[DriftKind]]:
    """Batch number → drift kinds with their strengths.

    Raises:
        ValueError: unknown kind, bad number or a batch outside 1..n_batches.
    """
    out: dict[int, list[DriftKind]] = {}
    if not spec or not spec.strip():
        return out
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        batches_text, _, kinds_text = part.partition(":")
        try:
            batches = [int(b) for b in re.split(r"[,\s]+", batches_text.strip()) if b]
        except ValueError:
            raise InvalidInputError(
                f"drift spec {part!r}: batch numbers must be integers (e.g. '3:class_mix')"
            ) from None
        if not batches:
            raise InvalidInputError(f"drift spec {part!r} names no batch")
        kinds = []
        for item in [k.strip() for k in kinds_text.split("+") if k.strip()] or list(default_kinds):
            name, _, value = item.partition("=")
            name = name.strip()
            if name not in KINDS:
                raise InvalidInputError(f"unknown drift kind {name!r}; kinds: {', '.join(KINDS)}")
            default = float(getattr(strengths, _STRENGTH_FIELD[name]))
            try:
                strength = float(value) if value else default
            except ValueError:
                raise InvalidInputError(f"drift spec {item!r}: the value must be a number") from None
            if not 0 < strength <= 1 or (name in (*IMAGE_KINDS, "class_mix") and strength >= 1):
                raise InvalidInputError(f"drift spec {item!r}: the value must be in (0, 1)")
            kinds.append(DriftKind(name, strength))
        for b in batches:
            if not 1 <= b <= n_batches:
                raise InvalidInputError(f"drift spec names batch {b}, but there are {n_batches} batches")
            out.setdefault(b, []).extend(kinds)
    return out


def cut_stream(frame: pd.DataFrame, n_batches: int, initial_fraction: float, seed: int) -> StreamCut:
    """An initial pool (stratified by label when possible) and `n_batches` disjoint, shuffled batches."""
    if n_batches < 1:
        raise InvalidInputError("n_batches must be at least 1")
    n_rest = len(frame) - round(len(frame) * initial_fraction)
    if n_rest < n_batches:
        raise InvalidInputError(f"{len(frame)} rows cannot make {n_batches} batches after the initial pool")
    labels = frame[LABEL].astype(str) if LABEL in frame.columns else None
    stratify = labels if labels is not None and labels.value_counts().min() >= 2 else None
    try:
        initial, rest = train_test_split(
            frame, train_size=initial_fraction, random_state=seed, shuffle=True, stratify=stratify
        )
    except ValueError:  # too few rows per class for a stratified cut
        initial, rest = train_test_split(frame, train_size=initial_fraction, random_state=seed, shuffle=True)
    rest = rest.sample(frac=1.0, random_state=seed + 1)
    bounds = np.linspace(0, len(rest), n_batches + 1).round().astype(int)
    batches = [rest.iloc[bounds[i] : bounds[i + 1]] for i in range(n_batches)]
    return StreamCut(initial.sort_index(), batches)


# A few frequent marketplace words: enough to make a listing read as English or German.
_WORDS = {
    "en": {
        "de": "of", "du": "of the", "des": "of the", "la": "the", "le": "the", "les": "the", "pour": "for",
        "avec": "with", "et": "and", "en": "in", "neuf": "new", "lot": "set", "noir": "black",
        "blanc": "white", "rouge": "red", "bleu": "blue", "vert": "green", "gris": "grey", "jeu": "game",
        "livre": "book", "enfant": "kid", "enfants": "kids", "jardin": "garden", "piscine": "pool",
        "chaise": "chair", "coussin": "cushion", "jouet": "toy", "taille": "size", "couleur": "colour",
        "marque": "brand", "très": "very", "bon": "good", "état": "condition", "occasion": "used",
    },
    "de": {
        "de": "von", "du": "vom", "des": "der", "la": "die", "le": "der", "les": "die", "pour": "für",
        "avec": "mit", "et": "und", "en": "in", "neuf": "neu", "lot": "Set", "noir": "schwarz",
        "blanc": "weiß", "rouge": "rot", "bleu": "blau", "vert": "grün", "gris": "grau", "jeu": "Spiel",
        "livre": "Buch", "enfant": "Kind", "enfants": "Kinder", "jardin": "Garten", "piscine": "Pool",
        "chaise": "Stuhl", "coussin": "Kissen", "jouet": "Spielzeug", "taille": "Größe", "couleur": "Farbe",
        "marque": "Marke", "très": "sehr", "bon": "gut", "état": "Zustand", "occasion": "gebraucht",
    },
}  # fmt: skip
_TITLE_TAIL = {"en": " - brand new with free shipping", "de": " - neu und originalverpackt"}
_DESCRIPTION = {
    "en": "Brand new {title}. Fast shipping from our store, with the original box. "
    "The item is exactly as described and comes with the manufacturer's warranty.",
    "de": "Neu: {title}. Schneller Versand aus unserem Shop, mit der Originalverpackung. "
    "Der Artikel ist wie beschrieben und hat die Garantie des Herstellers.",
}
_WORD = re.compile(r"\w+", re.UNICODE)


def translate_title(title: str, language: str) -> str:
    """Swap frequent French words for `language` ones and add a marketplace phrase in that language."""
    words = _WORDS[language]
    swapped = _WORD.sub(lambda m: words.get(m.group(0).lower(), m.group(0)), title)
    return swapped + _TITLE_TAIL[language]


def apply_text_drift(
    batch: pd.DataFrame, kinds: list[DriftKind], strengths: InjectedDriftParams, seed: int
) -> AppliedDrift:
    """Apply class-mix, empty-description and language drift to a batch (raw string columns)."""
    rng = np.random.default_rng(seed)
    out = batch.copy()
    result = AppliedDrift(out)
    for kind in kinds:
        if kind.kind == "class_mix":
            codes = {str(c) for c in strengths.class_mix_codes}
            boosted = out[LABEL].astype(str).isin(codes)
            n_boost = int(boosted.sum())
            if n_boost == 0:
                raise InvalidInputError(f"class_mix drift: the batch holds none of the codes {sorted(codes)}")
            keep_others = min(int((~boosted).sum()), round(n_boost * (1 - kind.strength) / kind.strength))
            others = out.index[~boosted]
            kept = rng.choice(others.to_numpy(), size=keep_others, replace=False)
            before = len(out)
            out = out[boosted | out.index.isin(kept)]
            result.described.append(
                {
                    "kind": "class_mix",
                    "codes": sorted(int(c) for c in codes),
                    "share": round(n_boost / len(out), 4),
                    "target_share": kind.strength,
                    "rows_before": before,
                    "rows_dropped": before - len(out),
                }
            )
        elif kind.kind == "empty_description":
            chosen = rng.random(len(out)) < kind.strength
            out = out.copy()
            out.loc[chosen, "description"] = ""
            empty_share = float(out["description"].astype(str).str.strip().eq("").mean())
            result.described.append(
                {
                    "kind": "empty_description",
                    "share": kind.strength,
                    "rows_emptied": int(chosen.sum()),
                    "empty_share": round(empty_share, 4),
                }
            )
        elif kind.kind == "language":
            lang = strengths.language
            chosen = rng.random(len(out)) < kind.strength
            out = out.copy()
            titles = (
                out.loc[chosen, "designation"].astype(str).map(lambda t, lang=lang: translate_title(t, lang))
            )
            out.loc[chosen, "designation"] = titles
            has_desc = out.loc[chosen, "description"].astype(str).str.strip().ne("")
            rewritten = [
                _DESCRIPTION[lang].format(title=t) if d else "" for t, d in zip(titles, has_desc, strict=True)
            ]
            out.loc[chosen, "description"] = rewritten
            result.described.append(
                {
                    "kind": "language",
                    "language": lang,
                    "share": kind.strength,
                    "rows_rewritten": int(chosen.sum()),
                }
            )
        else:
            result.image_ops.append(kind)
            result.described.append({"kind": kind.kind, "factor": kind.strength})
    result.frame = out
    return result


def transform_image(img: Image.Image, ops: list[DriftKind]) -> Image.Image:
    """Darken and/or shrink an image as the batch's image drift says."""
    out = img.convert("RGB")
    for op in ops:
        if op.kind == "dark_images":
            out = ImageEnhance.Brightness(out).enhance(op.strength)
        elif op.kind == "small_images":
            w, h = out.size
            out = out.resize((max(8, round(w * op.strength)), max(8, round(h * op.strength))))
    return out
