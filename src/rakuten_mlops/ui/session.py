"""The logged-in person of one browser session: login form, token, role, language, messages.

The token lives on the UI's server only (Streamlit's session state, and the login store that an
HTTP-only cookie points at, so that a refresh, a new tab or a deep link keeps the person logged
in; see `login_store`). It is obtained from the API's login route and never made up here. The
API decides who is an admin (see `ApiClient.is_admin`).
"""

from __future__ import annotations

import json
from typing import NoReturn

import streamlit as st

from rakuten_mlops.api_client import ApiClient, ApiError, UserSession, configured_api_url
from rakuten_mlops.config import Settings, get_settings
from rakuten_mlops.ui.login_store import COOKIE_NAME, SESSION_HEADER, SESSION_PATH, STORE

USER_KEY = "user_session"
SID_KEY = "login_session_id"
COOKIE_KEY = "cookie_action"  # what the browser must do with the session cookie on this run
FLASH_KEY = "flash_messages"
LANG_KEY = "lang"


def settings() -> Settings:
    return get_settings()


def api_url() -> str:
    return configured_api_url(settings())


@st.cache_resource(show_spinner=False)
def _client(base_url: str) -> ApiClient:
    return ApiClient(base_url)


def api() -> ApiClient:
    """The shared HTTP client for the configured API (thread-safe, one per URL)."""
    return _client(api_url())


def lang() -> str:
    return str(st.session_state.get(LANG_KEY, "fr"))


def browser_cookie() -> str | None:
    """The session cookie the browser sent when it opened this page (None without one)."""
    try:
        value = st.context.cookies.get(COOKIE_NAME)
    except Exception:  # no browser behind this run (e.g. a test harness): no cookie
        return None
    return str(value) if value else None


def _cookie_session() -> tuple[str, UserSession] | None:
    """The session the browser's cookie points at (a refresh, a new tab, a deep link)."""
    sid = browser_cookie()
    user = STORE.user(sid)
    return (str(sid), user) if user is not None else None


def current_user() -> UserSession | None:
    user = st.session_state.get(USER_KEY)
    if user is None and SID_KEY not in st.session_state:
        found = _cookie_session()
        if found is not None:
            st.session_state[SID_KEY], st.session_state[USER_KEY] = found
            user = found[1]
    if isinstance(user, UserSession) and user.expired():
        logout("Your session expired: log in again.")
        return None
    sid = st.session_state.get(SID_KEY)
    if isinstance(user, UserSession) and sid and STORE.user(sid) is None:
        logout("You logged out (in this or another tab): log in again.")
        return None
    return user if isinstance(user, UserSession) else None


def flash(message: str, level: str = "error") -> None:
    """Show `message` on the next run (it survives `st.rerun`)."""
    st.session_state.setdefault(FLASH_KEY, []).append((level, message))


def show_flash() -> None:
    for level, message in st.session_state.pop(FLASH_KEY, []):
        getattr(st, level, st.error)(message)


def logout(message: str | None = None) -> None:
    """End the session here and in the login store; the browser is told to drop its cookie."""
    st.session_state.pop(USER_KEY, None)
    sid = st.session_state.get(SID_KEY)
    if sid:
        STORE.close(sid)
    st.session_state[SID_KEY] = ""  # "logged out": the cookie of this tab is not read again
    st.session_state[COOKIE_KEY] = ("DELETE", "")
    if message:
        flash(message, "warning")


def _start(user: UserSession) -> None:
    sid, code = STORE.open(user)
    st.session_state[USER_KEY] = user
    st.session_state[SID_KEY] = sid
    st.session_state[COOKIE_KEY] = ("POST", code)


def sync_cookie() -> None:
    """Have the browser set (after a login) or clear (after a logout) its HTTP-only session cookie.

    The browser posts the one-time login code to the UI server's own route, which answers with
    the cookie; the session id itself never appears in the page.
    """
    action = st.session_state.pop(COOKIE_KEY, None)
    if not action:
        return
    method, body = action
    script = (
        f"<script>fetch({json.dumps(SESSION_PATH)}, {{method: {json.dumps(method)}, "
        f"headers: {{{json.dumps(SESSION_HEADER)}: '1'}}, body: {json.dumps(body)}, "
        "credentials: 'same-origin'});</script>"
    )
    st.html(script, unsafe_allow_javascript=True, width="content")


def login_form() -> None:
    """Username and password form; on success the session holds the API's token."""
    st.subheader("Log in")
    st.caption(f"Use an account of the prediction API at {api_url()} (`rakuten-mlops users create NAME`).")
    with st.form("login"):
        username = st.text_input("Username", key="login_username")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Log in", type="primary", key="login_submit")
    if not submitted:
        return
    if not username or not password:
        st.error("Enter a username and a password.")
        return
    try:
        user = api().login(username, password)
    except ApiError as exc:
        st.error(exc.message)
        return
    _start(user)
    st.rerun()


def require_login() -> UserSession:
    """The logged-in user; otherwise show the login form and stop this page."""
    show_flash()
    user = current_user()
    if user is None:
        show_flash()  # "session expired", flashed by current_user()
        login_form()
        st.stop()
    return user


def fail(exc: ApiError) -> NoReturn:
    """Show an API error; a 401 ends the session and brings the login form back."""
    if exc.status == 401:
        logout()
        flash(exc.message)
        st.rerun()
    st.error(exc.message)
    st.stop()


def served_model(user: UserSession) -> dict[str, object] | None:
    """What the API serves now (asked at each run of the sidebar); None when it does not answer."""
    try:
        return api().model(user.token)
    except ApiError as exc:
        if exc.status == 401:
            fail(exc)
        return None
