"""`rakuten-mlops ui`: start the Streamlit app (registered by the main CLI)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

# Own consoles, not cli_support's: that module imports the pipeline code, which the UI must not import.
console = Console()
err_console = Console(stderr=True)
# The ASGI app: Streamlit's pages (app.py) plus the route that sets the HTTP-only session cookie.
APP_PATH = Path(__file__).with_name("server.py")


def streamlit_argv(host: str, port: int) -> list[str]:
    """The `streamlit run` command line of the app (headless, no telemetry, no file watching)."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP_PATH),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",
    ]  # fmt: skip


def ui_command(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port")] = 8501,
    api_url: Annotated[
        str | None,
        typer.Option(
            "--api-url", help="prediction API (default RAKUTEN_API_URL, else http://127.0.0.1:8000)"
        ),
    ] = None,
) -> None:
    """Start the web app: predict, batch, models, monitoring and data pages on the prediction API."""
    if importlib.util.find_spec("streamlit") is None:
        err_console.print(
            "[bold red]error:[/] `rakuten-mlops ui` needs the 'ui' extra: pip install 'rakuten-mlops[ui]'"
        )
        raise typer.Exit(code=2)
    from rakuten_mlops.api_client import configured_api_url
    from rakuten_mlops.config import get_settings

    env = dict(os.environ)
    if api_url:
        env["RAKUTEN_API_URL"] = api_url
    target = api_url or configured_api_url(get_settings())
    console.print(f"UI on http://{host}:{port} (prediction API: {target}; Ctrl+C to stop)", highlight=False)
    argv = streamlit_argv(host, port)
    if os.name == "posix":
        # Become streamlit: signals (Ctrl+C, a container's SIGTERM) reach it directly, no orphan left.
        sys.stdout.flush()
        os.execve(argv[0], argv, env)
    try:
        code = subprocess.call(argv, env=env)
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code=code)
