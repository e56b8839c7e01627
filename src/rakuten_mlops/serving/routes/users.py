"""User administration (admin role); the CLI offers the same operations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from rakuten_mlops.appdb import User, session_scope
from rakuten_mlops.serving.deps import AdminUser, StateDep
from rakuten_mlops.serving.errors import error_responses
from rakuten_mlops.serving.request_limits import LimitExceeded
from rakuten_mlops.serving.schemas import UserCreate, UserPublic
from rakuten_mlops.serving.users import UserError, create_user, list_users, set_disabled

router = APIRouter(prefix="/users", tags=["users"])


def _public(user: User) -> UserPublic:
    return UserPublic(
        username=user.username, role=user.role, disabled=user.disabled, created_at=user.created_at
    )


async def _run(state: StateDep, fn: Callable[..., Any], *args: Any) -> Any:
    """Run a user operation in its own committed session, off the event loop."""

    def run() -> Any:
        with session_scope(state.sessions) as session:
            try:
                return fn(session, *args)
            except UserError as exc:
                raise LimitExceeded(str(exc), exc.status_code) from None

    return await run_in_threadpool(run)


@router.get("", response_model=list[UserPublic], responses=error_responses(401, 403), summary="List users")
async def get_users(_: AdminUser, state: StateDep) -> list[UserPublic]:
    return [_public(u) for u in await _run(state, list_users)]


@router.post(
    "", response_model=UserPublic, status_code=201, responses=error_responses(401, 403, 409, 422),
    summary="Create a user",
)  # fmt: skip
async def post_user(_: AdminUser, body: UserCreate, state: StateDep) -> UserPublic:
    return _public(await _run(state, create_user, body.username, body.password, body.role))


@router.post(
    "/{username}/disable", response_model=UserPublic, responses=error_responses(401, 403, 404),
    summary="Disable a user: their tokens stop working",
)  # fmt: skip
async def disable_user(_: AdminUser, username: str, state: StateDep) -> UserPublic:
    user = await _run(state, set_disabled, username)
    state.authenticator.forget(username)
    return _public(user)
