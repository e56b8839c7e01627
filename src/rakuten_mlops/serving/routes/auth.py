"""Login (OAuth2 password flow, throttled per account+address, per address and globally) and own password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import SQLAlchemyError

from rakuten_mlops.appdb import session_scope
from rakuten_mlops.serving.auth import AuthError
from rakuten_mlops.serving.deps import ClientAddress, CurrentUser, StateDep
from rakuten_mlops.serving.errors import error_responses
from rakuten_mlops.serving.request_limits import LimitExceeded
from rakuten_mlops.serving.schemas import Me, Token
from rakuten_mlops.serving.security import HashingBusy, create_token
from rakuten_mlops.serving.users import UserError, authenticate, change_password, roles_of

router = APIRouter(prefix="/auth", tags=["auth"])
MAX_CREDENTIAL_CHARS = 1024


class TooManyAttempts(LimitExceeded):
    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many failed logins from this address; retry in {retry_after} s",
            429,
            {"Retry-After": str(retry_after)},
        )


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=MAX_CREDENTIAL_CHARS)
    new_password: str = Field(min_length=12, max_length=MAX_CREDENTIAL_CHARS)


@router.post(
    "/token",
    response_model=Token,
    responses=error_responses(401, 403, 422, 429, 503),
    summary="Exchange a username and password for a bearer token",
)
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], address: ClientAddress, state: StateDep
) -> Token:
    if len(form.username) > MAX_CREDENTIAL_CHARS or len(form.password) > MAX_CREDENTIAL_CHARS:
        raise LimitExceeded(f"username and password must be at most {MAX_CREDENTIAL_CHARS} characters")
    # Check and reserve a failure in one step: parallel attempts can never all be evaluated.
    reservation = state.login_limiter.reserve(form.username, address)
    if not reservation.allowed:
        raise TooManyAttempts(reservation.retry_after)

    def _check() -> tuple[str, bool, int] | None:
        with state.sessions() as session:
            user = authenticate(session, form.username, form.password)
            return (user.role, bool(user.disabled), int(user.token_version or 0)) if user else None

    try:
        found = await state.hash_gate.run(_check)  # bounded: each Argon2 hash takes about 64 MiB
    except (HashingBusy, SQLAlchemyError):
        state.login_limiter.cancel(reservation)  # not evaluated: not a failure (503 follows)
        raise
    if found is None:
        raise AuthError(401, "incorrect username or password")  # the reservation stays: a failure
    role, disabled, version = found
    state.login_limiter.succeeded(reservation, form.username, address)
    if disabled:
        raise AuthError(403, "user account is disabled")
    token = create_token(state.tokens, form.username, roles_of(role), version)
    return Token(access_token=token, expires_in=int(state.tokens.expire.total_seconds()))


@router.get("/me", response_model=Me, responses=error_responses(401, 503), summary="Who the token belongs to")
async def me(user: CurrentUser) -> Me:
    return Me(username=user.username, roles=list(user.roles))


@router.post(
    "/password",
    status_code=204,
    response_class=Response,
    responses=error_responses(401, 403, 422, 429, 503),
    summary="Change your own password (revokes every token issued so far)",
)
async def change_own_password(
    body: PasswordChange, user: CurrentUser, address: ClientAddress, state: StateDep
) -> Response:
    reservation = state.login_limiter.reserve(user.username, address)
    if not reservation.allowed:
        raise TooManyAttempts(reservation.retry_after)

    def _change() -> None:
        with session_scope(state.sessions) as session:
            change_password(session, user.username, body.current_password, body.new_password)

    try:
        await state.hash_gate.run(_change)
    except UserError as exc:
        raise LimitExceeded(str(exc), exc.status_code) from None
    state.login_limiter.succeeded(reservation, user.username, address)
    state.authenticator.forget(user.username)
    return Response(status_code=204)
