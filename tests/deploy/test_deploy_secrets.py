"""No secret-like literal anywhere in deploy/ (or in .env.example), and the scanner finds
the ones planted in a broken copy."""

from __future__ import annotations

from pathlib import Path

import pytest
from deploycheck import DEPLOY_DIR, REPO_ROOT, secrets


def test_deploy_holds_no_secret() -> None:
    assert (
        secrets.scan_paths([DEPLOY_DIR, REPO_ROOT / ".env.example", REPO_ROOT / ".dockerignore"], REPO_ROOT)
        == []
    )


def test_the_scan_reads_every_kind_of_file() -> None:
    names = {p.name for p in secrets.text_files([DEPLOY_DIR])}
    assert {"compose.yaml", "api.Dockerfile", "k8s-apply.sh", "rakuten-api.json", "README.md"} <= names


@pytest.mark.parametrize(
    ("line", "what"),
    [
        ("POSTGRES_PASSWORD: hunter22", "POSTGRES_PASSWORD"),
        ("RAKUTEN_JWT_SECRET=3f9c2b7a1d", "RAKUTEN_JWT_SECRET"),
        ('  "apiKey": "AbCdEf123456"', "apiKey"),
        ("url: postgresql://app:s3cr3t@postgres:5432/app", "URL with a literal password"),
        ("-----BEGIN RSA PRIVATE KEY-----", "private key"),
        ("aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "AWS access key id"),
        ("token: ghp_" + "a" * 36, "GitHub token"),
    ],
)
def test_planted_secrets_are_found(line: str, what: str, deploy_copy: Path) -> None:
    planted = deploy_copy / "k8s" / "base" / "api" / "leak.yaml"
    planted.write_text(f"# harmless comment\n{line}\n")
    findings = secrets.scan_paths([deploy_copy], deploy_copy.parent)
    assert any(what in f and "leak.yaml:2" in f for f in findings), findings


@pytest.mark.parametrize(
    "line",
    [
        "POSTGRES_PASSWORD: change-me",
        "RAKUTEN_JWT_SECRET: ${RAKUTEN_JWT_SECRET:?set RAKUTEN_JWT_SECRET in .env}",
        'RAKUTEN_DATABASE_URL: "postgresql://app:${APP_DB_PASSWORD}@postgres:5432/app"',
        "automountServiceAccountToken: false",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE: /opt/airflow/auth/passwords.json",
        "secretName: rakuten-api-tls",
        'POSTGRES_PASSWORD="$(openssl rand -hex 24)"',
        "password = os.environ['PASSWORD']",
    ],
)
def test_references_and_placeholders_are_not_secrets(line: str) -> None:
    assert secrets.scan_text(line) == []
