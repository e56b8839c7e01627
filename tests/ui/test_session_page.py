"""Login in the app: a session the browser keeps across a refresh (cookie), and a clean logout."""

from __future__ import annotations

from rakuten_mlops.ui import session
from rakuten_mlops.ui.login_store import SESSION_PATH, STORE
from tests.ui.helpers import texts


def _scripts(at) -> list[str]:
    return [str(e.proto.body) for e in at.get("html")]


def test_login_opens_a_session_and_hands_the_browser_a_one_time_code_not_the_token(make_app):
    at = make_app()
    sid = at.session_state[session.SID_KEY]
    user = STORE.user(sid)
    assert user is not None and user.username == "alice"
    scripts = _scripts(at)
    assert (
        len(scripts) == 1
        and f'fetch("{SESSION_PATH}", {{method: "POST", headers: {{"X-Rakuten-UI": \'1\'}}' in scripts[0]
    )
    assert user.token not in scripts[0] and sid not in scripts[0]
    at.run()
    assert _scripts(at) == [], "the code is handed over once"


def test_a_refresh_with_the_cookie_stays_logged_in(make_app, monkeypatch):
    first = make_app()
    sid = first.session_state[session.SID_KEY]
    monkeypatch.setattr(session, "browser_cookie", lambda: sid)
    again = make_app(user=None, page="models_page.py")  # a new page load: a fresh Streamlit session
    assert "Logged in as **alice** (predictor)" in texts(again)
    assert not [t for t in again.text_input if t.key == "login_username"]


def test_logout_ends_the_session_and_clears_the_cookie(make_app, monkeypatch):
    at = make_app()
    sid = at.session_state[session.SID_KEY]
    at.button(key="logout").click().run()
    assert STORE.user(sid) is None
    assert any('method: "DELETE"' in s for s in _scripts(at))
    assert at.text_input(key="login_username") is not None
    monkeypatch.setattr(session, "browser_cookie", lambda: sid)  # a stale cookie logs nobody in
    again = make_app(user=None)
    assert "Not logged in" in texts(again)
