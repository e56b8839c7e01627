"""Commands that live with their capability (serving, monitoring, orchestration, UI).

Each group needs an optional extra; when it is missing, the command still exists and says
which extra to install instead of failing at start-up.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import typer
from rich.markup import escape

from rakuten_mlops.cli_support import err_console

# (command name, module, attribute, extra, kind): kind "command" for a function, "group" for a Typer app.
EXTRAS: list[tuple[str, str, str, str, str]] = [
    ("serve", "rakuten_mlops.serving.cli", "serve_command", "serve", "command"),
    ("users", "rakuten_mlops.serving.cli", "users_app", "serve", "group"),
    ("traffic", "rakuten_mlops.serving.cli", "traffic_command", "serve", "command"),
    ("streams", "rakuten_mlops.simulation.cli", "streams_app", "monitor", "group"),
    ("drift", "rakuten_mlops.cli_monitoring", "drift_command", "monitor", "command"),
    ("monitor", "rakuten_mlops.cli_monitoring", "monitor_app", "monitor", "group"),
    ("ui", "rakuten_mlops.ui.cli", "ui_command", "ui", "command"),
    ("airflow", "rakuten_mlops.orchestration.cli", "airflow_app", "airflow", "group"),
]


def _missing(name: str, extra: str, error: ImportError) -> Callable[..., Any]:
    def command(ctx: typer.Context) -> None:
        err_console.print(
            f"[bold red]error:[/] `rakuten-mlops {name}` needs the '{extra}' extra: "
            + escape(f"pip install 'rakuten-mlops[{extra}]' ({error})")
        )
        raise typer.Exit(code=2)

    command.__doc__ = f"(needs the '{extra}' extra: pip install 'rakuten-mlops[{extra}]')"
    return command


def register_extras(app: typer.Typer) -> None:
    """Attach each capability's commands to the main app."""
    for name, module, attr, extra, kind in EXTRAS:
        try:
            obj = getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            if exc.name == module:
                continue  # capability not built in this checkout
            app.command(name, context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
                _missing(name, extra, exc)
            )
            continue
        if kind == "group":
            app.add_typer(obj, name=name)
        else:
            app.command(name)(obj)
