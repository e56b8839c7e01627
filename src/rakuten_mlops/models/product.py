"""The trained system: text, image and fusion models behind one `predict_frame` call.

The same object runs at training (evaluation), batch prediction and serving, so the
preprocessing is never re-implemented anywhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rakuten_mlops.categories import category_name
from rakuten_mlops.errors import InvalidInputError
from rakuten_mlops.features.images import EmbeddingCache, ImageEmbedder, read_image_bytes
from rakuten_mlops.models.fusion import FusionClassifier
from rakuten_mlops.models.image import ImageClassifier, align_proba
from rakuten_mlops.models.text import TextClassifier
from rakuten_mlops.models.text_blend import BlendedTextModel
from rakuten_mlops.models.transformer import TransformerTextClassifier

# The text member: TF-IDF linear models, or a fine-tuned transformer with the same interface.
TextModel = TextClassifier | TransformerTextClassifier | BlendedTextModel


@dataclass
class Probabilities:
    text: np.ndarray
    image: np.ndarray | None  # rows without a usable image hold zeros
    image_ok: np.ndarray  # bool per row
    fused: np.ndarray  # what the system answers: fusion where an image was used, else text


@dataclass
class ProductClassifier:
    text: TextModel
    image: ImageClassifier | None = None
    fusion: FusionClassifier | None = None
    embedder: ImageEmbedder | None = None
    top_k: int = 5
    metadata: dict[str, object] = field(default_factory=dict)

    @property
    def classes_(self) -> np.ndarray:
        return self.text.classes_

    @property
    def uses_images(self) -> bool:
        return self.image is not None and self.embedder is not None

    def refit(self, frame: pd.DataFrame, y: np.ndarray) -> ProductClassifier:
        """A copy whose text model learned from `frame` with this model's choice (no new selection).

        Only for a system without fusion, where the text model answers alone (see
        `TextClassifier.refit` and `TransformerTextClassifier.refit`). A fused system is refitted
        by the pipeline's `refit` step with a new fusion: the fusion weighs text and image
        probabilities whose scales grow with the rows their models learned from, so it must
        learn them again on out-of-fold probabilities.
        """
        if self.fusion is not None:
            raise InvalidInputError(
                "a fused system is refitted with a new fusion (the pipeline's refit step)"
            )
        return ProductClassifier(
            text=self.text.refit(frame, y), image=self.image, embedder=self.embedder, top_k=self.top_k,
            metadata={**self.metadata, "train_rows": len(frame)},
        )  # fmt: skip

    def image_bytes(self, frame: pd.DataFrame) -> list[bytes | None]:
        """Image bytes per row from an `image` (bytes) column, else an `image_path` column."""
        if "image" in frame.columns:
            return [bytes(v) if isinstance(v, bytes | bytearray) and v else None for v in frame["image"]]
        if "image_path" in frame.columns:
            return [read_image_bytes(p) for p in frame["image_path"]]
        return [None] * len(frame)

    def probabilities(
        self,
        frame: pd.DataFrame,
        embeddings: tuple[np.ndarray, np.ndarray] | None = None,
        cache: EmbeddingCache | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> Probabilities:
        """Class probabilities of each part; pass precomputed `embeddings` to skip the CNN."""
        return self._fuse(
            self.text.predict_proba(frame), lambda: self.image_bytes(frame), embeddings, cache, on_progress
        )

    def _fuse(
        self,
        p_text: np.ndarray,
        images: Callable[[], list[bytes | None]],
        embeddings: tuple[np.ndarray, np.ndarray] | None = None,
        cache: EmbeddingCache | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> Probabilities:
        ok = np.zeros(len(p_text), dtype=bool)
        if not self.uses_images or self.image is None or self.embedder is None:
            return Probabilities(p_text, None, ok, p_text)
        if embeddings is None:
            cache = cache or EmbeddingCache.from_env(self.embedder)  # batch jobs share a table
            embeddings = self.embedder.embed_bytes(images(), cache, on_progress)
        emb, ok = embeddings
        p_image = np.zeros_like(p_text)
        fused = p_text.copy()
        if ok.any():
            p_image[ok] = align_proba(self.image.predict_proba(emb[ok]), self.image.classes_, self.classes_)
            if self.fusion is not None:
                fused[ok] = align_proba(
                    self.fusion.predict_proba(p_text[ok], p_image[ok]), self.fusion.classes_, self.classes_
                )
        return Probabilities(p_text, p_image, ok, fused)

    def predict_frame(self, frame: pd.DataFrame, **kwargs: object) -> pd.DataFrame:
        """Code, French category name, probability, top-k and modalities used, per row."""
        probs = self.probabilities(frame, **kwargs)  # type: ignore[arg-type]
        return format_predictions(
            probs.fused, self.classes_, probs.image_ok & (self.fusion is not None), self.top_k
        )

    def predict_listings(
        self, designations: list[str], descriptions: list[str], images: list[bytes | None]
    ) -> dict[str, Any]:
        """`predict_frame`'s columns for listings given as lists, without a DataFrame (serving).

        The same numbers as `predict_frame` on a frame of these columns; a TF-IDF text model
        predicts through its `TextScorer`, with none of pandas' or scikit-learn's per-call work.
        """
        if isinstance(self.text, TextClassifier):
            p_text = self.text.predict_proba_listings(designations, descriptions)
        else:
            frame = pd.DataFrame({"designation": designations, "description": descriptions})
            p_text = self.text.predict_proba(frame)
        images_ok = [bytes(v) if isinstance(v, bytes | bytearray) and v else None for v in images]
        probs = self._fuse(p_text, lambda: images_ok)
        return prediction_columns(
            probs.fused, self.classes_, probs.image_ok & (self.fusion is not None), self.top_k
        )


def format_predictions(
    proba: np.ndarray, classes: np.ndarray, image_used: np.ndarray, top_k: int
) -> pd.DataFrame:
    """Turn a probability matrix into the output contract's columns."""
    return pd.DataFrame(prediction_columns(proba, classes, image_used, top_k))


def prediction_columns(
    proba: np.ndarray, classes: np.ndarray, image_used: np.ndarray, top_k: int
) -> dict[str, Any]:
    """The output contract's columns (arrays and lists, one item per row) of a probability matrix."""
    k = min(top_k, proba.shape[1])
    order = np.argsort(-proba, axis=1)[:, :k]
    best = order[:, 0] if len(proba) else np.zeros(0, dtype=int)
    codes = classes[best].astype(int) if len(proba) else np.zeros(0, dtype=int)
    # The top k as Python ints and floats, converted a matrix at a time (`tolist`), not one by one.
    top_codes = classes[order].astype(int).tolist()
    top_probabilities = np.take_along_axis(proba, order, axis=1).astype(float).tolist()
    return {
        "prdtypecode": codes,
        "category": [category_name(c) for c in codes],
        "probability": proba[np.arange(len(proba)), best].astype(float),
        "top_k": [
            [{"code": c, "probability": p} for c, p in zip(cs, ps, strict=True)]
            for cs, ps in zip(top_codes, top_probabilities, strict=True)
        ],
        "modalities": np.where(image_used, "text+image", "text"),
    }
