"""Step: batch prediction of a listings file with the champion (or any model URI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from rakuten_mlops.config import Settings
from rakuten_mlops.data.csv_export import safe_for_spreadsheets
from rakuten_mlops.data.loader import load_listings_file
from rakuten_mlops.data.validation import EMPTY_DESIGNATION, validate
from rakuten_mlops.errors import MissingInputError
from rakuten_mlops.lifecycle.registry import CHAMPION, configure_mlflow
from rakuten_mlops.pipelines.progress import NullProgress, Progress


def champion_uri(settings: Settings) -> str:
    return f"models:/{settings.model_name}@{CHAMPION}"


def predict_file(
    input_path: str | Path,
    output_path: str | Path,
    settings: Settings,
    images_dir: str | Path | None = None,
    model_uri: str | None = None,
    batch_size: int = 2000,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Predict every row of an ``X_*_update.csv`` file; rows that cannot be predicted go to a rejects file.

    The output keeps the input's index and adds `prdtypecode`, `probability`, `category` and
    `modalities` (text, or text+image when the row's image was used).
    """
    from mlflow.exceptions import MlflowException

    from rakuten_mlops.models.pyfunc import load_product_classifier

    progress = progress or NullProgress()
    raw = load_listings_file(input_path, images_dir)
    # Only a missing title makes a row unpredictable; a missing image means text-only for that row.
    result = validate(raw.frame, check_images=False, require_labels=False)
    rejects = result.rejects[result.rejects["reason"] == EMPTY_DESIGNATION]
    keep = raw.frame.drop(index=rejects.index)
    configure_mlflow(settings)
    uri = model_uri or champion_uri(settings)
    try:
        model = load_product_classifier(uri)
    except MlflowException as exc:
        raise MissingInputError(
            f"cannot load model {uri}: {exc}. Train one with `rakuten-mlops pipeline run`"
        ) from exc
    advance = progress.task("predicting", total=len(keep))
    parts = []
    for start in range(0, len(keep), batch_size):
        chunk = keep.iloc[start : start + batch_size]
        out = model.predict_frame(chunk)
        out.index = chunk.index
        parts.append(out)
        advance(len(chunk))
    preds = (
        pd.concat(parts)
        if parts
        else pd.DataFrame(columns=["prdtypecode", "probability", "category", "modalities"])
    )
    table = preds[["prdtypecode", "probability", "category", "modalities"]]
    table.index.name = None  # the challenge files' index column has an empty header
    Path(output_path).parent.mkdir(parents=True, exist_ok=True)
    safe_for_spreadsheets(table).to_csv(output_path)
    rejects_path = None
    if len(rejects):
        rejects_path = Path(output_path).with_suffix(".rejects.csv")
        safe_for_spreadsheets(rejects).to_csv(rejects_path)
    return {
        "model_uri": uri,
        "predicted": len(table),
        "rejected": len(rejects),
        "rejects_path": str(rejects_path) if rejects_path else None,
    }
