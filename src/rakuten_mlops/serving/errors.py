"""Exception handlers: every error answers `ErrorOut` JSON with a message that says what to fix."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from rakuten_mlops.serving.auth import AuthError, error_response
from rakuten_mlops.serving.batcher import NoModelError
from rakuten_mlops.serving.login_limiter import LimiterUnavailable
from rakuten_mlops.serving.request_limits import LimitExceeded
from rakuten_mlops.serving.schemas import ErrorOut
from rakuten_mlops.serving.security import HashingBusy

log = logging.getLogger(__name__)
MAX_LISTED_ERRORS = 5


def _error(status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": detail, **extra}, status_code=status, headers=headers)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        loc = [p if isinstance(p, int) else str(p) for p in err.get("loc", ())]
        out.append(
            {"loc": loc, "msg": str(err.get("msg", "invalid")), "type": str(err.get("type", "invalid"))}
        )
    return out


async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = _field_errors(exc)
    parts = [f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in errors[:MAX_LISTED_ERRORS]]
    more = len(errors) - MAX_LISTED_ERRORS
    detail = "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
    # Only the first few errors: a large invalid body must not become a larger answer.
    return _error(422, detail or "invalid request", errors=errors[:MAX_LISTED_ERRORS])


async def _auth(_: Request, exc: AuthError) -> JSONResponse:
    return error_response(exc)


async def _limit(_: Request, exc: LimitExceeded) -> JSONResponse:
    return _error(exc.status_code, str(exc), exc.headers)


async def _busy(_: Request, exc: Exception) -> JSONResponse:
    log.warning("refused: %s", exc)
    return _error(503, f"{exc}; retry later", {"Retry-After": "2"})


async def _no_model(_: Request, exc: NoModelError) -> JSONResponse:
    return _error(503, f"{exc}; retry later", {"Retry-After": "5"})


async def _database(_: Request, exc: SQLAlchemyError) -> JSONResponse:
    log.warning("app database error: %s", exc.__class__.__name__)
    return _error(503, "the user database is unavailable; retry later", {"Retry-After": "5"})


async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return _error(exc.status_code, detail, dict(exc.headers or {}))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _error(500, "internal error; it has been logged")


def install_error_handlers(app: FastAPI) -> None:
    """Register every handler on `app`."""
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(AuthError, _auth)  # type: ignore[arg-type]
    app.add_exception_handler(LimitExceeded, _limit)  # type: ignore[arg-type]
    app.add_exception_handler(NoModelError, _no_model)  # type: ignore[arg-type]
    app.add_exception_handler(HashingBusy, _busy)
    app.add_exception_handler(LimiterUnavailable, _busy)
    app.add_exception_handler(SQLAlchemyError, _database)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting the error body of each status code."""
    descriptions = {
        401: "missing, malformed, expired, revoked or forged token, disabled account, or wrong credentials",
        403: "the account lacks the role (or the action is not allowed for this user)",
        404: "not found",
        409: "the request conflicts with the current state (e.g. nothing to roll back to)",
        413: "body, image bytes or image pixels over the limit",
        415: "unsupported content type",
        422: "invalid request: the message says which field and why",
        429: "too many failed logins, or the predict quota is spent; see Retry-After",
        501: "the served model cannot do what was asked (e.g. explain: it is not a model of this project)",
        503: "no model loaded yet, the user database is down, or logins are saturated; see Retry-After",
    }
    return {c: {"model": ErrorOut, "description": descriptions.get(c, "error")} for c in codes}
