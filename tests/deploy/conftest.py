"""Fixtures of the deployment checks: the deploycheck package (deploy/deploycheck), the
external tools (skipped with an install hint when absent, failing in CI), rendered overlays, and writable
copies of deploy/ for the broken-copy tests."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.services import unavailable

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy"
sys.path.insert(0, str(DEPLOY_DIR))

from deploycheck import kube, tools  # noqa: E402

# Tools of the dev extra must be there; system tools may be missing on a developer's machine.
OPTIONAL_TOOLS = {"kubectl", "promtool", "shellcheck"}


@pytest.fixture(scope="session")
def tool() -> Callable[[str], str]:
    """tool(name) -> path; system tools go through `unavailable`, dev-extra tools always fail."""

    def get(name: str) -> str:
        path = tools.find_tool(name)
        if path is None:
            message = f"{name} not found: {tools.INSTALL_HINTS[name]}"
            if name in OPTIONAL_TOOLS:
                unavailable(message)
            pytest.fail(message)
        return path

    return get


@pytest.fixture(scope="session")
def rendered(tool: Callable[[str], str]) -> dict[str, str]:
    """`kubectl kustomize` output of each overlay, rendered once per session."""
    tool("kubectl")
    return {o: kube.render_overlay(DEPLOY_DIR / "k8s" / "overlays" / o) for o in ("dev", "prod")}


@pytest.fixture(scope="session")
def docs(rendered: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    return {o: kube.load_documents(text) for o, text in rendered.items()}


@pytest.fixture
def deploy_copy(tmp_path: Path) -> Path:
    """A writable copy of deploy/ (relative references between its folders keep working)."""
    target = tmp_path / "deploy"
    shutil.copytree(DEPLOY_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target
