"""From a bearer token to a user: verify the JWT, then check the account (cached briefly)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import jwt
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from rakuten_mlops.serving.security import TokenConfig, decode_token
from rakuten_mlops.serving.users import get_user, roles_of

log = logging.getLogger(__name__)


class AuthError(Exception):
    """Authentication or authorisation failed; `status_code` is 401 or 403."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


@dataclass(frozen=True)
class AuthUser:
    username: str
    roles: tuple[str, ...]

    def has(self, role: str) -> bool:
        return role in self.roles


@dataclass(frozen=True)
class _Account:
    roles: tuple[str, ...]
    disabled: bool
    token_version: int
    checked_at: float


def _token_error(exc: jwt.InvalidTokenError) -> str:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "token has expired; request a new one from POST /v1/auth/token"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "token was not issued for this API (wrong audience)"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "token was not issued by this API (wrong issuer)"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "token is signed with an algorithm this API does not accept"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "token signature is invalid"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"token lacks the required claim {exc.claim!r}"
    if isinstance(exc, jwt.DecodeError):
        return "token is malformed"
    return f"token is invalid: {exc}"[:200]


class Authenticator:
    """Verifies tokens and looks accounts up, caching each known account for `cache_s` seconds.

    Fails closed: when the user store does not answer (and no cached entry younger than
    `cache_s` exists), the request is refused with 503 rather than trusted on the token's claims.
    A token whose `ver` is older than the account's token version (bumped on disable, role or
    password change) is refused at once in this process, and in other workers within `cache_s`.

    A token's verified claims are remembered (keyed by the whole token, signature included)
    until the token expires, so a client sending the same token again skips the signature and
    claim checks; the account checks (exists, not disabled, token version) run on every request
    as before, so revocation works exactly as without the memo.
    """

    MAX_TOKENS = 10_000

    def __init__(self, cfg: TokenConfig, sessions: sessionmaker[Session], cache_s: float) -> None:
        self.cfg = cfg
        self.sessions = sessions
        self.cache_s = cache_s
        self._cache: dict[str, _Account] = {}
        self._verified: dict[str, dict[str, Any]] = {}  # token -> its verified claims

    def _lookup(self, username: str) -> _Account | None:
        with self.sessions() as session:
            user = get_user(session, username)
            if user is None:
                return None
            roles = tuple(roles_of(user.role))
            return _Account(roles, bool(user.disabled), int(user.token_version or 0), time.monotonic())

    async def _account(self, username: str) -> _Account | None:
        cached = self._cache.get(username)
        if cached is not None and time.monotonic() - cached.checked_at < self.cache_s:
            return cached
        try:
            account = await run_in_threadpool(self._lookup, username)
        except SQLAlchemyError as exc:
            log.warning("user database unavailable (%s); refusing the request", exc.__class__.__name__)
            raise AuthError(503, "the user database is unavailable; retry later") from None
        if account is None:
            self._cache.pop(username, None)
        else:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[username] = account
        return account

    def verify(self, token: str | None) -> dict[str, Any]:
        """The verified claims of a bearer token (signature, expiry, audience); no database."""
        if not token:
            raise AuthError(
                401, "not authenticated: send 'Authorization: Bearer <token>' (POST /v1/auth/token)"
            )
        claims = self._verified.get(token)
        if claims is not None:
            if time.time() < claims["exp"]:  # no leeway on the memo: stricter than decode_token
                return claims
            self._verified.pop(token, None)
        try:
            claims = decode_token(self.cfg, token)
        except jwt.InvalidTokenError as exc:
            raise AuthError(401, _token_error(exc)) from None
        if len(self._verified) >= self.MAX_TOKENS:
            self._verified.clear()
        self._verified[token] = claims
        return claims

    async def authenticate(self, token: str | None) -> AuthUser:
        """The user a bearer token stands for; raises AuthError(401/403/503)."""
        claims = self.verify(token)
        account = await self._account(claims["sub"])
        if account is None:
            raise AuthError(401, "token refers to a user that does not exist")
        if account.disabled:
            raise AuthError(401, "user account is disabled")
        if int(claims.get("ver", 0)) != account.token_version:
            raise AuthError(401, "token has been revoked (password, role or account changed); log in again")
        return AuthUser(claims["sub"], account.roles)

    def forget(self, username: str) -> None:
        """Drop the cached account (after it changed through the API)."""
        self._cache.pop(username, None)


def error_response(exc: AuthError) -> JSONResponse:
    """The JSON answer to an AuthError (also used by the exception handler)."""
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"' if exc.status_code == 401 else "Bearer"}
    if exc.status_code == 503:
        headers = {"Retry-After": "5"}
    return JSONResponse({"detail": exc.message}, status_code=exc.status_code, headers=headers)


def bearer_token(scope: Scope) -> str | None:
    """The token of an `Authorization: Bearer` header, or None."""
    for name, value in scope.get("headers") or []:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() or None if scheme.lower() == "bearer" else None
    return None


class AuthGateMiddleware:
    """Authenticates every request under `prefix` (but `open_paths`) before the body is read.

    An anonymous or forged request is answered 401 without reading or parsing its body; the
    authenticated user is left in `request.state.auth_user` for the route dependencies.
    """

    def __init__(
        self, app: ASGIApp, authenticator: Authenticator, prefix: str, open_paths: tuple[str, ...]
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.prefix = prefix
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(self.prefix) or path.rstrip("/") in self.open_paths:
            await self.app(scope, receive, send)
            return
        try:
            user = await self.authenticator.authenticate(bearer_token(scope))
        except AuthError as exc:
            await error_response(exc)(scope, receive, send)
            return
        scope.setdefault("state", {})["auth_user"] = user
        await self.app(scope, receive, send)
