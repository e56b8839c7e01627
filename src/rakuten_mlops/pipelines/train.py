"""Steps: embed images (cached by content hash), then train text, image and fusion models."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rakuten_mlops.config import Params, Settings
from rakuten_mlops.data.schema import IMAGE_PATH, LABEL
from rakuten_mlops.data.split import PARTS
from rakuten_mlops.features.images import EmbeddingCache, ImageEmbedder, read_image_bytes
from rakuten_mlops.models.fusion import FusionClassifier
from rakuten_mlops.models.image import ImageClassifier, align_proba
from rakuten_mlops.models.product import ProductClassifier
from rakuten_mlops.models.pyfunc import save_product_classifier
from rakuten_mlops.models.text import TextClassifier
from rakuten_mlops.pipelines.ingest import load_splits
from rakuten_mlops.pipelines.layout import WorkDir, read_json, write_json
from rakuten_mlops.pipelines.progress import NullProgress, Progress


def images_enabled(work: WorkDir, params: Params) -> bool:
    """Images are used when the data has them and params allow it."""
    return bool(read_json(work.ingest / "summary.json", "ingest")["has_images"]) and params.image.enabled


def make_embedder(params: Params) -> ImageEmbedder:
    return ImageEmbedder(params.image.backbone, params.image.image_size, params.image.batch_size)


def embed(
    work: WorkDir, settings: Settings, params: Params, progress: Progress | None = None
) -> dict[str, Any]:
    """Embed every split's images into one .npz (keys `<part>_emb`, `<part>_ok`); cached per image."""
    progress = progress or NullProgress()
    if not images_enabled(work, params):
        reason = "params: image.enabled is false" if not params.image.enabled else "the data has no images"
        summary = {"enabled": False, "reason": reason}
        write_json(work.root / "features" / "summary.json", summary)
        np.savez(work.embeddings_path)  # an empty archive: downstream steps train text only
        return summary
    splits = load_splits(work)
    embedder = make_embedder(params)
    cache = EmbeddingCache(settings.cache_dir / "embeddings", params.image.backbone, params.image.image_size)
    total = sum(len(df) for df in splits.values())
    advance = progress.task(f"embedding images ({params.image.backbone})", total=total)
    arrays: dict[str, np.ndarray] = {}
    started = time.perf_counter()
    for name, df in splits.items():
        data = [read_image_bytes(p) for p in df[IMAGE_PATH]]
        emb, ok = embedder.embed_bytes(data, cache, on_progress=advance)
        advance(int(len(df) - ok.sum()))  # rows without a usable image count as done
        arrays[f"{name}_emb"], arrays[f"{name}_ok"] = emb.astype(np.float32), ok
    work.embeddings_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(work.embeddings_path, **arrays)
    summary = {
        "enabled": True,
        "backbone": params.image.backbone,
        "images": total,
        "usable": {p: int(arrays[f"{p}_ok"].sum()) for p in PARTS},
        "seconds": round(time.perf_counter() - started, 2),
    }
    write_json(work.root / "features" / "summary.json", summary)
    return summary


def load_embeddings(work: WorkDir) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """Per split (embeddings, ok mask), or None when images are not used."""
    if not work.embeddings_path.is_file():
        raise FileNotFoundError(f"{work.embeddings_path} is missing: run the `embed` step first")
    with np.load(work.embeddings_path) as z:
        if not z.files:
            return None
        return {p: (z[f"{p}_emb"], z[f"{p}_ok"]) for p in PARTS}


def fit_product_classifier(
    train: pd.DataFrame,
    embeddings: tuple[np.ndarray, np.ndarray] | None,
    params: Params,
    progress: Progress | None = None,
) -> tuple[ProductClassifier, dict[str, Any]]:
    """Fit text, then (with embeddings) image and the stacking fusion on out-of-fold probabilities."""
    progress = progress or NullProgress()
    y = train[LABEL].to_numpy()
    info: dict[str, Any] = {"train_rows": len(train)}
    t0 = time.perf_counter()
    progress.log(f"training text model on {len(train)} rows")
    text = TextClassifier(params.text, random_state=params.seed).fit(train, y)
    info["text_seconds"] = round(time.perf_counter() - t0, 2)
    model = ProductClassifier(text=text, top_k=params.evaluation.top_k)
    if embeddings is None:
        info["modalities"] = "text"
        return model, info
    emb, ok = embeddings
    if ok.sum() < 2 * len(np.unique(y[ok])) or len(np.unique(y[ok])) < 2:
        progress.log("too few usable training images for an image model: text only")
        info["modalities"] = "text"
        return model, info
    t0 = time.perf_counter()
    image = ImageClassifier(C=params.image.C, cv_folds=params.fusion.cv_folds, random_state=params.seed)
    image.fit(emb[ok], y[ok])
    info["image_seconds"] = round(time.perf_counter() - t0, 2)
    model.image, model.embedder = image, make_embedder(params)
    model.embedder.batch_size = params.image.batch_size
    if params.fusion.enabled and image.oof_proba_ is not None:
        t0 = time.perf_counter()
        p_text = text.oof_proba_[ok]
        p_image = align_proba(image.oof_proba_, image.classes_, text.classes_)
        model.fusion = FusionClassifier(C=params.fusion.C).fit(p_text, p_image, y[ok])
        info["fusion_seconds"] = round(time.perf_counter() - t0, 2)
    info["modalities"] = "text+image" if model.fusion is not None else "text (image model without fusion)"
    info["train_images"] = int(ok.sum())
    return model, info


def train(work: WorkDir, params: Params, progress: Progress | None = None) -> dict[str, Any]:
    """Train on the `train` split and save the system to the work folder."""
    splits = load_splits(work)
    embeddings = load_embeddings(work)
    model, info = fit_product_classifier(
        splits["train"], embeddings["train"] if embeddings else None, params, progress
    )
    model.metadata = {"params": params.model_dump(), "classes": [int(c) for c in model.classes_]}
    path = save_product_classifier(model, work.model_dir)
    info["model_path"] = str(path)
    write_json(work.model_dir / "summary.json", info)
    return info


def model_path(work: WorkDir) -> Path:
    from rakuten_mlops.models.pyfunc import MODEL_ARTIFACT

    path = work.model_dir / MODEL_ARTIFACT
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the `train` step first")
    return path
