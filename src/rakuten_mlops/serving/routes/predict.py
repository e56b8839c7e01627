"""Prediction and feedback routes."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool

from rakuten_mlops.appdb import utcnow
from rakuten_mlops.categories import category_name, is_known_code
from rakuten_mlops.serving.deps import HolderDep, PredictionLogDep, PredictorUser, SettingsDep, StateDep
from rakuten_mlops.serving.errors import error_responses
from rakuten_mlops.serving.model_holder import LoadedModel
from rakuten_mlops.serving.product_input import (
    PREDICT_REQUEST_BODY,
    CheckedProduct,
    ProductDep,
    check_product,
)
from rakuten_mlops.serving.request_limits import check_batch_size
from rakuten_mlops.serving.schemas import BatchIn, BatchOut, FeedbackIn, FeedbackOut, PredictionOut

router = APIRouter(tags=["predict"])
PREDICT_ERRORS = error_responses(401, 403, 413, 415, 422, 503)


def _name(code: int) -> str:
    return category_name(code) if is_known_code(code) else str(code)


def _record(
    state: StateDep, user: str, model: LoadedModel, product: CheckedProduct, out: dict[str, Any], ms: float
) -> dict[str, Any]:
    """Count, log and shape one prediction (a dict: the response model validates it once)."""
    prediction_id = str(uuid.uuid4())
    state.metrics.observe_prediction(out["prdtypecode"], out["probability"])
    state.prediction_log.add(
        "predictions",
        {
            "id": prediction_id, "created_at": utcnow(), "username": user,
            "model_name": model.name, "model_version": model.version,
            "designation": product.designation, "description": product.description,
            "image_sha256": product.image.sha256 if product.image else None,
            "prdtypecode": out["prdtypecode"], "probability": out["probability"],
            "top_k": out["top_k"], "modalities": out["modalities"], "latency_ms": ms,
        },
    )  # fmt: skip
    return {
        "prediction_id": prediction_id,
        "prdtypecode": out["prdtypecode"],
        "category": out["category"],
        "probability": out["probability"],
        "top_k": [
            {"code": t["code"], "category": _name(t["code"]), "probability": t["probability"]}
            for t in out["top_k"]
        ],
        "modalities": out["modalities"],
        "model_name": model.name,
        "model_version": model.version,
    }


@router.post(
    "/predict",
    response_model=PredictionOut,
    responses=PREDICT_ERRORS,
    openapi_extra=PREDICT_REQUEST_BODY,
    summary="Predict the product type of one listing (JSON with base64 image, or multipart upload)",
)
async def predict(user: PredictorUser, product: ProductDep, holder: HolderDep, state: StateDep) -> Any:
    start = time.perf_counter()
    model, outputs = await holder.predict([product.model_row()])
    return _record(state, user.username, model, product, outputs[0], (time.perf_counter() - start) * 1000)


@router.post(
    "/predict/batch",
    response_model=BatchOut,
    responses=PREDICT_ERRORS,
    summary="Predict several listings in one request",
)
async def predict_batch(
    user: PredictorUser, body: BatchIn, settings: SettingsDep, holder: HolderDep, state: StateDep
) -> Any:
    check_batch_size(settings, len(body.items))
    start = time.perf_counter()
    products = [
        await check_product(settings, item, where=f"items[{i}].") for i, item in enumerate(body.items)
    ]
    model, outputs = await holder.predict([p.model_row() for p in products])
    ms = (time.perf_counter() - start) * 1000 / len(products)
    return {
        "predictions": [
            _record(state, user.username, model, p, out, ms) for p, out in zip(products, outputs, strict=True)
        ]
    }


@router.post(
    "/feedback",
    response_model=FeedbackOut,
    status_code=202,
    responses=error_responses(401, 403, 404, 422),
    summary="Report the true product type of a served prediction",
)
async def feedback(
    user: PredictorUser, body: FeedbackIn, plog: PredictionLogDep, state: StateDep
) -> FeedbackOut:
    prediction_id = str(body.prediction_id)
    if not plog.was_recently_logged(prediction_id):
        exists = await run_in_threadpool(plog.prediction_exists, prediction_id)
        if exists is False:  # None: database down, accept and let the writer store it later
            raise HTTPException(404, f"no prediction with id {prediction_id}")
    feedback_id = uuid.uuid4()
    plog.add(
        "feedback",
        {
            "id": str(feedback_id), "created_at": utcnow(), "prediction_id": prediction_id,
            "true_code": body.true_code, "username": user.username,
        },
    )  # fmt: skip
    state.metrics.feedback.inc()
    return FeedbackOut(feedback_id=feedback_id, prediction_id=body.prediction_id, true_code=body.true_code)
