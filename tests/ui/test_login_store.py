"""Sessions that survive a refresh: the login store and the route that sets the HTTP-only cookie."""

from __future__ import annotations

import time

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from rakuten_mlops.api_client import UserSession
from rakuten_mlops.ui import server
from rakuten_mlops.ui.login_store import COOKIE_NAME, SESSION_HEADER, SESSION_PATH, STORE, LoginStore


def _user(ttl_s: float = 600.0) -> UserSession:
    return UserSession("alice", "api-token", time.time() + ttl_s, False)


def test_a_code_is_traded_once_for_the_session_which_ends_at_logout():
    store = LoginStore()
    sid, code = store.open(_user())
    found = store.redeem(code)
    assert found is not None and found[0] == sid and 500 < found[1] <= 600
    assert store.redeem(code) is None, "a login code must work once"
    assert store.user(sid).token == "api-token"
    store.close(sid)
    assert store.user(sid) is None


def test_a_session_expires_with_the_api_token():
    store = LoginStore()
    sid, code = store.open(_user(ttl_s=1.0))  # UserSession.expired() keeps a 5 s margin
    assert store.user(sid) is None
    assert store.redeem(code) is None
    assert store.user("made-up") is None and store.user(None) is None


def _client() -> TestClient:
    routes = [
        Route(SESSION_PATH, server.set_session, methods=["POST"]),
        Route(SESSION_PATH, server.clear_session, methods=["DELETE"]),
    ]
    client = TestClient(Starlette(routes=routes), base_url="https://ui.example")
    client.headers[SESSION_HEADER] = "1"  # what the page's script sends
    return client


def test_the_route_sets_an_http_only_strict_secure_cookie_and_logout_clears_it():
    sid, code = STORE.open(_user())
    with _client() as client:
        r = client.post(SESSION_PATH, content=code)
        assert r.status_code == 204
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE_NAME}={sid};")
        for attribute in ("HttpOnly", "SameSite=strict", "Secure", "Path=/", "Max-Age="):
            assert attribute in cookie, cookie
        assert "api-token" not in cookie, "the API token must never reach the browser"
        again = client.post(SESSION_PATH, content=code)
        assert again.status_code == 400 and "log in again" in again.text
        out = client.delete(SESSION_PATH)  # the cookie the POST set goes with it
        assert out.status_code == 204 and 'rakuten_ui_session=""' in out.headers["set-cookie"]
    assert STORE.user(sid) is None


def test_an_unknown_code_gets_no_cookie():
    with _client() as client:
        r = client.post(SESSION_PATH, content="guessed")
    assert r.status_code == 400 and "set-cookie" not in r.headers


def test_a_form_or_another_site_cannot_set_or_clear_the_session():
    sid, code = STORE.open(_user())
    with _client() as client:
        del client.headers[SESSION_HEADER]
        r = client.post(SESSION_PATH, content=code)  # a plain form post has no such header
        assert r.status_code == 403 and "set-cookie" not in r.headers
        r = client.post(
            SESSION_PATH, content=code, headers={SESSION_HEADER: "1", "Origin": "https://evil.example"}
        )
        assert r.status_code == 403 and "set-cookie" not in r.headers
        assert client.delete(SESSION_PATH).status_code == 403
        ok = client.post(
            SESSION_PATH, content=code, headers={SESSION_HEADER: "1", "Origin": "https://ui.example"}
        )
        assert ok.status_code == 204, "the code was not spent by the refused attempts"
    STORE.close(sid)
