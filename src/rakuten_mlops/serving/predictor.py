"""The model contract on the serving side: rows in, one `predict` call, plain dicts out."""

from __future__ import annotations

from typing import Any

import pandas as pd
import sklearn

from rakuten_mlops.categories import category_name, is_known_code
from rakuten_mlops.features.text import is_missing
from rakuten_mlops.models.product import ProductClassifier
from rakuten_mlops.models.pyfunc import ProductClassifierModel, as_image_bytes


def _top_k(value: Any) -> list[dict[str, Any]]:
    items = list(value) if value is not None else []
    return [{"code": int(i["code"]), "probability": float(i["probability"])} for i in items]


def _category(code: int, given: Any) -> str:
    if isinstance(given, str) and given:
        return given
    return category_name(code) if is_known_code(code) else str(code)


def _as_list(column: Any) -> list[Any]:
    return column.tolist() if hasattr(column, "tolist") else list(column)


def own_classifier(model: Any) -> ProductClassifier | None:
    """The `ProductClassifier` inside a pyfunc model of this project's wrapper, else None."""
    unwrap = getattr(model, "unwrap_python_model", None)
    try:
        python_model = unwrap() if unwrap is not None else None
    except Exception:  # not a PythonModel flavour: served through MLflow's predict
        return None
    inner = getattr(python_model, "model", None) if isinstance(python_model, ProductClassifierModel) else None
    return inner if isinstance(inner, ProductClassifier) else None


def predict_columns(model: Any, rows: list[dict[str, Any]]) -> Any:
    """The model's output columns for `rows` (designation, description, image bytes or None).

    This project's own models predict straight from the rows (`ProductClassifier.predict_listings`:
    the same numbers, no DataFrame in or out); any other pyfunc model through MLflow's `predict`.
    """
    classifier = own_classifier(model)
    if classifier is not None:
        # What `ProductClassifierModel.predict` makes of these columns (`normalise_input`).
        designations = ["" if is_missing(r["designation"]) else str(r["designation"]) for r in rows]
        descriptions = [str(r.get("description") or "") for r in rows]
        images = [as_image_bytes(r.get("image")) for r in rows]
        return classifier.predict_listings(designations, descriptions, images)
    frame = pd.DataFrame(
        {
            "designation": [r["designation"] for r in rows],
            "description": [r.get("description") or "" for r in rows],
            "image": pd.Series([r.get("image") for r in rows], dtype=object),
        }
    )
    out = model.predict(frame)
    if not isinstance(out, pd.DataFrame):
        raise RuntimeError(f"the model returned {type(out).__name__}, not a DataFrame")
    return out


def predict_rows(model: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One predict call on `rows` (designation, description, image bytes or None)."""
    # scikit-learn re-checks its own functions' arguments on every call (a few % of a small
    # batch's time); the model's arguments were checked when it was trained. Inputs are still
    # validated (finite values, shapes). Thread-local: only this predict call is affected.
    with sklearn.config_context(skip_parameter_validation=True):
        out = predict_columns(model, rows)
    n = len(out["prdtypecode"])
    if n != len(rows):
        raise RuntimeError(f"the model returned {n} rows for {len(rows)} inputs")
    codes = [int(c) for c in _as_list(out["prdtypecode"])]
    categories = _as_list(out["category"]) if "category" in out else [None] * len(rows)
    probabilities = [float(p) for p in _as_list(out["probability"])]
    top_ks = _as_list(out["top_k"]) if "top_k" in out else [None] * len(rows)
    modalities = _as_list(out["modalities"]) if "modalities" in out else [None] * len(rows)
    return [
        {
            "prdtypecode": code,
            "category": _category(code, cat),
            "probability": prob,
            "top_k": _top_k(top) or [{"code": code, "probability": prob}],
            "modalities": mod or ("text+image" if row.get("image") is not None else "text"),
        }
        for code, cat, prob, top, mod, row in zip(
            codes, categories, probabilities, top_ks, modalities, rows, strict=True
        )
    ]
