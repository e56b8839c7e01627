"""docker compose: the policy check, what each service must be, the .env template and its
generator, and the policy shown failing on broken copies."""

from __future__ import annotations

import base64
import copy
import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploycheck import DEPLOY_DIR, REPO_ROOT, compose, secrets

from tests.helpers import constraint_pin

ENV_REFERENCE_RE = re.compile(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)(?::?[-?][^}]*)?\}")


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY_DIR / "compose.yaml").read_text())


def test_compose_passes_the_policy(data: dict[str, Any]) -> None:
    assert compose.compose_problems(data) == []


def test_the_whole_system_is_there(data: dict[str, Any]) -> None:
    assert set(data["services"]) >= {
        "postgres", "redis", "mlflow", "airflow-init", "airflow-apiserver", "airflow-scheduler",
        "airflow-dag-processor", "airflow-worker", "api", "ui", "prometheus", "grafana",
    }  # fmt: skip
    images = {name: s["image"] for name, s in data["services"].items()}
    assert images["postgres"].startswith("postgres:16.")
    assert images["mlflow"].endswith(f":{constraint_pin('mlflow')}")


def test_mlflow_server_runs_on_postgres_with_proxied_artifacts(data: dict[str, Any]) -> None:
    command = data["services"]["mlflow"]["command"]
    assert command[:2] == ["mlflow", "server"]
    assert any(
        a.startswith("--backend-store-uri=postgresql+psycopg2://mlflow:${MLFLOW_DB_PASSWORD") for a in command
    )
    assert "--artifacts-destination=/mlartifacts" in command
    assert "--serve-artifacts" in command
    assert any(a.startswith("--allowed-hosts=") and "mlflow:5000" in a for a in command)


def test_airflow_uses_celery_redis_and_its_own_database(data: dict[str, Any]) -> None:
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker"):
        env = compose.environment(data["services"][name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres:5432/airflow")
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        assert compose.dependencies(data["services"][name])["postgres"] == "service_healthy"
    commands = {
        name: data["services"][name]["command"] for name in data["services"] if name.startswith("airflow-")
    }
    assert commands["airflow-apiserver"][:2] == ["airflow", "api-server"]
    assert commands["airflow-scheduler"] == ["airflow", "scheduler"]
    assert commands["airflow-dag-processor"] == ["airflow", "dag-processor"]
    assert commands["airflow-worker"] == ["airflow", "celery", "worker"]


AIRFLOW_SERVICES = ("airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                    "airflow-worker")  # fmt: skip


def test_airflow_init_creates_the_pool_of_the_training_steps_after_migrating(data: dict[str, Any]) -> None:
    from rakuten_mlops.orchestration.home import POOL

    command = data["services"]["airflow-init"]["command"]
    assert command[:2] == ["bash", "-c"]
    lines = [line.strip() for line in command[2].splitlines()]
    assert lines[0] == "set -euo pipefail"  # a failed migration or pool stops the stack's start
    migrate = lines.index("airflow db migrate")
    pool = next(i for i, line in enumerate(lines) if line.startswith("airflow pools set "))
    assert migrate < pool
    name, slots = lines[pool].split()[3:5]
    assert (name, slots) == (POOL, "1")  # the pool the DAGs' training steps use, one slot
    # No Airflow process starts before the pool exists (the worker waits for the API server).
    for name in AIRFLOW_SERVICES[1:]:
        waits = compose.dependencies(data["services"][name])
        while "airflow-init" not in waits and "airflow-apiserver" in waits:
            waits = compose.dependencies(data["services"]["airflow-apiserver"])
        assert waits["airflow-init"] == "service_completed_successfully", name


def test_airflow_task_slots_come_from_env_sized_to_the_cores(data: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:  # every Airflow process gets the same values
        env = compose.environment(data["services"][name])
        assert env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "${AIRFLOW_WORKER_CONCURRENCY:-2}"
        assert env["AIRFLOW__CORE__PARALLELISM"] == "${AIRFLOW_PARALLELISM:-2}"
    example = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", (REPO_ROOT / ".env.example").read_text(), re.M))
    assert example["AIRFLOW_WORKER_CONCURRENCY"] == example["AIRFLOW_PARALLELISM"] == "2"


def test_every_airflow_process_runs_the_same_image(data: dict[str, Any]) -> None:
    """One rakuten-mlops version everywhere: the DAG files and the steps they call come from it."""
    services = data["services"]
    assert len({services[name]["image"] for name in AIRFLOW_SERVICES}) == 1
    assert {services[name]["build"]["dockerfile"] for name in AIRFLOW_SERVICES} == {
        "deploy/docker/worker.Dockerfile"
    }


def test_the_app_gets_the_settings_it_reads(data: dict[str, Any]) -> None:
    api = compose.environment(data["services"]["api"])
    assert api["RAKUTEN_ENV"] == "production"
    assert api["RAKUTEN_MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert api["RAKUTEN_DATABASE_URL"].startswith("postgresql+psycopg2://app_rw:${APP_RW_DB_PASSWORD")
    assert api["RAKUTEN_JWT_SECRET"].startswith("${RAKUTEN_JWT_SECRET:?")
    assert compose.environment(data["services"]["ui"])["RAKUTEN_API_URL"] == "http://api:8000"
    assert compose.environment(data["services"]["airflow-worker"])["RAKUTEN_API_URL"] == "http://api:8000"


def test_mounted_files_exist(data: dict[str, Any]) -> None:
    for service in data["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (DEPLOY_DIR / source).exists(), source


def test_every_variable_is_in_env_example(data: dict[str, Any]) -> None:
    used = set(ENV_REFERENCE_RE.findall((DEPLOY_DIR / "compose.yaml").read_text()))
    example = (REPO_ROOT / ".env.example").read_text()
    defined = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", example, re.M))
    assert used - {"RAKUTEN_MODEL_NAME"} <= defined, sorted(used - defined)


def test_env_example_holds_placeholders_only() -> None:
    for line in (REPO_ROOT / ".env.example").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and compose.SECRET_KEY_RE.search(key) and not compose.NOT_A_SECRET_RE.search(key):
            assert value == "change-me", line


# ------------------------------------------------------------------ broken copies fail


def broken(data: dict[str, Any], service: str, **changes: Any) -> list[str]:
    bad = copy.deepcopy(data)
    for key, value in changes.items():
        if value is None:
            bad["services"][service].pop(key, None)
        else:
            bad["services"][service][key] = value
    return compose.compose_problems(bad)


def test_a_literal_password_is_refused(data: dict[str, Any]) -> None:
    env = {**compose.environment(data["services"]["postgres"]), "POSTGRES_PASSWORD": "hunter22"}
    assert any(
        "POSTGRES_PASSWORD must come from the environment" in p
        for p in broken(data, "postgres", environment=env)
    )


def test_a_literal_password_in_a_url_is_refused(data: dict[str, Any]) -> None:
    env = {**compose.environment(data["services"]["api"]),
           "RAKUTEN_DATABASE_URL": "postgresql+psycopg2://app:hunter22@postgres:5432/app"}  # fmt: skip
    assert any("literal password in a URL" in p for p in broken(data, "api", environment=env))


def test_a_database_url_without_driver_is_refused(data: dict[str, Any]) -> None:
    command = [
        a.replace("postgresql+psycopg2://", "postgresql://") for a in data["services"]["mlflow"]["command"]
    ]
    assert any("postgresql+psycopg2://" in p for p in broken(data, "mlflow", command=command))


def test_no_driverless_database_url_anywhere() -> None:
    """A bare postgresql:// means psycopg 3 under SQLAlchemy 2.1; the images ship psycopg2."""
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{n}"
        for path in secrets.text_files([DEPLOY_DIR, REPO_ROOT / ".env.example"])
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if compose.DRIVERLESS_POSTGRES_RE.search(line) and path.suffix not in {".py", ".md"}
    ]
    assert offenders == []


def test_a_missing_healthcheck_is_refused(data: dict[str, Any]) -> None:
    assert "service redis: no healthcheck" in broken(data, "redis", healthcheck=None)


def test_an_unpinned_image_is_refused(data: dict[str, Any]) -> None:
    assert any("not pinned" in p for p in broken(data, "grafana", image="grafana/grafana:latest"))
    assert any("not pinned" in p for p in broken(data, "redis", image="redis"))


def test_waiting_only_for_a_start_is_refused(data: dict[str, Any]) -> None:
    problems = broken(data, "ui", depends_on=["api"])
    assert any("condition service_healthy" in p for p in problems)


def test_a_port_on_every_interface_is_refused(data: dict[str, Any]) -> None:
    assert any("every interface" in p for p in broken(data, "api", ports=["8000:8000"]))


# ------------------------------------------------------------------ .env generator


def test_gen_env_replaces_every_placeholder(tmp_path: Path) -> None:
    out = tmp_path / ".env"
    script = DEPLOY_DIR / "scripts" / "gen-env.sh"
    subprocess.run([str(script), str(REPO_ROOT / ".env.example"), str(out)], check=True, capture_output=True)
    text = out.read_text()
    assert "=change-me" not in text
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    values = dict(line.split("=", 1) for line in text.splitlines() if re.match(r"^[A-Z]", line))
    assert len(base64.urlsafe_b64decode(values["AIRFLOW_FERNET_KEY"])) == 32
    assert re.fullmatch(r"[0-9a-f]{48}", values["POSTGRES_PASSWORD"])
    assert values["POSTGRES_PASSWORD"] != values["APP_DB_PASSWORD"]
    again = subprocess.run(
        [str(script), str(REPO_ROOT / ".env.example"), str(out)], capture_output=True, text=True
    )
    assert again.returncode != 0 and "--force" in again.stderr
    assert out.read_text() == text
