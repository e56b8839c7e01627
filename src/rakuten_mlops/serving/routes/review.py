"""Review queue routes (admin): low-confidence predictions waiting for a label, and their images.

Labels go to `POST /v1/feedback` (admins may label any prediction), like every other label.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from rakuten_mlops.serving.deps import AdminUser, StateDep
from rakuten_mlops.serving.errors import error_responses
from rakuten_mlops.serving.review import NoReviewImage, review_image, review_queue
from rakuten_mlops.serving.rollout_schemas import ReviewItem, ReviewOut

router = APIRouter(prefix="/review", tags=["review"])


@router.get(
    "",
    response_model=ReviewOut,
    responses=error_responses(401, 403, 422, 503),
    summary="Unlabelled predictions below the confidence threshold, newest first (admin)",
)
async def review(
    _: AdminUser,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    days: Annotated[float, Query(gt=0, le=366)] = 30.0,
) -> ReviewOut:
    threshold = state.metrics.low_confidence_below  # monitoring.review.confidence_below
    try:
        total, items = await run_in_threadpool(review_queue, state.engine, threshold, days, limit, offset)
    except SQLAlchemyError as exc:
        raise HTTPException(503, f"the app database does not answer ({exc.__class__.__name__})") from None
    return ReviewOut(
        threshold=threshold,
        window_days=days,
        total=total,
        items=[ReviewItem(**item) for item in items],
        images_kept=True,
    )


@router.get(
    "/{prediction_id}/image",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "the thumbnail (longest side 256 px)"},
        **error_responses(401, 403, 404, 422, 503),
    },
    summary="The thumbnail of the image sent with a listed prediction (admin)",
)
async def review_image_jpeg(_: AdminUser, state: StateDep, prediction_id: uuid.UUID) -> Response:
    try:
        jpeg = await run_in_threadpool(review_image, state.engine, str(prediction_id))
    except NoReviewImage as exc:
        raise HTTPException(404, str(exc)) from None
    except SQLAlchemyError as exc:
        raise HTTPException(503, f"the app database does not answer ({exc.__class__.__name__})") from None
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})
