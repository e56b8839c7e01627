"""The data monitoring judges: listings to compare, the champion's codes for them, new labelled rows.

`load_source` reads listings from any accepted source (a challenge-layout folder, a parquet or
CSV file, a DataFrame, or ``"predictions[:N]"`` for the last N predictions the app logged), and
`current_batch` the batch the default streams folder ingested last. `champion_predictions`
(through `load_champion` and `predict`) gives the champion model's codes for those rows, and
`count_new_labelled_rows` counts the pool rows the champion was not trained on, and `image_bytes`
reads each listing's image for the image statistics of `rakuten_mlops.monitoring.features`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeAlias

import pandas as pd

from rakuten_mlops.config import Params, Settings
from rakuten_mlops.data.schema import IMAGE_PATH, LABEL, X_TEST, X_TRAIN
from rakuten_mlops.errors import MissingInputError
from rakuten_mlops.features.images import read_image_bytes
from rakuten_mlops.pipelines.monitoring_reference import PART, champion_version, load_reference

Source: TypeAlias = str | Path | pd.DataFrame | None
PREDICTIONS = "predictions"  # `current="predictions"` (or "predictions:500"): the last logged predictions


def image_bytes(listings: pd.DataFrame) -> Iterator[bytes | None] | None:
    """Each row's image file, read one at a time (None where it is missing or unreadable); None
    when the listings have no `image_path` column or no path at all."""
    if IMAGE_PATH not in listings.columns or not listings[IMAGE_PATH].notna().any():
        return None
    return (read_image_bytes(path) for path in listings[IMAGE_PATH])


def current_batch(settings: Settings) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Listings of the batch the default streams folder ingested last, labelled with its name."""
    from rakuten_mlops.simulation.replay.steps import current_batch_dir, default_streams_dir

    folder = current_batch_dir(default_streams_dir(settings))
    rows, info = load_source(folder, settings)
    return rows, {**info, "label": folder.name}


def load_source(
    source: Source, settings: Settings, window: int = 1000
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Listings (designation, description, [image_path], [prdtypecode]) from any accepted source."""
    from rakuten_mlops.data.loader import load_dataset, load_listings_file

    if isinstance(source, pd.DataFrame):
        return source, {"source": "DataFrame", "rows": len(source), "label": "frame"}
    text = str(source)
    if text == PREDICTIONS or text.startswith(PREDICTIONS + ":"):
        from rakuten_mlops.pipelines.monitoring_live import read_recent_predictions

        n = int(text.split(":", 1)[1]) if ":" in text else window
        rows = read_recent_predictions(settings.app_database_url, n)
        if rows.empty:
            raise MissingInputError("no logged predictions in the app database yet")
        return rows, {
            "source": f"last {len(rows)} logged predictions",
            "rows": len(rows),
            "label": "predictions",
        }
    path = Path(text)
    if path.is_dir():
        split = "train" if (path / X_TRAIN).is_file() or not (path / X_TEST).is_file() else "test"
        frame = load_dataset(path, split=split).frame
        if LABEL in frame.columns:
            frame[LABEL] = frame[LABEL].where(frame[LABEL].astype(str).str.strip() != "")
    elif path.suffix == ".parquet" and path.is_file():
        frame = pd.read_parquet(path)
    elif path.suffix == ".csv" and path.is_file():
        frame = load_listings_file(path).frame
    else:
        raise MissingInputError(f"{path}: expected a data folder, a .parquet or an X_*.csv file")
    return frame, {
        "source": str(path.resolve()),
        "rows": len(frame),
        "label": path.stem if path.is_file() else path.name,
    }


def load_champion(settings: Settings) -> tuple[Any, str | None]:
    """(the champion model, None), or (None, why there is none to predict with)."""
    if champion_version(settings) is None:
        return None, "no champion model to predict with"
    from rakuten_mlops.lifecycle.registry import configure_mlflow
    from rakuten_mlops.models.pyfunc import load_product_classifier
    from rakuten_mlops.pipelines.predict import champion_uri

    try:
        configure_mlflow(settings)
        return load_product_classifier(champion_uri(settings)), None
    except Exception as exc:  # a broken artifact must not stop the data drift report
        return None, f"champion model cannot be loaded: {exc}"


def predict(model: Any, rows: pd.DataFrame, settings: Settings) -> list[int]:
    """Product type codes of `model` for listings `rows` (image embeddings cached in the cache dir)."""
    frame = rows.copy()
    frame["designation"] = frame["designation"].fillna("").astype(str)
    frame["description"] = frame.get("description", pd.Series("", index=frame.index)).fillna("").astype(str)
    kwargs: dict[str, Any] = {}
    if getattr(model, "uses_images", False) and model.embedder is not None:
        from rakuten_mlops.features.images import EmbeddingCache

        kwargs["cache"] = EmbeddingCache.for_embedder(settings.embeddings_dir, model.embedder)
    return [int(c) for c in model.predict_frame(frame, **kwargs)["prdtypecode"]]


def champion_predictions(
    ref_rows: pd.DataFrame, cur_rows: pd.DataFrame, settings: Settings, enabled: bool
) -> tuple[list[Any] | None, list[Any] | None, str | None]:
    """The champion's codes for the reference and current rows, and why they are missing if they are.

    Reference rows the champion was trained on (`part` is ``train``) get None; current rows that
    carry a logged `predicted_code` keep it. Returns (reference codes, current codes, why skipped).
    """
    predicted_ref, predicted_cur = None, None
    skipped = None if enabled else "disabled (monitoring.drift.predictions: false)"
    if "predicted_code" in cur_rows.columns:
        predicted_cur = cur_rows["predicted_code"].tolist()
    if enabled:
        model, why = load_champion(settings)
        if model is None:
            skipped = why
        else:
            held_out = (
                ref_rows[PART] != "train" if PART in ref_rows.columns else pd.Series(True, ref_rows.index)
            )
            codes = pd.Series(None, index=ref_rows.index, dtype=object)
            if held_out.any():
                codes[held_out] = predict(model, ref_rows[held_out], settings)
            predicted_ref = codes.tolist()
            if predicted_cur is None:
                predicted_cur = predict(model, cur_rows, settings)
    return predicted_ref, predicted_cur, skipped


def count_new_labelled_rows(
    settings: Settings, params: Params, streams_dir: str | Path | None
) -> tuple[int, int | None, dict[str, Any]]:
    """(valid pool rows the champion's run did not use, rows that run used, where the pool stands)."""
    from rakuten_mlops.data.loader import load_dataset
    from rakuten_mlops.data.validation import validate
    from rakuten_mlops.simulation.replay.steps import default_streams_dir, read_state

    root = Path(streams_dir) if streams_dir is not None else default_streams_dir(settings)
    if not (root / "state.json").is_file():
        return 0, None, {"streams_dir": None, "note": f"no streams folder at {root}"}
    state = read_state(root)
    pool = validate(load_dataset(root / "pool").frame, check_images=False).clean
    try:
        ref = load_reference(settings, params.monitoring.drift.reference_max_rows, params.seed)
        known, training_rows = set(ref.productids.astype("int64")), len(ref.productids)
    except FileNotFoundError:
        known, training_rows = set(), None
    new = int((~pool["productid"].astype("int64").isin(known)).sum())
    data = {
        "streams_dir": str(root),
        "current_batch": state["current"],
        "pool_rows": len(pool),
        "data_hash": state["versions"][-1]["data_hash"],
    }
    return new, training_rows, data
