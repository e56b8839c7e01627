"""Reads one listing from a JSON body (image as base64) or a multipart form (image as a file)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from rakuten_mlops.config import Settings
from rakuten_mlops.serving.deps import SettingsDep
from rakuten_mlops.serving.images import CheckedImage
from rakuten_mlops.serving.request_limits import (
    LimitExceeded,
    check_texts,
    image_from_base64,
    image_from_bytes,
)
from rakuten_mlops.serving.schemas import PredictIn, ProductIn

FORM_FIELDS = ("designation", "description", "image", "explain")
MULTIPART_SCHEMA = {
    "type": "object",
    "required": ["designation"],
    "additionalProperties": False,
    "properties": {
        "designation": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "image": {"type": "string", "format": "binary", "description": "JPEG, PNG or WebP file"},
        "explain": {
            "type": "boolean",
            "description": "also return the words and modalities behind the answer",
        },
    },
}
PREDICT_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/PredictIn"}},
            "multipart/form-data": {"schema": MULTIPART_SCHEMA},
        },
    }
}


@dataclass(frozen=True)
class CheckedProduct:
    """A listing that passed every limit, ready for the model."""

    designation: str
    description: str
    image: CheckedImage | None
    explain: bool = False  # explanations were asked for (single predictions only)

    def model_row(self) -> dict[str, Any]:
        return {
            "designation": self.designation,
            "description": self.description,
            "image": self.image.data if self.image else None,
        }


def _validated(data: Any, from_json: bool) -> PredictIn:
    try:
        return PredictIn.model_validate_json(data) if from_json else PredictIn.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False, include_input=False)]
        ) from None


async def check_product(settings: Settings, product: ProductIn, where: str = "") -> CheckedProduct:
    """Apply the text and image limits to a validated listing."""
    check_texts(settings, product.designation, product.description, where)
    image = None
    if product.image_base64:
        image = await run_in_threadpool(image_from_base64, settings, product.image_base64, where)
    explain = bool(getattr(product, "explain", False))
    return CheckedProduct(product.designation, product.description or "", image, explain)


async def _from_form(request: Request, settings: Settings) -> CheckedProduct:
    limit = max(settings.max_designation_chars, settings.max_description_chars) * 4 + 1024
    form = await request.form(max_files=1, max_fields=len(FORM_FIELDS), max_part_size=limit)
    try:
        unknown = sorted(set(form.keys()) - set(FORM_FIELDS))
        if unknown:
            raise LimitExceeded(
                f"unknown form fields: {', '.join(unknown)}; allowed: {', '.join(FORM_FIELDS)}"
            )
        texts = {k: form.get(k) for k in ("designation", "description", "explain") if form.get(k) is not None}
        if any(isinstance(v, UploadFile) for v in texts.values()):
            raise LimitExceeded("designation, description and explain must be text fields, not files")
        product = _validated(texts, from_json=False)
        check_texts(settings, product.designation, product.description)
        upload = form.get("image")
        image = None
        if isinstance(upload, UploadFile):
            data = await upload.read(settings.max_image_bytes + 1)
            image = await run_in_threadpool(image_from_bytes, settings, data)
        elif upload not in (None, ""):
            raise LimitExceeded("image must be sent as a file part (multipart/form-data), not as text")
        return CheckedProduct(product.designation, product.description or "", image, product.explain)
    finally:
        await form.close()


async def read_product(request: Request, settings: SettingsDep) -> CheckedProduct:
    """The listing of a predict request, whichever body type it came in."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return await _from_form(request, settings)
    if content_type not in ("application/json", ""):
        raise LimitExceeded(
            f"unsupported content type {content_type!r}; send application/json or multipart/form-data", 415
        )
    body = await request.body()
    if not body:
        raise LimitExceeded("request body is empty; send a JSON object with at least 'designation'")
    return await check_product(settings, _validated(body, from_json=True))
