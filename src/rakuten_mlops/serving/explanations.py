"""Explanations of served predictions, computed only when a request asks for them.

The served model is the registered pyfunc; its `ProductClassifier` (the same object the pyfunc
predicts with) is explained by :func:`rakuten_mlops.models.explain.explain_listing` off the event
loop, for the class the API answered.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from starlette.concurrency import run_in_threadpool

from rakuten_mlops.models.explain import ExplanationUnavailable, explain_listing
from rakuten_mlops.models.product import ProductClassifier
from rakuten_mlops.serving.model_holder import LoadedModel
from rakuten_mlops.serving.product_input import CheckedProduct


class NotExplainable(RuntimeError):
    """The served model is not one this project can explain (not a `ProductClassifier`)."""


def classifier_of(loaded: LoadedModel) -> ProductClassifier:
    """The `ProductClassifier` inside a loaded pyfunc model."""
    try:
        inner = loaded.model.unwrap_python_model().model
    except AttributeError:
        inner = None
    if not isinstance(inner, ProductClassifier):
        raise NotExplainable(f"model version {loaded.version} cannot explain its predictions")
    return inner


def _explain(loaded: LoadedModel, product: CheckedProduct, code: int) -> dict[str, Any]:
    frame = pd.DataFrame(
        {
            "designation": [product.designation],
            "description": [product.description],
            "image": pd.Series([product.image.data if product.image else None], dtype=object),
        }
    )
    try:
        return explain_listing(classifier_of(loaded), frame, code)
    except ExplanationUnavailable as exc:
        raise NotExplainable(f"model version {loaded.version}: {exc}") from None


async def explain_prediction(loaded: LoadedModel, product: CheckedProduct, code: int) -> dict[str, Any]:
    """Terms and modality shares behind `code` for `product`, by the model that answered."""
    return await run_in_threadpool(_explain, loaded, product, code)
