"""A minimal progress interface: steps report work, callers decide how to show it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Advance = Callable[[int], None]


class Progress(Protocol):
    def task(self, description: str, total: int | None) -> Advance: ...

    def log(self, message: str) -> None: ...


class NullProgress:
    """Reports nothing (DAG tasks, tests); messages go to the standard logging module."""

    def task(self, description: str, total: int | None) -> Advance:
        return lambda n: None

    def log(self, message: str) -> None:
        import logging

        logging.getLogger("rakuten_mlops").info(message)
