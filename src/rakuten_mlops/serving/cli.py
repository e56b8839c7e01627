"""CLI commands of the serving capability: `serve`, `users ...`, `traffic` (registered by the main CLI)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rakuten_mlops.config import get_settings
from rakuten_mlops.infra import write_json_atomic

console = Console()
err_console = Console(stderr=True)
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
users_app = typer.Typer(help="API users: create, list, disable.", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=2)


def serve_command(
    host: Annotated[
        str | None, typer.Option(help="interface to bind (default RAKUTEN_SERVE_HOST, 127.0.0.1)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="port (default RAKUTEN_SERVE_PORT, 8000)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="worker processes (each loads the model)")] = 1,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="log one line per request (uvicorn's)")
    ] = True,
    log_level: Annotated[
        str, typer.Option(help="critical, error, warning, info, debug or trace (the server's log)")
    ] = "info",
) -> None:
    """Serve the champion model over HTTP (JWT-protected prediction API)."""
    import uvicorn

    from rakuten_mlops.serving.security import InsecureConfigError, check_signing_key, token_config
    from rakuten_mlops.serving.workers import reuse_port_supported, run_workers

    if log_level not in LOG_LEVELS:
        raise _fail(f"--log-level must be one of {', '.join(LOG_LEVELS)}")
    settings = get_settings()
    try:
        token_config(settings)  # refuse an insecure configuration before any worker starts
        check_signing_key(settings)
    except InsecureConfigError as exc:
        raise _fail(str(exc)) from None
    for warning in worker_warnings(workers, settings.redis_url, settings.model_poll_seconds):
        err_console.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    app = "rakuten_mlops.serving.app:create_app"
    host, port = host or settings.serve_host, port or settings.serve_port
    # proxy_headers off: the app alone decides whose X-Forwarded-For to believe (RAKUTEN_TRUSTED_PROXIES).
    options: dict[str, Any] = {
        "factory": True, "log_level": log_level, "access_log": access_log, "proxy_headers": False,
    }  # fmt: skip
    if workers > 1 and reuse_port_supported():
        try:
            run_workers(app, host, port, workers, **options)
        except OSError as exc:
            raise _fail(str(exc)) from None
        return
    # One process, or a system without SO_REUSEPORT: uvicorn's workers share one socket.
    uvicorn.run(app, host=host, port=port, workers=workers, **options)


def worker_warnings(workers: int, redis_url: str | None, poll_seconds: float) -> list[str]:
    """What does not span worker processes in this configuration (each worker is its own process)."""
    if workers <= 1:
        return []
    out = []
    if not redis_url:
        out.append(
            f"login limits and predict quotas are kept per worker without RAKUTEN_REDIS_URL: "
            f"a client may get up to {workers}x the configured limits"
        )
    if poll_seconds <= 0:
        out.append(
            "RAKUTEN_MODEL_POLL_SECONDS is 0: POST /v1/model/reload reaches only the worker that "
            "answers it; the others keep their model until restarted"
        )
    return out


def _sessions():  # type: ignore[no-untyped-def]
    from rakuten_mlops.appdb import create_schema, make_engine, session_factory

    engine = make_engine(get_settings().app_database_url)
    create_schema(engine)
    return session_factory(engine)


@users_app.command("create")
def users_create(
    name: Annotated[str, typer.Argument(help="username (3-64 letters, digits, _ . @ -)")],
    role: Annotated[str, typer.Option(help="predictor or admin")] = "predictor",
    password: Annotated[
        str | None, typer.Option(help="password (prompted, hidden, when omitted; avoid it in shell history)")
    ] = None,
) -> None:
    """Create a user in the app database."""
    from rakuten_mlops.appdb import session_scope
    from rakuten_mlops.serving.users import UserError, create_user

    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with session_scope(_sessions()) as session:
            create_user(session, name, password, role)
    except UserError as exc:
        raise _fail(str(exc)) from None
    console.print(f"created user [bold]{name}[/] with role {role}")


@users_app.command("list")
def users_list() -> None:
    """List users, their role and whether they are disabled."""
    from rakuten_mlops.appdb import session_scope
    from rakuten_mlops.serving.users import list_users

    table = Table("username", "role", "disabled", "created")
    with session_scope(_sessions()) as session:
        for u in list_users(session):
            table.add_row(u.username, u.role, "yes" if u.disabled else "no", f"{u.created_at:%Y-%m-%d %H:%M}")
    console.print(table)


@users_app.command("disable")
def users_disable(name: Annotated[str, typer.Argument(help="username")]) -> None:
    """Disable a user: logins fail and tokens stop working (within the API's auth cache time)."""
    from rakuten_mlops.appdb import session_scope
    from rakuten_mlops.serving.users import UserError, set_disabled

    try:
        with session_scope(_sessions()) as session:
            set_disabled(session, name, True)
    except UserError as exc:
        raise _fail(str(exc)) from None
    console.print(f"disabled user [bold]{name}[/]")


def traffic_command(
    url: Annotated[
        str, typer.Option(help="base URL of the API (only this host is contacted)")
    ] = "http://127.0.0.1:8000",
    token: Annotated[str | None, typer.Option(envvar="RAKUTEN_API_TOKEN", help="bearer token")] = None,
    rate: Annotated[float, typer.Option(min=0, help="requests per second; 0 = as fast as possible")] = 20.0,
    duration: Annotated[float, typer.Option(min=0.1, max=3600, help="seconds to run")] = 10.0,
    concurrency: Annotated[int, typer.Option(min=1, max=512, help="requests in flight")] = 4,
    data_dir: Annotated[
        Path | None, typer.Option(help="challenge-layout folder (default: generated listings)")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="write the JSON report here")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=2000, help="listings per request")] = 1,
    max_requests: Annotated[int, typer.Option(min=1, help="stop after this many requests")] = 100_000,
    mode: Annotated[str, typer.Option(help="api (this API) or mlflow (`mlflow models serve`)")] = "api",
    images: Annotated[
        bool, typer.Option("--images/--no-images", help="send images found in --data-dir")
    ] = False,
) -> None:
    """Send realistic listings to a prediction server and report throughput, latency and errors."""
    from rakuten_mlops.simulation.loadgen.traffic import (
        TrafficConfig,
        build_payloads,
        format_report,
        load_listings,
        run_traffic,
    )

    if mode not in ("api", "mlflow"):
        raise _fail("--mode must be 'api' or 'mlflow'")
    if mode == "api" and not token:
        raise _fail("--token is required (POST /v1/auth/token), or set RAKUTEN_API_TOKEN")
    cfg = TrafficConfig(
        url=url, token=token, rate=rate, duration_s=duration, concurrency=concurrency,
        max_requests=max_requests, batch_size=batch_size, mode=mode,  # type: ignore[arg-type]
    )  # fmt: skip
    listings = load_listings(data_dir, limit=2000, with_images=images)
    report = asyncio.run(run_traffic(cfg, build_payloads(listings, batch_size, cfg.mode)))
    console.print(format_report(report), highlight=False)
    if out is not None:
        write_json_atomic(out, report, sort_keys=False)
        console.print(f"report written to {out}")
