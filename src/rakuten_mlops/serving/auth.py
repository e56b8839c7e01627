"""From a bearer token to a user: verify the JWT, then check the account (cached briefly)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import jwt
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

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
    """Verifies tokens and looks accounts up, caching each for `cache_s` seconds.

    When the database does not answer, the last known state of the account is used, or the
    signed claims of the token when it was never seen: a database outage must not stop
    predictions (a disabled user keeps access until the database answers again).
    """

    def __init__(self, cfg: TokenConfig, sessions: sessionmaker[Session], cache_s: float) -> None:
        self.cfg = cfg
        self.sessions = sessions
        self.cache_s = cache_s
        self._cache: dict[str, _Account] = {}

    def _lookup(self, username: str) -> _Account | None:
        with self.sessions() as session:
            user = get_user(session, username)
            if user is None:
                return None
            return _Account(tuple(roles_of(user.role)), bool(user.disabled), time.monotonic())

    async def _account(self, username: str, claimed_roles: tuple[str, ...]) -> _Account | None:
        cached = self._cache.get(username)
        if cached is not None and time.monotonic() - cached.checked_at < self.cache_s:
            return cached
        try:
            account = await run_in_threadpool(self._lookup, username)
        except SQLAlchemyError as exc:
            log.warning("user database unavailable (%s); trusting the token's claims", exc.__class__.__name__)
            return cached or _Account(claimed_roles, False, 0.0)
        if account is None:
            self._cache.pop(username, None)
        else:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[username] = account
        return account

    async def authenticate(self, token: str | None) -> AuthUser:
        """The user a bearer token stands for; raises AuthError(401/403)."""
        if not token:
            raise AuthError(
                401, "not authenticated: send 'Authorization: Bearer <token>' (POST /v1/auth/token)"
            )
        try:
            claims = decode_token(self.cfg, token)
        except jwt.InvalidTokenError as exc:
            raise AuthError(401, _token_error(exc)) from None
        claimed = tuple(str(r) for r in claims["roles"])
        account = await self._account(claims["sub"], claimed)
        if account is None:
            raise AuthError(401, "token refers to a user that does not exist")
        if account.disabled:
            raise AuthError(403, "user account is disabled")
        return AuthUser(claims["sub"], account.roles)

    def forget(self, username: str) -> None:
        """Drop the cached account (after it changed through the API)."""
        self._cache.pop(username, None)
