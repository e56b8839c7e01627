"""`GET /v1/limits`: the request limits this API enforces, so that clients state them (not guess them)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from rakuten_mlops.serving.deps import CurrentUser, StateDep
from rakuten_mlops.serving.errors import error_responses
from rakuten_mlops.serving.images import ALLOWED_FORMATS

router = APIRouter(tags=["model"])


class LimitsOut(BaseModel):
    max_image_bytes: int = Field(description="largest image accepted, in bytes (413 beyond)")
    max_image_pixels: int
    image_types: list[str]
    max_batch_size: int = Field(description="listings per POST /v1/predict/batch")
    max_request_bytes: int = Field(description="largest request body")
    max_designation_chars: int
    max_description_chars: int
    review_below: float = Field(description="predictions less confident than this go to the review queue")


@router.get(
    "/limits",
    response_model=LimitsOut,
    responses=error_responses(401, 403),
    summary="The limits of the prediction routes and the review queue's confidence threshold",
)
async def limits(_: CurrentUser, state: StateDep) -> LimitsOut:
    s = state.settings
    return LimitsOut(
        max_image_bytes=s.max_image_bytes,
        max_image_pixels=s.max_image_pixels,
        image_types=[f.lower() for f in ALLOWED_FORMATS],
        max_batch_size=s.max_batch_size,
        max_request_bytes=s.max_request_bytes,
        max_designation_chars=s.max_designation_chars,
        max_description_chars=s.max_description_chars,
        review_below=state.metrics.low_confidence_below,
    )
