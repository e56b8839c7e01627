"""Browser sessions of the web app that survive a refresh, a new tab and a deep link.

The API's token never reaches the browser. After a login, the UI keeps the token here under a
random session id and hands the browser a one-time code; the browser trades that code (within a
minute, once) for an HTTP-only, SameSite=Strict cookie holding the session id (see `server.py`).
On a new page load the UI reads the cookie and finds the session again. A session ends when the
API's token expires, or at logout (the entry is dropped here: a copied cookie is then worthless).
The store lives in the UI process: restarting the UI logs everyone out.
"""

from __future__ import annotations

import secrets
import threading
import time

from rakuten_mlops.api_client import UserSession

COOKIE_NAME = "rakuten_ui_session"
HANDOFF_TTL_S = 60.0
SESSION_PATH = "/_rakuten/session"  # the route that sets and clears the cookie
# Sent by the page's own script: a form or a cross-site page cannot send it without a CORS
# preflight, which the route never grants (no login or logout forced on a browser from elsewhere).
SESSION_HEADER = "X-Rakuten-UI"


class LoginStore:
    """Session id → the logged-in user (with the API's token); one-time codes → session id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, UserSession] = {}
        self._codes: dict[str, tuple[str, float]] = {}

    def open(self, user: UserSession) -> tuple[str, str]:
        """A new session of `user`: its id, and the one-time code the browser trades for the cookie."""
        sid, code = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        with self._lock:
            self._purge()
            self._sessions[sid] = user
            self._codes[code] = (sid, time.time() + HANDOFF_TTL_S)
        return sid, code

    def redeem(self, code: str) -> tuple[str, float] | None:
        """The session id of a one-time code and how long it has left (s); None when unknown or used."""
        with self._lock:
            self._purge()
            sid, _ = self._codes.pop(code, ("", 0.0))
            user = self._sessions.get(sid)
        if user is None:
            return None
        return sid, max(0.0, user.expires_at - time.time())

    def user(self, sid: str | None) -> UserSession | None:
        """The user of a session id; None when unknown, ended or expired with its token."""
        if not sid:
            return None
        with self._lock:
            user = self._sessions.get(sid)
            if user is not None and user.expired():
                del self._sessions[sid]
                return None
        return user

    def close(self, sid: str | None) -> None:
        """End a session (logout): its cookie no longer logs anyone in."""
        with self._lock:
            self._sessions.pop(sid or "", None)
            self._codes = {c: v for c, v in self._codes.items() if v[0] != sid}

    def _purge(self) -> None:
        now = time.time()
        self._sessions = {s: u for s, u in self._sessions.items() if not u.expired(now)}
        self._codes = {c: v for c, v in self._codes.items() if v[1] > now}


STORE = LoginStore()  # one per UI process: the cookie route and every page run share it
