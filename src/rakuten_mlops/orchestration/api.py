"""Where the prediction API is for a DAG task, and its calls: a bearer token, reload, traffic.

Where the API is and how to authenticate, first match wins:

1. the Airflow Connection ``rakuten_api`` (HTTP): host/port/schema give the URL; login and
   password are an admin account, exchanged for a fresh token on every call (tokens expire);
   or ``{"token": "..."}`` in its extra;
2. else ``RAKUTEN_API_URL`` (Settings.api_url) with the token in ``RAKUTEN_API_TOKEN``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from rakuten_mlops.api_client import ApiClient, ApiError
from rakuten_mlops.config import Settings
from rakuten_mlops.infra import write_json_atomic

CONNECTION_ID = "rakuten_api"
TOKEN_ENV = "RAKUTEN_API_TOKEN"


@dataclass(frozen=True)
class ApiTarget:
    url: str
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def target_from_connection(conn: Any) -> ApiTarget:
    """An ApiTarget from an Airflow Connection (anything with host, port, schema, login, password, extra)."""
    host = (conn.host or "").strip().rstrip("/")
    if not host:
        raise ValueError(f"connection {CONNECTION_ID!r} has no host")
    if "://" not in host:
        scheme = conn.schema if conn.schema in ("http", "https") else None
        scheme = scheme or (conn.conn_type if conn.conn_type in ("http", "https") else "http")
        host = f"{scheme}://{host}"
    url = f"{host}:{conn.port}" if conn.port else host
    extra = conn.extra_dejson if conn.extra else {}
    return ApiTarget(url, extra.get("token") or None, conn.login or None, conn.password or None)


def resolve_target(conn: Any | None, settings: Settings) -> ApiTarget | None:
    """The API to call, or None when none is configured (see the module docstring)."""
    if conn is not None:
        return target_from_connection(conn)
    if settings.api_url:
        return ApiTarget(settings.api_url.rstrip("/"), os.environ.get(TOKEN_ENV) or None)
    return None


def bearer_token(target: ApiTarget, client: ApiClient) -> str:
    """The configured token, else one obtained from ``POST /v1/auth/token`` with the login/password."""
    if target.username and target.password:
        return client.token(target.username, target.password)[0]
    if target.token:
        return target.token
    raise ApiError(
        None,
        f"no credentials for {target.url}: set login/password on the {CONNECTION_ID!r} connection "
        f"or {TOKEN_ENV}",
    )


def reload_model(
    target: ApiTarget, timeout_s: float = 60.0, transport: httpx.BaseTransport | None = None
) -> dict[str, Any]:
    """Ask the API to check the champion alias now (``POST /v1/model/reload``, admin); returns its answer."""
    with ApiClient(target.url, timeout_s, transport) as client:
        return {"url": target.url, **client.reload_model(bearer_token(target, client))}


def send_traffic(
    target: ApiTarget,
    rate: float,
    duration_s: float,
    concurrency: int = 4,
    batch_size: int = 1,
    max_requests: int = 100_000,
    data_dir: Path | None = None,
    report_path: Path | None = None,
) -> dict[str, Any]:
    """Run the serving traffic generator against the API; returns (and optionally writes) its report."""
    import asyncio

    from rakuten_mlops.simulation.loadgen.traffic import (
        TrafficConfig,
        build_payloads,
        load_listings,
        run_traffic,
    )

    with ApiClient(target.url) as client:
        token = bearer_token(target, client)
    cfg = TrafficConfig(
        url=target.url, token=token, rate=rate, duration_s=duration_s, concurrency=concurrency,
        max_requests=max_requests, batch_size=batch_size,
    )  # fmt: skip
    listings = load_listings(data_dir, limit=2000)
    report = asyncio.run(run_traffic(cfg, build_payloads(listings, batch_size, cfg.mode)))
    if report_path is not None:
        write_json_atomic(report_path, report, sort_keys=False)
        report["report_path"] = str(report_path)
    return report
