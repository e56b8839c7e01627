"""Steps: embed images (cached by content hash), then train text, image and fusion models."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, TypeVar

import joblib
import numpy as np
import pandas as pd

from rakuten_mlops.config import Params, Settings
from rakuten_mlops.data.schema import IMAGE_PATH, LABEL
from rakuten_mlops.data.split import PARTS
from rakuten_mlops.errors import MissingInputError
from rakuten_mlops.features.images import EmbeddingCache, ImageEmbedder, read_image_bytes
from rakuten_mlops.features.sentences import ENCODER as SENTENCE_ENCODER
from rakuten_mlops.features.sentences import SentenceCache
from rakuten_mlops.models.fusion import FusionClassifier
from rakuten_mlops.models.image import ImageClassifier, align_proba
from rakuten_mlops.models.image_finetune import FineTunedImageNet, SoftmaxHead
from rakuten_mlops.models.product import ProductClassifier, TextModel
from rakuten_mlops.models.pyfunc import save_product_classifier
from rakuten_mlops.models.text import TextClassifier, selection_line
from rakuten_mlops.models.text_blend import BlendedTextModel, blend_with_tfidf
from rakuten_mlops.models.transformer import TransformerTextClassifier
from rakuten_mlops.pipelines.ingest import load_splits
from rakuten_mlops.pipelines.layout import WorkDir, read_json, write_json
from rakuten_mlops.pipelines.progress import NullProgress, Progress

TextModelT = TypeVar("TextModelT", bound=TextClassifier | TransformerTextClassifier | BlendedTextModel)


def images_enabled(work: WorkDir, params: Params) -> bool:
    """Images are used when the data has them and params allow it."""
    return bool(read_json(work.ingest / "summary.json", "ingest")["has_images"]) and params.image.enabled


def make_embedder(params: Params) -> ImageEmbedder:
    image = params.image
    return ImageEmbedder(image.backbone, image.image_size, image.batch_size, image.device)


def embed(
    work: WorkDir, settings: Settings, params: Params, progress: Progress | None = None
) -> dict[str, Any]:
    """Embed every split's images into one .npz (keys `<part>_emb`, `<part>_ok`); cached per image."""
    progress = progress or NullProgress()
    if not images_enabled(work, params) or params.image.kind == "finetune":
        reason = "params: image.enabled is false" if not params.image.enabled else "the data has no images"
        if params.image.kind == "finetune" and images_enabled(work, params):
            reason = "image.kind is finetune: the fine-tuned network reads the images (train_image step)"
        summary = {"enabled": False, "reason": reason}
        write_json(work.root / "features" / "summary.json", summary)
        np.savez(work.embeddings_path)  # an empty archive: downstream steps train text only
        return summary
    splits = load_splits(work)
    embedder = make_embedder(params)
    cache = EmbeddingCache.for_embedder(settings.embeddings_dir, embedder)
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
    np.savez(work.embeddings_path, **arrays)  # type: ignore[arg-type]
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
        raise MissingInputError(f"{work.embeddings_path} is missing: run the `embed` step first")
    with np.load(work.embeddings_path) as z:
        if not z.files:
            return None
        return {p: (z[f"{p}_emb"], z[f"{p}_ok"]) for p in PARTS}


def sentence_cache(settings: Settings | None = None) -> SentenceCache:
    """Sentence embeddings by text hash, beside the image embeddings."""
    return SentenceCache((settings or Settings()).cache_dir / "sentences")


def with_embedding_aids(
    text: TextModelT, progress: Progress | None = None, settings: Settings | None = None
) -> TextModelT:
    """Give a text model the embedding cache and a progress bar (neither is pickled with it)."""
    text.sentence_cache = sentence_cache(settings)
    if progress is not None:
        text.embed_progress = lambda total: progress.task(f"embedding texts ({SENTENCE_ENCODER})", total)
    return text


def fit_transformer(
    train: pd.DataFrame,
    val: pd.DataFrame | None,
    params: Params,
    progress: Progress | None = None,
    checkpoint_dir: Path | None = None,
) -> TransformerTextClassifier:
    """Fine-tune the transformer text model, early-stopped on `val` (its `val_proba_` feed the fusion)."""
    progress = progress or NullProgress()
    tp = params.text.transformer
    backbone = "a tiny random backbone" if tp.tiny is not None else tp.model
    progress.log(f"fine-tuning {backbone} on {len(train)} rows (at most {tp.epochs} epochs)")
    text = TransformerTextClassifier(tp, random_state=params.seed, checkpoint_dir=checkpoint_dir)

    def log_epoch(metrics: dict[str, float]) -> None:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != "epoch")
        progress.log(f"epoch {int(metrics['epoch'])}: {shown}")

    text.on_epoch = log_epoch
    val_data = (val, val[LABEL].to_numpy()) if val is not None and len(val) else None
    text.fit(train, train[LABEL].to_numpy(), val=val_data)
    progress.log(
        f"text model: transformer on {text.device_} ({text.precision_}), best epoch {text.best_epoch_}"
    )
    return text


def fit_text(
    train: pd.DataFrame,
    params: Params,
    progress: Progress | None = None,
    settings: Settings | None = None,
    val: pd.DataFrame | None = None,
    checkpoint_dir: Path | None = None,
) -> TextModel:
    """The text model; its out-of-fold probabilities (`oof_proba_`) feed the fusion.

    With `text.kind: transformer`, a fine-tuned transformer early-stopped on `val`, whose
    validation probabilities (`val_proba_`) feed the fusion instead.
    """
    if params.text.kind == "transformer":
        transformer = fit_transformer(train, val, params, progress, checkpoint_dir)
        return fit_tfidf_blend(transformer, train, val, params, progress, settings)
    progress = progress or NullProgress()
    progress.log(f"training text model on {len(train)} rows")
    text = with_embedding_aids(TextClassifier(params.text, random_state=params.seed), progress, settings)
    text.fit(train, train[LABEL].to_numpy())
    progress.log(f"text model: {text.chosen_} ({selection_line(text.selection_)})")
    return text


def fit_tfidf_blend(
    transformer: TransformerTextClassifier,
    train: pd.DataFrame,
    val: pd.DataFrame | None,
    params: Params,
    progress: Progress | None = None,
    settings: Settings | None = None,
) -> TransformerTextClassifier | BlendedTextModel:
    """`text.transformer.blend_tfidf`: also fit the TF-IDF model on `train` and pool it with the
    transformer on `val` (auto: when k-fold cross-validation on `val` says the pool helps)."""
    progress = progress or NullProgress()
    mode = params.text.transformer.blend_tfidf
    if mode is False:
        return transformer
    if val is None or not len(val):
        progress.log("no validation rows: the TF-IDF model is not blended with the transformer")
        return transformer
    progress.log(f"training the TF-IDF text model on {len(train)} rows (blend_tfidf: {mode})")
    tfidf = with_embedding_aids(TextClassifier(params.text, random_state=params.seed), progress, settings)
    tfidf.fit(train, train[LABEL].to_numpy())
    tfidf.oof_proba_ = None  # type: ignore[assignment]
    text = blend_with_tfidf(
        transformer, tfidf, val, val[LABEL].to_numpy(), mode,
        params.fusion.cv_folds, params.text.selection, params.seed,
    )  # fmt: skip
    blend: dict[str, Any] = text.selection_["tfidf_blend"]  # type: ignore[assignment]
    scores = f" ({selection_line(text.selection_)})" if text.selection_["candidates"] else ""
    progress.log(f"text model: {blend['chosen']}, TF-IDF {blend['tfidf_model']}{scores}")
    return text


def fit_image(
    train: pd.DataFrame,
    embeddings: tuple[np.ndarray, np.ndarray] | None,
    params: Params,
    progress: Progress | None = None,
) -> ImageClassifier | None:
    """The image head on the rows with a usable image; None when there are too few of them."""
    if embeddings is None:
        return None
    y = train[LABEL].to_numpy()
    emb, ok = embeddings
    present = np.unique(y[ok])
    if len(present) < 2 or ok.sum() < 2 * len(present):
        (progress or NullProgress()).log("too few usable training images for an image model: text only")
        return None
    image = ImageClassifier(C=params.image.C, cv_folds=params.fusion.cv_folds, random_state=params.seed)
    return image.fit(emb[ok], y[ok])


def _fit_fusion_on_validation(
    text: TransformerTextClassifier | BlendedTextModel,
    image: ImageClassifier,
    val: tuple[pd.DataFrame, tuple[np.ndarray, np.ndarray] | None] | None,
    params: Params,
) -> FusionClassifier | None:
    """A transformer has no out-of-fold probabilities: the fusion learns from the validation split,
    which neither member learned from (the transformer only chose its epoch count on it)."""
    p_text = getattr(text, "val_proba_", None)
    if val is None or val[1] is None or p_text is None:
        return None
    frame, (emb, ok) = val[0], val[1]
    y = frame[LABEL].to_numpy()[ok]
    if not ok.any() or len(np.unique(y)) < 2:
        return None
    p_image = align_proba(image.predict_proba(emb[ok]), image.classes_, text.classes_)
    return FusionClassifier(C=params.fusion.C).fit(p_text[ok], p_image, y)


def assemble(
    text: TextModel,
    image: ImageClassifier | None,
    train: pd.DataFrame,
    embeddings: tuple[np.ndarray, np.ndarray] | None,
    params: Params,
    val: tuple[pd.DataFrame, tuple[np.ndarray, np.ndarray] | None] | None = None,
) -> ProductClassifier:
    """Fit the fusion on out-of-fold probabilities (a transformer: on `val`) and put the parts together."""
    model = ProductClassifier(text=text, top_k=params.evaluation.top_k)
    if image is not None and embeddings is not None:
        model.image, model.embedder = image, make_embedder(params)
        ok = embeddings[1]
        if isinstance(text, TransformerTextClassifier | BlendedTextModel):
            if params.fusion.enabled:
                model.fusion = _fit_fusion_on_validation(text, image, val, params)
        elif params.fusion.enabled and image.oof_proba_ is not None:
            p_text = text.oof_proba_[ok]
            p_image = align_proba(image.oof_proba_, image.classes_, text.classes_)
            model.fusion = FusionClassifier(C=params.fusion.C).fit(
                p_text, p_image, train[LABEL].to_numpy()[ok]
            )
    # Out-of-fold probabilities are training by-products: the served model does not carry them.
    text.oof_proba_ = None  # type: ignore[assignment]
    if isinstance(text, TransformerTextClassifier | BlendedTextModel):
        text.val_proba_ = None
    if image is not None:
        image.oof_proba_ = None
    model.metadata = {
        "params": params.model_dump(mode="json"),
        "classes": [int(c) for c in model.classes_],
        "train_rows": len(train),
        "text_model": text.chosen_,
        "text_selection": text.selection_,
    }
    return model


def _model_info(model: ProductClassifier, embeddings: tuple[np.ndarray, np.ndarray] | None) -> dict[str, Any]:
    if model.fusion is not None:
        modalities = "text+image"
    elif model.image is not None:
        modalities = "text (image model without fusion)"
    else:
        modalities = "text"
    info: dict[str, Any] = {"modalities": modalities}
    if embeddings is not None:
        info["train_images"] = int(embeddings[1].sum())
    return info


def _parts_dir(work: WorkDir) -> Path:
    return work.root / "model_parts"


def checkpoint_dir(work: WorkDir) -> Path:
    """Where a transformer keeps its starting weights and epoch checkpoints (a rerun resumes them)."""
    return work.root / "checkpoints" / "text"


def train_text(
    work: WorkDir, params: Params, progress: Progress | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """Step: fit the text model alone (runs beside `embed` in the Airflow DAG)."""
    splits = load_splits(work)
    train_frame = splits["train"]
    t0 = time.perf_counter()
    text = fit_text(train_frame, params, progress, settings, splits["val"], checkpoint_dir(work))
    _parts_dir(work).mkdir(parents=True, exist_ok=True)
    joblib.dump(text, _parts_dir(work) / "text.joblib")
    info = {
        "rows": len(train_frame),
        "seconds": round(time.perf_counter() - t0, 2),
        "chosen": text.chosen_,
        "selection": text.selection_,
        # Where a TF-IDF model's fit spent its time (features, folds, stacker and final fits, ...).
        "phase_seconds": getattr(text, "seconds_", None),
    }
    write_json(_parts_dir(work) / "text.json", info)
    return info


def train_image(work: WorkDir, params: Params, progress: Progress | None = None) -> dict[str, Any]:
    """Step: fit the image head on the cached embeddings (nothing when images are not used)."""
    if params.image.kind == "finetune":
        return _train_finetuned_image(work, params, progress)
    embeddings = load_embeddings(work)
    train_frame = load_splits(work)["train"]
    image = fit_image(train_frame, embeddings["train"] if embeddings else None, params, progress)
    _parts_dir(work).mkdir(parents=True, exist_ok=True)
    joblib.dump(image, _parts_dir(work) / "image.joblib")
    info = {"trained": image is not None}
    write_json(_parts_dir(work) / "image.json", info)
    return info


def _train_finetuned_image(work: WorkDir, params: Params, progress: Progress | None) -> dict[str, Any]:
    """Fine-tune the image network on the train split's images, early-stopped on the validation ones."""
    progress = progress or NullProgress()
    net = None
    if images_enabled(work, params):
        splits = load_splits(work)
        train, val = splits["train"], splits["val"]
        progress.log(f"fine-tuning {params.image.finetune.backbone} on {len(train)} training images")
        net = FineTunedImageNet(params.image.finetune, params.image.image_size, params.seed)

        def log_epoch(m: dict[str, float]) -> None:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in m.items() if k != "epoch")
            progress.log(f"image epoch {int(m['epoch'])}: {shown}")

        net.fit(
            [read_image_bytes(p) for p in train[IMAGE_PATH]], train[LABEL].to_numpy(),
            val=([read_image_bytes(p) for p in val[IMAGE_PATH]], val[LABEL].to_numpy()), on_epoch=log_epoch,
        )  # fmt: skip
    _parts_dir(work).mkdir(parents=True, exist_ok=True)
    joblib.dump(net, _parts_dir(work) / "image.joblib")
    info = {"trained": net is not None, "kind": "finetune", "history": net.history_ if net else None}
    write_json(_parts_dir(work) / "image.json", info)
    return info


def assemble_finetuned(
    text: TextModel, net: FineTunedImageNet, train: pd.DataFrame, val: pd.DataFrame, params: Params
) -> ProductClassifier:
    """Text + fine-tuned image network; the fusion is fitted on the validation split, which neither
    member learned from (the text model was fitted on train; the network only chose its epoch on it)."""
    p_text_val = getattr(text, "val_proba_", None)
    if p_text_val is None and len(val):
        p_text_val = text.predict_proba(val)
    model = assemble(text, None, train, None, params)
    model.image, model.embedder = SoftmaxHead(net.classes_), net  # type: ignore[assignment]
    if params.fusion.enabled and p_text_val is not None:
        logits, ok = net.embed_bytes([read_image_bytes(p) for p in val[IMAGE_PATH]])
        y = val[LABEL].to_numpy()[ok]
        if ok.any() and len(np.unique(y)) >= 2:
            p_image = align_proba(
                SoftmaxHead(net.classes_).predict_proba(logits[ok]), net.classes_, text.classes_
            )
            model.fusion = FusionClassifier(C=params.fusion.C).fit(p_text_val[ok], p_image, y)
            model.metadata["fusion_fitted_on"] = "val"
    model.metadata["image_model"] = (
        f"finetuned {params.image.finetune.backbone} (best epoch {net.best_epoch_})"
    )
    return model


def fuse(work: WorkDir, params: Params) -> dict[str, Any]:
    """Step: fit the fusion on the parts' out-of-fold probabilities; save the whole system."""
    parts = _parts_dir(work)
    for name, step in (("text", "train_text"), ("image", "train_image")):
        if not (parts / f"{name}.joblib").is_file():
            raise MissingInputError(f"{parts / name}.joblib is missing: run the `{step}` step first")
    embeddings = load_embeddings(work)
    splits = load_splits(work)
    train_frame = splits["train"]
    emb = embeddings["train"] if embeddings else None
    val = (splits["val"], embeddings["val"] if embeddings else None)
    text, image = joblib.load(parts / "text.joblib"), joblib.load(parts / "image.joblib")
    if isinstance(image, FineTunedImageNet):
        model = assemble_finetuned(text, image, train_frame, splits["val"], params)
    else:
        model = assemble(text, image, train_frame, emb, params, val)
    path = save_product_classifier(model, work.model_dir)
    info = {"train_rows": len(train_frame), **_model_info(model, emb), "model_path": str(path)}
    write_json(work.model_dir / "summary.json", info)
    return info


def train(
    work: WorkDir, params: Params, progress: Progress | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """Step: train_text + train_image + fuse in one go (the CLI and DVC use this)."""
    text_info = train_text(work, params, progress, settings)
    train_image(work, params, progress)
    info = fuse(work, params)
    info["text_seconds"] = text_info["seconds"]
    info["text_phase_seconds"] = text_info["phase_seconds"]
    info["text_model"] = {"chosen": text_info["chosen"], **text_info["selection"]}
    write_json(work.model_dir / "summary.json", info)
    return info


def model_path(work: WorkDir) -> Path:
    from rakuten_mlops.models.pyfunc import MODEL_ARTIFACT

    path = work.model_dir / MODEL_ARTIFACT
    if not path.is_file():
        raise MissingInputError(f"{path} is missing: run the `train` step first")
    return path
