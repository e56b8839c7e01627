"""The web app as an ASGI app (`rakuten-mlops ui` runs it): Streamlit plus the session-cookie route.

Streamlit cannot set an HTTP-only cookie from a page run, so this route does: the page hands the
browser a one-time code (see `login_store`), the browser posts it here and gets the cookie back.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rakuten_mlops.ui.login_store import COOKIE_NAME, SESSION_HEADER, SESSION_PATH, STORE

APP_PATH = Path(__file__).with_name("app.py")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "") == "https"


def _from_the_page(request: Request) -> Response | None:
    """403 unless the page's own script sent the request (its header; its origin when one is sent)."""
    origin = request.headers.get("origin")
    hosts = {request.headers.get("host", ""), request.headers.get("x-forwarded-host", "")} - {""}
    if request.headers.get(SESSION_HEADER) != "1" or (origin and origin.split("://", 1)[-1] not in hosts):
        return Response(
            "session changes come from the app's own page", status_code=403, media_type="text/plain"
        )
    return None


async def set_session(request: Request) -> Response:
    """Trade a one-time code for the HTTP-only session cookie (400 when the code is unknown or used)."""
    refused = _from_the_page(request)
    if refused is not None:
        return refused
    code = (await request.body()).decode("ascii", "replace").strip()[:200]
    found = STORE.redeem(code) if code else None
    if found is None:
        return Response("unknown or used login code: log in again", status_code=400, media_type="text/plain")
    sid, ttl_s = found
    response = Response(status_code=204)
    response.set_cookie(
        COOKIE_NAME, sid, max_age=int(ttl_s), path="/", httponly=True, samesite="strict",
        secure=_secure(request),
    )  # fmt: skip
    return response


async def clear_session(request: Request) -> Response:
    """Logout: end the session of the cookie (if still open) and expire the cookie."""
    refused = _from_the_page(request)
    if refused is not None:
        return refused
    STORE.close(request.cookies.get(COOKIE_NAME))
    response = Response(status_code=204)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict", secure=_secure(request))
    return response


app = st.App(
    APP_PATH,
    routes=[
        Route(SESSION_PATH, set_session, methods=["POST"]),
        Route(SESSION_PATH, clear_session, methods=["DELETE"]),
    ],
)
