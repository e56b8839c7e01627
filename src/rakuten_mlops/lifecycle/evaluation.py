"""Metrics and plots for a set of predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from rakuten_mlops.categories import category_name
from rakuten_mlops.errors import InvalidInputError


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Weighted F1 (the challenge metric), macro F1, accuracy and per-class scores."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0:
        raise InvalidInputError("cannot evaluate on an empty set")
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "weighted_f1": float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "n": len(y_true),
        "per_class": {
            str(int(c)): {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(s[i]),
            }
            for i, c in enumerate(labels)
        },
    }


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_counts(
    y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray, titles: list[str], examples: int = 2
) -> dict[str, Any]:
    """Confusion matrix as counts (rows: true class, columns: predicted), for interactive charts.

    `examples` titles of listings are kept per non-empty cell (cut to 80 characters), so that a
    reader hovering a cell sees what was confused.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    index = {int(c): i for i, c in enumerate(labels)}
    cells: dict[str, list[str]] = {}
    for t, p, title in zip(y_true, y_pred, titles, strict=True):
        key = f"{int(t)}->{int(p)}"
        if int(t) in index and int(p) in index and len(cells.setdefault(key, [])) < examples:
            cells[key].append(str(title)[:80])
    return {
        "labels": [int(c) for c in labels],
        "counts": cm.astype(int).tolist(),
        "rows": len(y_true),
        "examples": cells,
    }


def plot_confusion_matrix(
    y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray, path: Path, title: str
) -> Path:
    """Row-normalised confusion matrix (recall on the diagonal) as a PNG."""
    plt = _pyplot()
    cm = confusion_matrix(y_true, y_pred, labels=labels).astype(float)
    cm = np.divide(
        cm, cm.sum(axis=1, keepdims=True), out=np.zeros_like(cm), where=cm.sum(axis=1, keepdims=True) > 0
    )
    fig, ax = plt.subplots(figsize=(11, 9.5))
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    names = [f"{int(c)} {category_name(int(c), 'en')[:18]}" for c in labels]
    ax.set_xticks(range(len(labels)), [str(int(c)) for c in labels], rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of true class")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_per_class_f1(per_model: dict[str, dict[str, Any]], path: Path, title: str) -> Path:
    """Grouped horizontal bars: per-class F1 of each model (text, image, fusion)."""
    plt = _pyplot()
    models = list(per_model)
    codes = list(next(iter(per_model.values()))["per_class"])
    fig, ax = plt.subplots(figsize=(9, 10))
    height = 0.8 / max(1, len(models))
    y = np.arange(len(codes))
    for k, name in enumerate(models):
        vals = [per_model[name]["per_class"][c]["f1"] for c in codes]
        ax.barh(
            y + k * height, vals, height=height, label=f"{name} (wF1 {per_model[name]['weighted_f1']:.3f})"
        )
    ax.set_yticks(
        y + height * (len(models) - 1) / 2,
        [f"{c} {category_name(int(c), 'en')[:22]}" for c in codes],
        fontsize=7,
    )
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
