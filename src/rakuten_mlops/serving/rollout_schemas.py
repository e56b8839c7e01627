"""Bodies of the safe-rollout routes: the challenger in shadow, its comparison, the review queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ChallengeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=9, pattern=r"^[0-9]+$", description="registered version")


class ChallengerOut(BaseModel):
    challenger: str | None = Field(description="the version holding the challenger alias now")
    previous: str | None = Field(description="the version that held it before")
    scoring: str | None = Field(description="the version this API instance scores in shadow after reloading")


class ShadowOut(BaseModel):
    computed_at: str
    window_days: float
    champion_version: str | None
    challenger_version: str | None
    comparisons: list[dict[str, Any]] = Field(
        description="per (challenger, champion) version pair: predictions, agreement, mean confidence of "
        "both, class mix of both, feedback, live weighted F1 of both on the same listings"
    )
    error: str | None = Field(description="why the prediction log could not be read, if it could not")
    rule: dict[str, Any] = Field(description="the live promotion rule's thresholds (params.yaml `promotion`)")
    serving: dict[str, Any] = Field(description="what this API instance scores in shadow now")
    decisions: list[dict[str, Any]] = Field(description="the latest promotions from shadow, newest first")


class ShadowDecisionOut(BaseModel):
    version: str
    champion_before: str | None
    promote: bool
    reasons: list[str]
    comparison: dict[str, Any] | None
    serving: str | None = Field(description="the champion this API instance serves after reloading")


class ReviewItem(BaseModel):
    prediction_id: str
    created_at: datetime
    username: str
    model_version: str
    designation: str
    description: str
    prdtypecode: int
    category: str
    probability: float
    top_k: list[dict[str, Any]]
    image_sha256: str | None = Field(description="SHA-256 of the image sent with the listing, if any")
    has_image: bool = Field(
        description="a thumbnail of the listing's image is kept: GET /v1/review/{prediction_id}/image"
    )


class ReviewOut(BaseModel):
    threshold: float = Field(description="predictions less confident than this are listed")
    window_days: float
    total: int = Field(description="unlabelled low-confidence predictions in the window")
    items: list[ReviewItem] = Field(description="newest first")
    images_kept: bool = Field(
        description="true: a JPEG thumbnail (longest side 256 px) of each listed image is kept (has_image)"
    )
