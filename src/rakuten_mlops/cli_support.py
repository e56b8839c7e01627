"""CLI plumbing: friendly errors (no tracebacks for known failures) and Rich progress bars."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rakuten_mlops.pipelines.progress import Advance

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def _known_errors() -> tuple[type[BaseException], ...]:
    from rakuten_mlops.config import ConfigError
    from rakuten_mlops.data.schema import LayoutError
    from rakuten_mlops.features.images import MissingExtraError
    from rakuten_mlops.training.registry import RegistryError

    return (ConfigError, LayoutError, MissingExtraError, RegistryError, FileNotFoundError, ValueError)


def friendly_errors(func: F) -> F:
    """Print known errors as one clear message and exit with code 2 instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except _known_errors() as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
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
