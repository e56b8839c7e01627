"""Request and response bodies of the API (unknown fields are rejected everywhere)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rakuten_mlops.categories import CODES


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorOut(BaseModel):
    """Every error body: a message saying what to fix, plus field errors for validation failures."""

    detail: str
    errors: list[FieldError] | None = None


class ProductIn(_In):
    """One listing. Length limits are server settings (defaults: 1,000 and 20,000 characters)."""

    designation: str = Field(min_length=1, description="product title (French, sometimes other languages)")
    description: str | None = Field("", description="product description; HTML is fine")
    image_base64: str | None = Field(
        None, description="JPEG, PNG or WebP bytes, base64-encoded (a data: URL prefix is accepted)"
    )


class PredictIn(ProductIn):
    """One listing to predict; `explain` asks for the words and modalities behind the answer."""

    explain: bool = Field(
        False,
        description="also return the words that pushed the predicted class most and each modality's share",
    )


class BatchIn(_In):
    """Several listings at once (at most the server's batch size, default 64)."""

    items: list[ProductIn] = Field(min_length=1)


class TopKItem(BaseModel):
    code: int
    category: str
    probability: float


class TermOut(BaseModel):
    term: str = Field(description="a word or word pair of the cleaned text (lowercase, accents stripped)")
    weight: float = Field(description="its contribution to the text SVM's score for the predicted class")


class ModalityShareOut(BaseModel):
    modality: Literal["text_ngrams", "text_embeddings", "image"]
    share: float = Field(description="share of the predicted class's logit terms (all shares sum to 1)")
    supports: bool = Field(description="whether it pushed towards the predicted class")


class ExplanationOut(BaseModel):
    """Why the listing got its class (see the README's Explanations section for the method)."""

    code: int
    text_model: str
    terms_from: str = Field(description="the linear member whose coefficients give the terms")
    terms: list[TermOut]
    modalities: list[ModalityShareOut]


class PredictionOut(BaseModel):
    prediction_id: UUID = Field(description="quote it in POST /v1/feedback")
    prdtypecode: int
    category: str = Field(description="French name of the product type")
    probability: float
    top_k: list[TopKItem]
    modalities: Literal["text", "text+image"]
    model_name: str
    model_version: str
    explanation: ExplanationOut | None = Field(
        None, description='only with "explain": true (the key is absent otherwise)'
    )


class BatchOut(BaseModel):
    predictions: list[PredictionOut]


class FeedbackIn(_In):
    prediction_id: UUID
    true_code: int = Field(description="the product type the listing really has")

    @field_validator("true_code")
    @classmethod
    def _known_code(cls, value: int) -> int:
        if value not in CODES:
            raise ValueError(f"unknown product type code; use one of {', '.join(map(str, CODES))}")
        return value


class FeedbackOut(BaseModel):
    feedback_id: UUID
    prediction_id: UUID
    true_code: int
    status: Literal["accepted"] = "accepted"


class ModelOut(BaseModel):
    name: str
    alias: str
    version: str | None
    run_id: str | None
    source: str | None = Field(description="registry, or local-copy when the registry was unreachable")
    loaded_at: datetime | None
    last_check_at: datetime | None
    last_error: str | None
    ready: bool


class ReloadOut(BaseModel):
    changed: bool
    version: str | None
    message: str


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds")


class UserCreate(_In):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=12, max_length=1024)
    role: Literal["predictor", "admin"] = "predictor"


class UserPublic(BaseModel):
    username: str
    role: str
    disabled: bool
    created_at: datetime


class Health(BaseModel):
    status: str


class Me(BaseModel):
    username: str
    roles: list[str]


class PromoteIn(_In):
    version: str = Field(pattern=r"^[0-9]{1,9}$", description="registered version number to make champion")
    reason: str = Field("", max_length=500, description="why (kept in the promotion history)")


class RollbackIn(_In):
    reason: str = Field("", max_length=500, description="why (kept in the promotion history)")


class ChampionChangeOut(BaseModel):
    champion: str
    previous: str | None
    serving: str | None = Field(description="version the API serves after the change")
