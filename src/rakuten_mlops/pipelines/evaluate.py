"""Step: evaluate text, image and fused predictions on validation, test and gold sets."""

from __future__ import annotations

from typing import Any

import joblib
import numpy as np
import pandas as pd

from rakuten_mlops.config import Settings
from rakuten_mlops.data.schema import LABEL
from rakuten_mlops.lifecycle.evaluation import (
    classification_metrics,
    confusion_counts,
    plot_confusion_matrix,
    plot_per_class_f1,
)
from rakuten_mlops.models.product import ProductClassifier
from rakuten_mlops.pipelines.ingest import load_splits
from rakuten_mlops.pipelines.layout import WorkDir, write_json
from rakuten_mlops.pipelines.train import load_embeddings, model_path, with_embedding_aids

EVAL_PARTS = ("val", "test", "gold")


def score_parts(
    model: ProductClassifier, frame: pd.DataFrame, embeddings: tuple[np.ndarray, np.ndarray] | None
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """Metrics of each model part on `frame` (`system` is what the classifier answers) and predictions."""
    y = frame[LABEL].to_numpy()
    labels = model.classes_
    probs = (
        model.probabilities(frame, embeddings=embeddings) if model.uses_images else model.probabilities(frame)
    )
    preds = {"text": labels[probs.text.argmax(1)], "system": labels[probs.fused.argmax(1)]}
    out = {"text": classification_metrics(y, preds["text"], labels)}
    if probs.image is not None and probs.image_ok.any():
        ok = probs.image_ok
        out["image"] = classification_metrics(y[ok], labels[probs.image[ok].argmax(1)], labels)
        out["image"]["coverage"] = float(ok.mean())
    out["system"] = classification_metrics(y, preds["system"], labels)
    return out, preds


def evaluate(work: WorkDir, settings: Settings | None = None) -> dict[str, Any]:
    """Write eval/metrics.json (all parts), eval/scores.json (headline numbers) and PNG plots."""
    model: ProductClassifier = joblib.load(model_path(work))
    with_embedding_aids(model.text, settings=settings)  # texts embedded once, then read back
    splits = load_splits(work)
    embeddings = load_embeddings(work)
    report: dict[str, Any] = {}
    test_preds: dict[str, np.ndarray] = {}
    for part in EVAL_PARTS:
        report[part], preds = score_parts(model, splits[part], embeddings[part] if embeddings else None)
        if part == "test":
            test_preds = preds
    fused = model.fusion is not None
    report["modalities"] = "text+image" if fused else "text"
    test = report["test"]
    y_test = splits["test"][LABEL].to_numpy()
    plots = {}
    for key, label in (("text", "text"), ("system", "fusion")) if fused else (("text", "text"),):
        path = work.eval_dir / f"confusion_{label}.png"
        plot_confusion_matrix(y_test, test_preds[key], model.classes_, path, f"{label} model, test set")
        plots[f"confusion_{label}"] = str(path)
        titles = splits["test"]["designation"].fillna("").astype(str).tolist()
        counts = confusion_counts(y_test, test_preds[key], model.classes_, titles)
        write_json(work.eval_dir / f"confusion_{label}.json", {**counts, "set": "test"})
    per_model = {"text": test["text"]}
    if "image" in test:
        per_model["image"] = test["image"]
    if fused:
        per_model["fusion"] = test["system"]
    plots["per_class_f1"] = str(
        plot_per_class_f1(per_model, work.eval_dir / "per_class_f1.png", "per-class F1 on the test set")
    )
    scores = {
        "test_weighted_f1": test["system"]["weighted_f1"],
        "test_macro_f1": test["system"]["macro_f1"],
        "test_accuracy": test["system"]["accuracy"],
        "gold_weighted_f1": report["gold"]["system"]["weighted_f1"],
        "test_text_weighted_f1": test["text"]["weighted_f1"],
    }
    if "image" in test:
        scores["test_image_weighted_f1"] = test["image"]["weighted_f1"]
    write_json(work.metrics_path, report)
    write_json(work.eval_dir / "scores.json", scores)
    return {"scores": scores, "plots": plots, "modalities": report["modalities"]}
