"""The one place that decides what a test does when something it needs is absent.

A service (PostgreSQL, Redis), a system tool (chromium, chromedriver, promtool, kubectl,
shellcheck), an optional extra or the real rows in `../shared/rakuten` may be missing on a
developer's machine: the test then skips with the reason. CI exports
`RAKUTEN_REQUIRE_SERVICES=1` (see `.ci/run`): there the same test fails with the same reason,
so a suite cannot pass by skipping what it was meant to check.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest

REQUIRE_ENV = "RAKUTEN_REQUIRE_SERVICES"


def services_required() -> bool:
    """True when the environment asks that missing services fail the test (CI)."""
    return os.environ.get(REQUIRE_ENV, "").strip() not in ("", "0")


def unavailable(reason: str) -> NoReturn:
    """Skip the running test with `reason`, or fail it when RAKUTEN_REQUIRE_SERVICES is set."""
    if services_required():
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1: required here)", pytrace=False)
    pytest.skip(reason)


def require(condition: object, reason: str) -> None:
    """Carry on when `condition` holds; otherwise skip or fail with `reason` (see `unavailable`)."""
    if not condition:
        unavailable(reason)


def require_module(name: str, reason: str) -> ModuleType:
    """Import `name`; skip or fail with `reason` when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        unavailable(reason)
