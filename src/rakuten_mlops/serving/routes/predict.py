"""Prediction and feedback routes."""

from __future__ import annotations

import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from rakuten_mlops.appdb import record_id, utcnow
from rakuten_mlops.categories import category_name, is_known_code
from rakuten_mlops.serving.deps import (
    BEARER_SECURITY,
    HolderDep,
    PredictionLogDep,
    PredictorUser,
    SettingsDep,
    StateDep,
    get_state_now,
    user_with_role,
)
from rakuten_mlops.serving.errors import error_responses
from rakuten_mlops.serving.explanations import NotExplainable, explain_prediction
from rakuten_mlops.serving.model_holder import LoadedModel
from rakuten_mlops.serving.prediction_log import AlreadyLabelled
from rakuten_mlops.serving.product_input import (
    PREDICT_REQUEST_BODY,
    CheckedProduct,
    check_product,
    read_product,
)
from rakuten_mlops.serving.request_limits import LimitExceeded, check_batch_size
from rakuten_mlops.serving.schemas import BatchIn, BatchOut, FeedbackIn, FeedbackOut, PredictionOut

router = APIRouter(tags=["predict"])


def _name(code: int) -> str:
    return category_name(code) if is_known_code(code) else str(code)


def _json(body: dict[str, Any]) -> Response:
    """`body` encoded once, as is: the routes build it with exactly the response model's fields and
    types (tests check it against the model), so FastAPI's second validation pass is skipped."""
    return Response(orjson.dumps(body), media_type="application/json")


def _record(
    state: StateDep, user: str, model: LoadedModel, product: CheckedProduct, out: dict[str, Any], ms: float
) -> dict[str, Any]:
    """Count, log and shape one prediction (a dict: the response model validates it once)."""
    prediction_id = record_id()  # time-ordered: the log's index takes inserts at its end
    state.metrics.observe_prediction(out["prdtypecode"], out["probability"])
    logged = {
        "id": prediction_id, "created_at": utcnow(), "username": user,
        "model_name": model.name, "model_version": model.version,
        "designation": product.designation, "description": product.description,
        "image_sha256": product.image.sha256 if product.image else None,
        "prdtypecode": out["prdtypecode"], "probability": out["probability"],
        "top_k": out["top_k"], "modalities": out["modalities"], "latency_ms": ms,
    }  # fmt: skip
    # The image goes along only for a review thumbnail, made by the log's writer thread.
    state.prediction_log.add("predictions", logged, product.image.data if product.image else None)
    state.shadow.offer(product.model_row(), logged)  # the challenger, off the request path
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


class QuotaSpent(LimitExceeded):
    def __init__(self, retry_after: int, limit: int) -> None:
        super().__init__(
            f"predict quota of {limit} listings per minute is spent; retry in {retry_after} s",
            429,
            {"Retry-After": str(retry_after)},
        )


def _spend_quota(state: StateDep, user: str, cost: int) -> None:
    wait = state.quota.take(user, cost)
    if wait:
        raise QuotaSpent(wait, state.quota.limit)


async def read_batch(request: Request, settings: SettingsDep) -> BatchIn:
    """The batch body: its size is checked before any item is validated."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("application/json", ""):
        raise LimitExceeded(f"unsupported content type {content_type!r}; send application/json", 415)
    try:
        data = orjson.loads(await request.body())
    except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LimitExceeded(f"body is not valid JSON: {str(exc)[:120]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise LimitExceeded('send a JSON object {"items": [{"designation": ...}, ...]}')
    check_batch_size(settings, len(data["items"]))
    try:
        return BatchIn.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)  # bounded: at most the batch size
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


BATCH_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BatchIn"}}},
    }
}


@router.post(
    "/predict",
    response_model=PredictionOut,
    # Without "explain" the response has exactly the fields it always had (no "explanation": null).
    response_model_exclude_unset=True,
    responses=error_responses(401, 403, 413, 415, 422, 429, 501, 503),
    openapi_extra={**PREDICT_REQUEST_BODY, **BEARER_SECURITY},
    summary="Predict the product type of one listing (JSON with base64 image, or multipart upload)",
)
async def predict(request: Request) -> Response:
    # The predictor (token, role), their quota spent, then the listing read: what dependencies
    # would give, in the same order, called directly; FastAPI solving them (13 nested solves a
    # request) cost more than all the rest of the route. It takes only the request and answers
    # a Response: `RouteFastPath` calls it past the router (serving/fast_path.py).
    state = get_state_now(request)
    user = await user_with_role(request, "predictor")
    _spend_quota(state, user.username, 1)
    product = await read_product(request, state.settings)
    start = time.perf_counter()
    model, outputs = await state.holder.predict([product.model_row()])
    out = _record(state, user.username, model, product, outputs[0], (time.perf_counter() - start) * 1000)
    if product.explain:  # rare: validated by the response model, as FastAPI would
        out["explanation"] = await _explanation(model, product, out["prdtypecode"])
        answer = PredictionOut.model_validate(out)
        return _json(answer.model_dump(mode="json", exclude_unset=True, by_alias=True))
    return _json(out)


async def _explanation(model: LoadedModel, product: CheckedProduct, code: int) -> dict[str, Any]:
    try:
        return await explain_prediction(model, product, code)
    except NotExplainable as exc:
        raise HTTPException(501, f"{exc}; ask again without explain") from None


@router.post(
    "/predict/batch",
    response_model=BatchOut,
    responses=error_responses(401, 403, 413, 415, 422, 429, 503),
    openapi_extra=BATCH_REQUEST_BODY,
    summary="Predict several listings in one request",
)
async def predict_batch(
    user: PredictorUser,
    body: Annotated[BatchIn, Depends(read_batch)],
    settings: SettingsDep,
    holder: HolderDep,
    state: StateDep,
) -> Any:
    _spend_quota(state, user.username, len(body.items))
    start = time.perf_counter()
    products = [
        await check_product(settings, item, where=f"items[{i}].") for i, item in enumerate(body.items)
    ]
    model, outputs = await holder.predict([p.model_row() for p in products])
    ms = (time.perf_counter() - start) * 1000 / len(products)
    return _json(
        {
            "predictions": [
                _record(state, user.username, model, p, out, ms)
                for p, out in zip(products, outputs, strict=True)
            ]
        }
    )


@router.post(
    "/feedback",
    response_model=FeedbackOut,
    status_code=202,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Report the true product type of one of your predictions (admins: correct any label)",
)
async def feedback(
    user: PredictorUser, body: FeedbackIn, plog: PredictionLogDep, state: StateDep
) -> FeedbackOut:
    prediction_id = str(body.prediction_id)
    admin = user.has("admin")
    owner = await run_in_threadpool(plog.owner_of, prediction_id)  # database down: 503
    if owner is None or (owner != user.username and not admin):
        # The same answer whether the prediction is someone else's or does not exist.
        raise HTTPException(404, f"no prediction of yours with id {prediction_id}")
    feedback_id = record_id()
    row = {
        "id": feedback_id, "created_at": utcnow(), "prediction_id": prediction_id,
        "true_code": body.true_code, "username": user.username,
    }  # fmt: skip

    def _store(correction: bool) -> None:
        plog.add_feedback(row, correction)

    try:
        await run_in_threadpool(_store, False)
    except AlreadyLabelled:
        if not admin:
            raise HTTPException(
                409, f"prediction {prediction_id} already has a label; an admin may correct it"
            ) from None
        await run_in_threadpool(_store, True)  # kept next to the first label, newest wins
    state.metrics.feedback.inc()
    return FeedbackOut(feedback_id=feedback_id, prediction_id=body.prediction_id, true_code=body.true_code)
