"""Tokens and passwords: JWT (algorithm pinned, claims required) and Argon2 hashes (pwdlib)."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import jwt
from pwdlib import PasswordHash
from starlette.concurrency import run_in_threadpool

from rakuten_mlops.appdb import utcnow
from rakuten_mlops.config import MIN_JWT_SECRET_BYTES, Settings

log = logging.getLogger(__name__)
password_hash = PasswordHash.recommended()
T = TypeVar("T")
REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud", "roles"]


class InsecureConfigError(RuntimeError):
    """The API refuses to start with this configuration."""


@dataclass(frozen=True)
class TokenConfig:
    secret: str
    algorithm: str
    issuer: str
    audience: str
    expire: timedelta


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so a login takes as long either way."""
    return password_hash.hash("not-a-real-password-" + secrets.token_hex(8))


def hash_password(password: str) -> str:
    """Argon2 hash of `password`."""
    return password_hash.hash(password)


def verify_password(password: str, hashed: str | None) -> bool:
    """True when `password` matches `hashed`; with no hash, spends the same time and says no."""
    if hashed is None:
        password_hash.verify(password, _dummy_hash())
        return False
    try:
        return password_hash.verify(password, hashed)
    except Exception:  # a corrupt hash in the database must not become a 500
        return False


def create_token(cfg: TokenConfig, subject: str, roles: list[str], version: int = 0) -> str:
    """Signed JWT for `subject` with its roles and token version, expiring after `cfg.expire`.

    `ver` is the user's token version when the token was issued: disabling the user, changing
    their role or password bumps it, and every token carrying an older one is refused.
    """
    now = utcnow()
    claims = {
        "sub": subject, "roles": roles, "iss": cfg.issuer, "aud": cfg.audience,
        "iat": now, "nbf": now, "exp": now + cfg.expire, "jti": secrets.token_hex(8), "ver": version,
    }  # fmt: skip
    return jwt.encode(claims, cfg.secret, algorithm=cfg.algorithm)


def decode_token(cfg: TokenConfig, token: str) -> dict[str, Any]:
    """Verified claims of `token`; raises `jwt.InvalidTokenError` on any problem."""
    claims = jwt.decode(
        token, cfg.secret, algorithms=[cfg.algorithm], audience=cfg.audience, issuer=cfg.issuer,
        options={"require": REQUIRED_CLAIMS}, leeway=5,
    )  # fmt: skip
    if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("roles"), list):
        raise jwt.InvalidTokenError("sub must be a string and roles a list")
    if not isinstance(claims.get("ver", 0), int):
        raise jwt.InvalidTokenError("ver must be an integer")
    return claims


class HashingBusy(RuntimeError):
    """Every password-hashing slot stayed taken for the whole wait."""


class HashGate:
    """Runs password hashing in worker threads, at most `slots` at once.

    Each Argon2 hash takes about 64 MiB: the slots bound the memory logins can take. A login
    that waits more than `wait_s` for a slot gets `HashingBusy` (answered 503 + Retry-After).
    """

    def __init__(self, slots: int, wait_s: float) -> None:
        self.slots = slots
        self.wait_s = wait_s
        self._sem: asyncio.Semaphore | None = None

    async def run(self, fn: Callable[[], T]) -> T:
        if self._sem is None:  # created on the serving loop
            self._sem = asyncio.Semaphore(self.slots)
        try:
            await asyncio.wait_for(self._sem.acquire(), self.wait_s or 0.001)
        except TimeoutError:
            raise HashingBusy("too many logins in progress") from None
        try:
            return await run_in_threadpool(fn)
        finally:
            self._sem.release()


def _dev_secret(path: Path) -> str:
    """Read, or create once (0600, race-free across workers), the development secret under home."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_text(encoding="utf-8").strip()
        if len(secret) >= 32:
            return secret
        raise InsecureConfigError(f"{path} holds no usable secret; delete it to generate one") from None
    secret = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secret)
    return secret


def token_config(settings: Settings) -> TokenConfig:
    """Token settings; refuses a missing or placeholder secret outside development."""
    if settings.jwt_secret_is_placeholder():
        if settings.env != "development":
            raise InsecureConfigError(
                "RAKUTEN_JWT_SECRET is missing or a placeholder (it needs at least 32 bytes, not a "
                "well-known value); generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        path = settings.serving_dir / "dev-jwt-secret"
        secret = _dev_secret(path)
        log.warning("development mode: no RAKUTEN_JWT_SECRET set, signing tokens with the secret in %s", path)
    else:
        assert settings.jwt_secret is not None
        secret = settings.jwt_secret.get_secret_value()
    return TokenConfig(
        secret=secret,
        algorithm=settings.jwt_algorithm,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        expire=timedelta(minutes=settings.jwt_expire_minutes),
    )


def check_signing_key(settings: Settings) -> None:
    """Outside development the API needs the model signing key (it refuses unsigned models)."""
    key = settings.model_signing_key.get_secret_value() if settings.model_signing_key else ""
    if key and len(key.encode()) < MIN_JWT_SECRET_BYTES:
        raise InsecureConfigError(f"RAKUTEN_MODEL_SIGNING_KEY needs at least {MIN_JWT_SECRET_BYTES} bytes")
    if not key and settings.env != "development":
        raise InsecureConfigError(
            "RAKUTEN_MODEL_SIGNING_KEY is missing: outside development the API only loads signed models; "
            "give it the trainer's key (a secret file)"
        )
