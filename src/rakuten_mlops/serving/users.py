"""User accounts: create, list, disable, authenticate (shared by the API and the CLI)."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rakuten_mlops.appdb import ROLES, User
from rakuten_mlops.errors import RakutenError
from rakuten_mlops.serving.security import hash_password, verify_password

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{3,64}$")
MIN_PASSWORD_CHARS = 12


class UserError(RakutenError, ValueError):
    """A user cannot be created or changed as asked."""

    status_code = 422


class UserExists(UserError):
    status_code = 409


class UserNotFound(UserError):
    status_code = 404


class WrongPassword(UserError):
    status_code = 403


def roles_of(role: str) -> list[str]:
    """Roles granted by a stored role: an admin may also predict."""
    return ["admin", "predictor"] if role == "admin" else [role]


def check_password_strength(password: str) -> None:
    """Reject passwords too short to resist guessing."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise UserError(f"password must have at least {MIN_PASSWORD_CHARS} characters")


def get_user(session: Session, username: str) -> User | None:
    """The user called `username`, or None."""
    return session.scalar(select(User).where(User.username == username))


def create_user(session: Session, username: str, password: str, role: str = "predictor") -> User:
    """Add a user with an Argon2-hashed password."""
    if not USERNAME_RE.match(username):
        raise UserError("username must be 3-64 characters: letters, digits, '_', '.', '@' or '-'")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    check_password_strength(password)
    if get_user(session, username) is not None:
        raise UserExists(f"user {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password), role=role, disabled=False)
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> list[User]:
    """All users, by name."""
    return list(session.scalars(select(User).order_by(User.username)))


def _existing(session: Session, username: str) -> User:
    user = get_user(session, username)
    if user is None:
        raise UserNotFound(f"no user called {username!r}")
    return user


def _revoke_tokens(user: User) -> None:
    user.token_version = (user.token_version or 0) + 1


def set_disabled(session: Session, username: str, disabled: bool = True) -> User:
    """Disable (or re-enable) a user; disabling revokes every token issued so far."""
    user = _existing(session, username)
    if disabled:
        _revoke_tokens(user)
    user.disabled = disabled
    session.flush()
    return user


def set_role(session: Session, username: str, role: str) -> User:
    """Give `username` another role; their tokens (which carry the old roles) are revoked."""
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    user = _existing(session, username)
    if user.role != role:
        user.role = role
        _revoke_tokens(user)
    session.flush()
    return user


def set_password(session: Session, username: str, password: str) -> User:
    """Set a new password (admin reset); every token issued so far is revoked."""
    check_password_strength(password)
    user = _existing(session, username)
    user.password_hash = hash_password(password)
    _revoke_tokens(user)
    session.flush()
    return user


def change_password(session: Session, username: str, current: str, new: str) -> User:
    """The user's own change: needs the current password; revokes every token issued so far."""
    user = get_user(session, username)
    if user is None or not verify_password(current, user.password_hash):
        raise WrongPassword("the current password is wrong")
    if current == new:
        raise UserError("the new password must differ from the current one")
    return set_password(session, username, new)


def count_users(session: Session) -> int:
    """How many users exist."""
    return int(session.scalar(select(func.count()).select_from(User)) or 0)


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The user when the password matches, else None; same work whether or not the user exists."""
    user = get_user(session, username) if USERNAME_RE.match(username) else None
    if not verify_password(password, user.password_hash if user else None):
        return None
    return user
