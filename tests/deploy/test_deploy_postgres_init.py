"""deploy/postgres/init-databases.sh against a real PostgreSQL (127.0.0.1:5432, trust auth):
one role and one database per name, idempotent, refusing a missing password."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest
from deploycheck import DEPLOY_DIR

from tests.helpers import port_open
from tests.services import require

SCRIPT = DEPLOY_DIR / "postgres" / "init-databases.sh"
pytestmark = pytest.mark.postgres


def postgres_answers() -> bool:
    return port_open("127.0.0.1", 5432) and shutil.which("psql") is not None


@pytest.fixture
def names():
    require(postgres_answers(), "needs PostgreSQL on 127.0.0.1:5432 and psql")
    suffix = uuid.uuid4().hex[:8]
    created = [f"rk_app_{suffix}", f"rk_mlflow_{suffix}"]
    yield created
    for name in created:
        psql(f'DROP DATABASE IF EXISTS "{name}"')
        psql(f'DROP ROLE IF EXISTS "{name}"')


def psql(sql: str) -> str:
    return subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-Atc", sql],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def run_script(names: list[str], **passwords: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PGHOST": "127.0.0.1",
        "POSTGRES_USER": "postgres",
        "RAKUTEN_DATABASES": " ".join(names),
    }
    env.update(passwords)
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True)


def test_creates_one_owned_database_per_name_and_is_idempotent(names: list[str]) -> None:
    passwords = {f"{n.upper()}_DB_PASSWORD": "p'w\"d " + n for n in names}
    for _ in range(2):
        result = run_script(names, **passwords)
        assert result.returncode == 0, result.stderr
    for name in names:
        assert psql(f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{name}'") == name
        assert psql(f"SELECT rolcanlogin FROM pg_roles WHERE rolname = '{name}'") == "t"
        assert psql(f"SELECT has_database_privilege('pg_monitor', '{name}', 'CONNECT')") == "f"


def test_refuses_a_missing_password(names: list[str]) -> None:
    result = run_script(names[:1])
    assert result.returncode != 0
    assert f"{names[0].upper()}_DB_PASSWORD is not set" in result.stderr
    assert psql(f"SELECT count(*) FROM pg_roles WHERE rolname = '{names[0]}'") == "0"


def test_refuses_an_unsafe_name() -> None:
    result = run_script(["app; DROP TABLE x"], **{"APP_DB_PASSWORD": "x"})
    assert result.returncode != 0 and "identifier" in result.stderr


def test_service_roles_get_row_access_but_no_ddl(names: list[str]) -> None:
    db = names[0]
    rw, ro = f"{db}_rw", f"{db}_ro"
    passwords = {f"{n.upper()}_DB_PASSWORD": "pw-" + n for n in [db, rw, ro]}
    env_roles = {"RAKUTEN_DATABASE_ROLES": f"{db}:{rw}:rw {db}:{ro}:ro"}
    try:
        result = run_script([db], **passwords, **env_roles)
        assert result.returncode == 0, result.stderr
        # The owner creates a table afterwards (a migration): default privileges cover it.
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", db, "-d", db, "-c", "CREATE TABLE t (id serial PRIMARY KEY)"],
            check=True, capture_output=True,
        )  # fmt: skip

        def can(role: str, what: str) -> str:
            return subprocess.run(
                ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-Atc",
                 f"SELECT has_table_privilege('{role}', 't', '{what}')"],
                capture_output=True, text=True, check=True,
            ).stdout.strip()  # fmt: skip

        assert [can(rw, w) for w in ("SELECT", "INSERT", "UPDATE", "DELETE")] == ["t"] * 4
        assert [can(ro, w) for w in ("SELECT", "INSERT", "DELETE")] == ["t", "f", "f"]
        ddl = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", rw, "-d", db, "-c", "CREATE TABLE evil (x int)"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert ddl.returncode != 0 and "permission denied" in ddl.stderr
        assert run_script([db], **passwords, **env_roles).returncode == 0  # idempotent
    finally:
        psql(f'DROP DATABASE IF EXISTS "{db}"')
        for role in (rw, ro):
            psql(f'DROP ROLE IF EXISTS "{role}"')


def test_refuses_a_service_role_without_password(names: list[str]) -> None:
    db = names[0]
    result = run_script(
        [db], **{f"{db.upper()}_DB_PASSWORD": "x", "RAKUTEN_DATABASE_ROLES": f"{db}:{db}_rw:rw"}
    )
    assert result.returncode != 0 and f"{db.upper()}_RW_DB_PASSWORD is not set" in result.stderr
