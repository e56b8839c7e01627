"""One route straight to its endpoint: `POST /v1/predict` without Starlette's router and FastAPI's
request handling.

Single-listing predictions are the API's hottest path, and the work around the endpoint (route
matching, FastAPI's request wrapper and dependency solving, exception middleware) cost about as
much as the endpoint's own token check, validation and logging together. `RouteFastPath` sits
innermost among the app's middleware, so the metrics, the auth gate and the body-size limit
still wrap every request; it calls the route's endpoint with the `Request` and sends what it
returns. Errors go to the app's own exception handlers, as from the router (an error without
one still reaches the server-error middleware). The route stays registered: OpenAPI, and every
other method or path, are the router's as before.

The endpoint must take only the `Request` and return a `Response` (it validates and encodes its
answer itself): `check_endpoint` refuses, on the first request, a route that does not.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Handler = Callable[[Request, Exception], Response | Awaitable[Response]]


def route_path(scope: Scope) -> str:
    """The path the router matches: `path` without the `root_path` it is mounted under."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] == "/":
        return path[len(root) :]
    return path


def check_endpoint(route: APIRoute) -> None:
    """Refuse a route the fast path cannot call exactly as FastAPI would."""
    params = list(inspect.signature(route.endpoint).parameters.values())
    if route.dependant.dependencies or len(params) != 1 or params[0].annotation not in (Request, "Request"):
        raise TypeError(
            f"{route.path}: the fast path calls endpoints that take only the Request "
            f"and no dependencies; {route.endpoint.__name__} takes {[p.name for p in params]}"
        )
    if not inspect.iscoroutinefunction(route.endpoint):
        raise TypeError(f"{route.path}: the fast path calls async endpoints only")


def find_handler(handlers: dict[Any, Handler], exc: Exception) -> Handler | None:
    """The handler Starlette's exception middleware would pick for `exc` (None: the server-error one's)."""
    if isinstance(exc, HTTPException) and exc.status_code in handlers and exc.status_code != 500:
        return handlers[exc.status_code]
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None  # the catch-all belongs to the outermost, server-error middleware
        if cls in handlers:
            return handlers[cls]
    return None


class RouteFastPath:
    """Send `method path` to its route's endpoint directly (see the module's docstring)."""

    def __init__(self, app: ASGIApp, method: str, path: str) -> None:
        self.app = app
        self.method = method
        self.path = path
        self._route: APIRoute | None = None

    def route_of(self, scope: Scope) -> APIRoute:
        if self._route is None:  # once: the app's routes are fixed by then
            routes = [
                r
                for r in scope["app"].routes
                if isinstance(r, APIRoute) and r.path == self.path and self.method in r.methods
            ]
            if len(routes) != 1:
                raise RuntimeError(f"{len(routes)} routes for {self.method} {self.path}; expected one")
            check_endpoint(routes[0])
            self._route = routes[0]
        return self._route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != self.method or route_path(scope) != self.path:
            await self.app(scope, receive, send)
            return
        route = self.route_of(scope)
        # What the router would have set: the metrics label the request by `route.path`.
        scope["route"], scope["endpoint"], scope["path_params"] = route, route.endpoint, {}
        request = Request(scope, receive, send)
        try:
            response = await route.endpoint(request)
        except Exception as exc:
            handler = find_handler(scope["app"].exception_handlers, exc)
            if handler is None:
                raise
            if inspect.iscoroutinefunction(handler):
                response = await handler(request, exc)
            else:
                response = await run_in_threadpool(handler, request, exc)
        if not isinstance(response, Response):
            kind = type(response).__name__
            raise TypeError(f"{self.path}: the endpoint must return a Response, not {kind}")
        await response(scope, receive, send)
