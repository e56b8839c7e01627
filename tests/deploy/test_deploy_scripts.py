"""deploy/scripts: k8s-apply.sh driven against a fake kubectl (what it applies, which secrets it
creates and how, what it refuses), and shellcheck on every script."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from deploycheck import DEPLOY_DIR

FAKE_KUBECTL = """#!/usr/bin/env bash
# Records every call; `get secret X` succeeds once `create secret ... X` ran (state in $FAKE_DIR).
echo "$*" >> "$FAKE_DIR/calls"
case "$*" in
  kustomize*) exec {real} "$@" ;;
  *"get secret "*) args="$*"; name="${{args##*get secret }}"; [[ -e "$FAKE_DIR/secret-${{name%% *}}" ]] ;;
  *"create secret "*) set -- $*; while [[ "$1" != secret ]]; do shift; done; touch "$FAKE_DIR/secret-$3" ;;
  "config current-context") echo fake-cluster ;;
  *) exit 0 ;;
esac
"""


def run_apply(tmp_path: Path, tool, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(FAKE_KUBECTL.format(real=tool("kubectl")))
    kubectl.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "KUBECTL": str(kubectl), "FAKE_DIR": str(tmp_path), "HOME": str(tmp_path)}
    result = subprocess.run(
        ["bash", str(DEPLOY_DIR / "scripts" / "k8s-apply.sh"), *args], env=env, capture_output=True, text=True
    )
    calls_file = tmp_path / "calls"
    return result, calls_file.read_text().splitlines() if calls_file.exists() else []


def test_apply_dev_creates_secrets_applies_and_waits(tmp_path: Path, tool) -> None:
    result, calls = run_apply(tmp_path, tool, "dev", "--create-dev-secrets")
    assert result.returncode == 0, result.stderr
    overlay = str(DEPLOY_DIR / "k8s" / "overlays" / "dev")
    assert f"apply -k {overlay}" in calls
    for name in ("rakuten-postgres", "rakuten-mlflow", "rakuten-api"):
        assert any(
            c.startswith(f"-n rakuten-dev create secret generic {name} --from-env-file=") for c in calls
        )
    assert any(c.startswith("-n rakuten-dev create secret tls rakuten-api-tls") for c in calls)
    waits = [c for c in calls if " rollout status " in c]
    expected = [
        "statefulset/postgres",
        "deployment/mlflow",
        "deployment/rakuten-api",
        "deployment/prometheus",
    ]
    assert [w.split()[4] for w in waits] == expected
    assert calls.index(f"apply -k {overlay}") < calls.index(waits[0])
    assert not any("--from-literal" in c for c in calls), "secrets must not appear on a command line"


def test_apply_refuses_without_secrets(tmp_path: Path, tool) -> None:
    result, calls = run_apply(tmp_path, tool, "dev")
    assert result.returncode != 0
    assert "kubectl create secret" in result.stderr and "--create-dev-secrets" in result.stderr
    assert not any(c.startswith("apply -k") for c in calls)


def test_apply_prod_needs_confirmation_and_never_invents_secrets(tmp_path: Path, tool) -> None:
    result, _ = run_apply(tmp_path, tool, "prod")
    assert result.returncode != 0 and "--yes" in result.stderr
    result, _ = run_apply(tmp_path, tool, "prod", "--yes", "--create-dev-secrets")
    assert result.returncode != 0 and "development clusters" in result.stderr


def test_apply_rejects_an_unknown_overlay(tmp_path: Path, tool) -> None:
    result, _ = run_apply(tmp_path, tool, "staging")
    assert result.returncode != 0 and "no overlay 'staging'" in result.stderr


SCRIPTS = [*sorted((DEPLOY_DIR / "scripts").glob("*.sh")), DEPLOY_DIR / "postgres" / "init-databases.sh"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts_pass_shellcheck(script: Path, tool) -> None:
    result = subprocess.run([tool("shellcheck"), str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
