"""Typed dependencies: a route's signature says what it needs (state, user, role, model)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from rakuten_mlops.config import Settings
from rakuten_mlops.serving.auth import Authenticator, AuthError, AuthUser, bearer_token
from rakuten_mlops.serving.login_limiter import LoginLimiter, Network, Quota, client_address
from rakuten_mlops.serving.metrics import ServingMetrics
from rakuten_mlops.serving.model_holder import ModelHolder
from rakuten_mlops.serving.prediction_log import PredictionLog
from rakuten_mlops.serving.security import HashGate, TokenConfig
from rakuten_mlops.serving.shadow import ShadowScorer

# Trivial dependencies are `async def`: FastAPI runs a plain `def` dependency in a worker thread,
# which costs more than the whole route on the prediction path.


@dataclass
class ServingState:
    """Everything the routes share, kept on `app.state.serving`."""

    settings: Settings
    tokens: TokenConfig
    engine: Engine
    sessions: sessionmaker[Session]
    authenticator: Authenticator
    holder: ModelHolder
    prediction_log: PredictionLog
    metrics: ServingMetrics
    login_limiter: LoginLimiter
    quota: Quota
    hash_gate: HashGate
    trusted_proxies: list[Network]
    shadow: ShadowScorer


def get_state_now(request: Request) -> ServingState:
    """The app's `ServingState` (`StateDep`, called directly)."""
    return request.app.state.serving  # type: ignore[no-any-return]


async def get_state(request: Request) -> ServingState:
    return get_state_now(request)


StateDep = Annotated[ServingState, Depends(get_state)]


async def get_settings_dep(state: StateDep) -> Settings:
    return state.settings


async def get_holder(state: StateDep) -> ModelHolder:
    return state.holder


async def get_prediction_log(state: StateDep) -> PredictionLog:
    return state.prediction_log


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
HolderDep = Annotated[ModelHolder, Depends(get_holder)]
PredictionLogDep = Annotated[PredictionLog, Depends(get_prediction_log)]

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)
# The OpenAPI security requirement `oauth2_scheme` gives a route, for routes that check the token
# without depending on it (`user_with_role`).
BEARER_SECURITY: dict[str, Any] = {"security": [{"OAuth2PasswordBearer": []}]}
TokenDep = Annotated[str | None, Depends(oauth2_scheme)]


async def authenticated(request: Request, token: str | None) -> AuthUser:
    """The authenticated user (401 without a valid token, or for a disabled account or revoked token).

    `AuthGateMiddleware` has normally done it before the body was read; this is the fallback.
    """
    user = request.scope.get("state", {}).get("auth_user")
    if isinstance(user, AuthUser):
        return user
    return await get_state_now(request).authenticator.authenticate(token)


async def get_current_user(request: Request, token: TokenDep) -> AuthUser:
    """`authenticated` as a dependency (its token parameter documents the bearer scheme)."""
    return await authenticated(request, token)


def check_role(user: AuthUser, role: str) -> AuthUser:
    """`user`, when they hold `role` (403 otherwise)."""
    if not user.has(role):
        raise AuthError(403, f"this needs the {role!r} role; you have {', '.join(user.roles) or 'none'}")
    return user


async def user_with_role(request: Request, role: str) -> AuthUser:
    """What `Depends(require_role(role))` gives, without FastAPI's dependency solving: for a route
    on the prediction path, where solving a dependency tree costs more than the route's own work."""
    return check_role(await authenticated(request, bearer_token(request.scope)), role)


async def get_client_address(request: Request, state: StateDep) -> str:
    """The client's address (X-Forwarded-For only from trusted proxies)."""
    peer = request.client.host if request.client else None
    return client_address(peer, request.headers.get("x-forwarded-for"), state.trusted_proxies)


ClientAddress = Annotated[str, Depends(get_client_address)]


CurrentUser = Annotated[AuthUser, Depends(get_current_user)]


def require_role(role: str) -> Callable[..., Coroutine[Any, Any, AuthUser]]:
    """Dependency that lets only users holding `role` through (403 otherwise)."""

    async def _check(user: CurrentUser) -> AuthUser:
        return check_role(user, role)

    return _check


PredictorUser = Annotated[AuthUser, Depends(require_role("predictor"))]
AdminUser = Annotated[AuthUser, Depends(require_role("admin"))]
