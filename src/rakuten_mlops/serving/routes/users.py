"""User administration (admin role); the CLI offers the same operations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from rakuten_mlops.appdb import User, session_scope
from rakuten_mlops.serving.deps import AdminUser, StateDep
from rakuten_mlops.serving.errors import error_responses
from rakuten_mlops.serving.request_limits import LimitExceeded
from rakuten_mlops.serving.schemas import UserCreate, UserPublic
from rakuten_mlops.serving.users import (
    UserError,
    create_user,
    list_users,
    set_disabled,
    set_password,
    set_role,
)

router = APIRouter(prefix="/users", tags=["users"])


def _public(user: User) -> UserPublic:
    return UserPublic(
        username=user.username, role=user.role, disabled=user.disabled, created_at=user.created_at
    )


def _run_sync(state: StateDep, fn: Callable[..., Any], *args: Any) -> Any:
    """Run a user operation in its own committed session."""
    with session_scope(state.sessions) as session:
        try:
            return fn(session, *args)
        except UserError as exc:
            raise LimitExceeded(str(exc), exc.status_code) from None


async def _run(state: StateDep, fn: Callable[..., Any], *args: Any) -> Any:
    """Run a user operation off the event loop."""
    return await run_in_threadpool(_run_sync, state, fn, *args)


@router.get("", response_model=list[UserPublic], responses=error_responses(401, 403), summary="List users")
async def get_users(_: AdminUser, state: StateDep) -> list[UserPublic]:
    return [_public(u) for u in await _run(state, list_users)]


@router.post(
    "", response_model=UserPublic, status_code=201, responses=error_responses(401, 403, 409, 422),
    summary="Create a user",
)  # fmt: skip
async def post_user(_: AdminUser, body: UserCreate, state: StateDep) -> UserPublic:
    args = (body.username, body.password, body.role)
    return _public(await state.hash_gate.run(lambda: _run_sync(state, create_user, *args)))


class RoleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["predictor", "admin"]


class PasswordReset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=12, max_length=1024)


@router.post(
    "/{username}/disable", response_model=UserPublic, responses=error_responses(401, 403, 404, 503),
    summary="Disable a user: their tokens stop working at once",
)  # fmt: skip
async def disable_user(_: AdminUser, username: str, state: StateDep) -> UserPublic:
    user = await _run(state, set_disabled, username)
    state.authenticator.forget(username)
    return _public(user)


@router.post(
    "/{username}/enable", response_model=UserPublic, responses=error_responses(401, 403, 404, 503),
    summary="Re-enable a disabled user (they log in again: tokens from before stay revoked)",
)  # fmt: skip
async def enable_user(_: AdminUser, username: str, state: StateDep) -> UserPublic:
    user = await _run(state, set_disabled, username, False)
    state.authenticator.forget(username)
    return _public(user)


@router.post(
    "/{username}/role", response_model=UserPublic, responses=error_responses(401, 403, 404, 422, 503),
    summary="Change a user's role: their tokens are revoked at once",
)  # fmt: skip
async def change_role(_: AdminUser, username: str, body: RoleIn, state: StateDep) -> UserPublic:
    user = await _run(state, set_role, username, body.role)
    state.authenticator.forget(username)
    return _public(user)


@router.post(
    "/{username}/password", response_model=UserPublic, responses=error_responses(401, 403, 404, 422, 503),
    summary="Reset a user's password: their tokens are revoked at once",
)  # fmt: skip
async def reset_password(_: AdminUser, username: str, body: PasswordReset, state: StateDep) -> UserPublic:
    user = await state.hash_gate.run(lambda: _run_sync(state, set_password, username, body.password))
    state.authenticator.forget(username)
    return _public(user)
