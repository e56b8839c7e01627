"""The model contract on the serving side: rows in, DataFrame to `predict`, plain dicts out."""

from __future__ import annotations

from typing import Any

import pandas as pd
import sklearn

from rakuten_mlops.categories import category_name, is_known_code


def _top_k(value: Any) -> list[dict[str, Any]]:
    items = list(value) if value is not None else []
    return [{"code": int(i["code"]), "probability": float(i["probability"])} for i in items]


def _category(code: int, given: Any) -> str:
    if isinstance(given, str) and given:
        return given
    return category_name(code) if is_known_code(code) else str(code)


def predict_rows(model: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One `model.predict` call on `rows` (designation, description, image bytes or None)."""
    frame = pd.DataFrame(
        {
            "designation": [r["designation"] for r in rows],
            "description": [r.get("description") or "" for r in rows],
            "image": pd.Series([r.get("image") for r in rows], dtype=object),
        }
    )
    # scikit-learn re-checks its own functions' arguments on every call (a few % of a small
    # batch's time); the model's arguments were checked when it was trained. Inputs are still
    # validated (finite values, shapes). Thread-local: only this predict call is affected.
    with sklearn.config_context(skip_parameter_validation=True):
        out = model.predict(frame)
    if not isinstance(out, pd.DataFrame) or len(out) != len(rows):
        raise RuntimeError(
            f"the model returned {type(out).__name__} of {len(out)} rows for {len(rows)} inputs"
        )
    codes = [int(c) for c in out["prdtypecode"].tolist()]
    categories = out["category"].tolist() if "category" in out else [None] * len(rows)
    probabilities = [float(p) for p in out["probability"].tolist()]
    top_ks = out["top_k"].tolist() if "top_k" in out else [None] * len(rows)
    modalities = out["modalities"].tolist() if "modalities" in out else [None] * len(rows)
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
