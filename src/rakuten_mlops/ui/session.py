"""The logged-in person of one browser session: login form, token, role, language, messages.

The token lives in Streamlit's server-side session state only; it is obtained from the API's
login route and never made up here. The API decides who is an admin (see `ApiClient.is_admin`).
"""

from __future__ import annotations

from typing import NoReturn

import streamlit as st

from rakuten_mlops.api_client import ApiClient, ApiError, UserSession, configured_api_url
from rakuten_mlops.config import Settings, get_settings

USER_KEY = "user_session"
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


def current_user() -> UserSession | None:
    user = st.session_state.get(USER_KEY)
    if isinstance(user, UserSession) and user.expired():
        logout("Your session expired: log in again.")
        return None
    return user if isinstance(user, UserSession) else None


def flash(message: str, level: str = "error") -> None:
    """Show `message` on the next run (it survives `st.rerun`)."""
    st.session_state.setdefault(FLASH_KEY, []).append((level, message))


def show_flash() -> None:
    for level, message in st.session_state.pop(FLASH_KEY, []):
        getattr(st, level, st.error)(message)


def logout(message: str | None = None) -> None:
    st.session_state.pop(USER_KEY, None)
    if message:
        flash(message, "warning")


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
        st.session_state[USER_KEY] = api().login(username, password)
    except ApiError as exc:
        st.error(exc.message)
        return
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
