"""The output contract's columns: the same Python values whichever way they are converted."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rakuten_mlops.categories import CODES
from rakuten_mlops.models.product import prediction_columns


def top_k_one_by_one(proba: np.ndarray, classes: np.ndarray, top_k: int) -> list[list[dict[str, Any]]]:
    """The top k as `prediction_columns` built them before, one element at a time."""
    order = np.argsort(-proba, axis=1)[:, : min(top_k, proba.shape[1])]
    return [
        [{"code": int(classes[j]), "probability": float(row[j])} for j in idx]
        for row, idx in zip(proba, order, strict=True)
    ]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("rows", "top_k"), [(0, 5), (1, 1), (7, 5), (3, 40)])
def test_the_top_k_are_the_same_python_ints_and_floats(dtype: type, rows: int, top_k: int) -> None:
    rng = np.random.default_rng(rows + top_k)
    classes = np.array(list(CODES))
    proba = rng.dirichlet(np.ones(len(classes)), size=rows).astype(dtype)
    if rows:
        proba[0, :4] = proba[0, 4]  # ties: the same order as before (the same argsort)
    got = prediction_columns(proba, classes, np.zeros(rows, dtype=bool), top_k)["top_k"]
    expected = top_k_one_by_one(proba, classes, top_k)
    assert got == expected
    assert all(type(t["code"]) is int and type(t["probability"]) is float for row in got for t in row)
