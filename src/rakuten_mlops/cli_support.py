"""CLI plumbing: friendly errors (no tracebacks for known failures), Rich progress bars and the
options every command group shares (`--params`, `--json`)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rakuten_mlops.config import Params, get_settings, load_params
from rakuten_mlops.errors import RakutenError
from rakuten_mlops.pipelines.progress import Advance

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

ParamsOpt = Annotated[
    Path | None, typer.Option("--params", help="params.yaml (default: ./params.yaml if present)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON")]
StreamsOpt = Annotated[
    Path | None, typer.Option("--streams-dir", help="streams folder (default <home>/streams)")
]


def resolve_params(path: Path | None) -> Params:
    """`--params` when given, else the settings' params file (``./params.yaml`` or defaults)."""
    return load_params(path) if path is not None else get_settings().resolve_params()


def print_json(data: Any) -> None:
    console.print_json(json.dumps(data, default=str))


def _is_user_error(exc: BaseException) -> bool:
    """Whether `exc` is reported as one message rather than a traceback.

    Yes for the project's own errors (`RakutenError`), invalid settings (pydantic) and a path that
    does not exist. Anything else, a `ValueError` from inside pandas or scikit-learn included, is a
    bug and keeps its traceback.
    """
    from pydantic import ValidationError

    return isinstance(exc, RakutenError | ValidationError | FileNotFoundError)


def friendly_errors(func: F) -> F:
    """Print a user error as one clear message and exit with code 2; a bug keeps its traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            if not _is_user_error(exc):
                raise
            # escaped: an extra (`rakuten-mlops[spark]`) or a master (`local[*]`) in a message is not markup
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


class RichProgress:
    """`pipelines.progress.Progress` shown as Rich progress bars."""

    def __init__(self, quiet: bool = False) -> None:
        self._bars = Progress(
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=quiet,
            transient=False,
        )

    def __enter__(self) -> RichProgress:
        self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bars.stop()

    def task(self, description: str, total: int | None) -> Advance:
        task_id = self._bars.add_task(description, total=total)
        return lambda n: self._bars.advance(task_id, n)

    def log(self, message: str) -> None:
        self._bars.console.print(message, highlight=False, markup=False)
