"""Request limits: body size (ASGI middleware) and per-field limits of a listing."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rakuten_mlops.config import Settings
from rakuten_mlops.serving.images import CheckedImage, ImageRejected, check_image, decode_base64


class LimitExceeded(ValueError):
    """A request is over one of the configured limits."""

    def __init__(self, message: str, status_code: int = 422, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.headers = headers


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a streamed body passes the limit (FastAPI re-raises HTTPException)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body is larger than the {max_bytes} byte limit")


class BodySizeLimitMiddleware:
    """Answers 413 to bodies over `max_bytes`, by Content-Length or by counting streamed chunks."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._reject(send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps({"detail": f"request body is larger than the {self.max_bytes} byte limit"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def check_texts(settings: Settings, designation: str, description: str | None, where: str = "") -> None:
    """Reject titles and descriptions over the configured lengths."""
    if not designation.strip():
        raise LimitExceeded(f"{where}designation is blank; send the product title")
    for field, text, limit in (
        ("designation", designation, settings.max_designation_chars),
        ("description", description or "", settings.max_description_chars),
    ):
        if len(text) > limit:
            raise LimitExceeded(f"{where}{field} has {len(text)} characters; the limit is {limit}")


def check_batch_size(settings: Settings, n: int) -> None:
    """Reject batches over the configured size."""
    if n > settings.max_batch_size:
        raise LimitExceeded(f"batch has {n} items; the limit is {settings.max_batch_size}; split it")


def image_from_base64(settings: Settings, text: str, where: str = "") -> CheckedImage:
    """Decode and check a base64 image."""
    try:
        return check_image(
            decode_base64(text, settings.max_image_bytes), settings.max_image_bytes, settings.max_image_pixels
        )
    except ImageRejected as exc:
        raise LimitExceeded(f"{where}{exc}", exc.status_code) from None


def image_from_bytes(settings: Settings, data: bytes, where: str = "") -> CheckedImage:
    """Check uploaded image bytes."""
    try:
        return check_image(data, settings.max_image_bytes, settings.max_image_pixels)
    except ImageRejected as exc:
        raise LimitExceeded(f"{where}{exc}", exc.status_code) from None
