"""Login: OAuth2 password flow, rate limited per username and client IP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from starlette.concurrency import run_in_threadpool

from rakuten_mlops.serving.auth import AuthError
from rakuten_mlops.serving.deps import CurrentUser, StateDep
from rakuten_mlops.serving.errors import error_responses
from rakuten_mlops.serving.login_limiter import login_key
from rakuten_mlops.serving.request_limits import LimitExceeded
from rakuten_mlops.serving.schemas import Me, Token
from rakuten_mlops.serving.security import create_token
from rakuten_mlops.serving.users import authenticate, roles_of

router = APIRouter(prefix="/auth", tags=["auth"])
MAX_CREDENTIAL_CHARS = 1024


class TooManyAttempts(LimitExceeded):
    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many failed logins; retry in {retry_after} s", 429, {"Retry-After": str(retry_after)}
        )


@router.post(
    "/token",
    response_model=Token,
    responses=error_responses(401, 403, 422, 429, 503),
    summary="Exchange a username and password for a bearer token",
)
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request, state: StateDep
) -> Token:
    if len(form.username) > MAX_CREDENTIAL_CHARS or len(form.password) > MAX_CREDENTIAL_CHARS:
        raise LimitExceeded(f"username and password must be at most {MAX_CREDENTIAL_CHARS} characters")
    key = login_key(form.username, request.client.host if request.client else "unknown")
    retry_after = state.login_limiter.retry_after(key)
    if retry_after:
        raise TooManyAttempts(retry_after)

    def _check() -> tuple[str, bool] | None:
        with state.sessions() as session:
            user = authenticate(session, form.username, form.password)
            return (user.role, bool(user.disabled)) if user else None

    found = await run_in_threadpool(_check)
    if found is None:
        state.login_limiter.record_failure(key)
        raise AuthError(401, "incorrect username or password")
    role, disabled = found
    if disabled:
        raise AuthError(403, "user account is disabled")
    state.login_limiter.reset(key)
    token = create_token(state.tokens, form.username, roles_of(role))
    return Token(access_token=token, expires_in=int(state.tokens.expire.total_seconds()))


@router.get("/me", response_model=Me, responses=error_responses(401, 403), summary="Who the token belongs to")
async def me(user: CurrentUser) -> Me:
    return Me(username=user.username, roles=list(user.roles))
