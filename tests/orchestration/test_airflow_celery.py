"""`rakuten_training` through a real Celery worker: PostgreSQL metadata database, Redis broker.

The test starts, and stops after, the processes of a distributed Airflow on this machine: the
execution API server (workers report task states and fetch XComs through it) and one Celery
worker. The DAG run itself is driven by `dag.test(use_executor=True)`, which plays the
scheduler: it queues each ready task on the CeleryExecutor, i.e. sends it through Redis to the
worker, and waits for the result. Everything lives in a database created for the test (dropped
after) and an empty Redis database number (flushed after).
"""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers import claim_empty_redis_db, free_port, make_settings, port_open
from tests.orchestration.airflow_helpers import (
    DAGS_FOLDER,
    clean_environ,
    run_dags,
    task_states,
    write_test_params,
)
from tests.services import require, require_module

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]
PG_HOST, PG_PORT, REDIS_PORT = "127.0.0.1", 5432, 6379


@dataclass
class CeleryAirflow:
    env: dict[str, str]
    home: Path
    logs: Path


def pg_admin(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "airflow", *args], env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped with all its children
        )  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    """Return once `ready()`; fail with the end of `log` if `proc` exits or 120 s pass."""
    deadline = time.monotonic() + 120
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            state = f"exited ({proc.returncode})" if proc.poll() is not None else "is not ready after 120 s"
            pytest.fail(f"the {what} {state}:\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(1)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def worker_finished(logs: Path, expected: int, timeout_s: float = 30) -> tuple[int, str]:
    """Celery tasks the worker reports as succeeded (it logs the last one just after the run ends)."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = (logs / "worker.log").read_text(errors="replace")
        done = len(re.findall(r"Task execute_workload\[[^\]]+\] succeeded", text))
        if done >= expected or time.monotonic() > deadline:
            return done, text
        time.sleep(0.5)


@pytest.fixture
def celery_airflow(tmp_path: Path) -> Iterator[CeleryAirflow]:
    for port, name in ((PG_PORT, "PostgreSQL"), (REDIS_PORT, "Redis")):
        require(port_open(PG_HOST, port), f"{name} is not answering on {PG_HOST}:{port}")
    require_module("psycopg2", "the PostgreSQL driver (serve extra) is not installed")
    require_module("redis", "the Redis client (airflow extra) is not installed")
    missing = [m for m in ("airflow.providers.celery", "asyncpg") if importlib.util.find_spec(m) is None]
    assert not missing, f"the airflow extra must bring {missing}: Airflow 3 needs asyncpg for PostgreSQL"
    executor = "airflow.providers.celery.executors.celery_executor_utils"
    probe = subprocess.run(
        [sys.executable, "-c", f"import {executor}"], capture_output=True, text=True, check=False
    )
    assert probe.returncode == 0, (
        f"the Celery executor does not import (Celery >= 5.7?):\n{probe.stderr[-2000:]}"
    )
    database, api_port = f"rakuten_airflow_{secrets.token_hex(4)}", free_port()
    broker_db = claim_empty_redis_db(PG_HOST, REDIS_PORT)
    pg_url = f"postgresql+psycopg2://postgres@{PG_HOST}:{PG_PORT}/{database}"
    home, logs = tmp_path / "home", tmp_path / "logs"
    logs.mkdir()
    env = clean_environ(
        RAKUTEN_HOME=str(home),
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS_FOLDER),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{api_port}/execution/",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=pg_url,
        AIRFLOW__CELERY__BROKER_URL=f"redis://{PG_HOST}:{REDIS_PORT}/{broker_db}",
        AIRFLOW__CELERY__RESULT_BACKEND=f"db+{pg_url}",
        AIRFLOW__CELERY__WORKER_CONCURRENCY="1",
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(64),  # shared by every process
        AIRFLOW__API__SECRET_KEY=secrets.token_urlsafe(32),
    )
    pg_admin(f'CREATE DATABASE "{database}"')
    procs: list[subprocess.Popen[bytes]] = []
    try:
        migrate = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert migrate.returncode == 0, (migrate.stdout + migrate.stderr)[-4000:]
        pool = subprocess.run(  # as docs/airflow.md says: the training steps' one-slot pool
            [sys.executable, "-m", "airflow", "pools", "set", "rakuten_pipeline", "1", "work folder"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert pool.returncode == 0, (pool.stdout + pool.stderr)[-4000:]
        api_log = logs / "api-server.log"
        api_args = ["api-server", "--apps", "execution", "--port", str(api_port), "--workers", "1"]
        procs.append(start(api_args, env, api_log))
        worker_args = ["celery", "worker", "--skip-serve-logs", "--without-gossip", "--without-mingle"]
        procs.append(start(worker_args, env, logs / "worker.log"))
        health = f"http://127.0.0.1:{api_port}/execution/health"
        wait_until(lambda: answers(health), procs[0], api_log, "API server")
        worker_log = logs / "worker.log"
        wait_until(
            lambda: " ready." in worker_log.read_text(errors="replace"), procs[1], worker_log, "worker"
        )
        yield CeleryAirflow(env, home, logs)
    finally:
        for proc in procs:
            stop(proc)
        pg_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        import redis

        redis.Redis(host=PG_HOST, port=REDIS_PORT, db=broker_db).flushdb()


def test_training_dag_runs_on_a_celery_worker_and_registers_a_model(
    celery_airflow: CeleryAirflow, tmp_path: Path
) -> None:
    from rakuten_mlops.lifecycle.registry import client
    from rakuten_mlops.simulation.core.sample import generate_sample

    generate_sample(tmp_path / "sample", n_per_class=16, seed=11, with_images=False)
    conf = {
        "data_dir": str(tmp_path / "sample"),
        "params_path": str(write_test_params(tmp_path / "params.yaml")),
    }
    spec = {"runs": [{"dag_id": "rakuten_training", "conf": conf, "use_executor": True}]}
    out = run_dags(celery_airflow.env, spec, tmp_path / "runner", timeout_s=480)
    run = out["runs"][0]
    assert run["state"] == "success", (run["tasks"], worker_finished(celery_airflow.logs, 0)[1][-4000:])
    assert task_states(run) == {"success"}
    finished, _ = worker_finished(celery_airflow.logs, expected=len(run["tasks"]))
    assert finished == len(run["tasks"]) == 11  # every task ran on the Celery worker
    settings = make_settings(celery_airflow.home)
    versions = client(settings).search_model_versions(f"name='{settings.model_name}'")
    assert [str(v.version) for v in versions] == [run["xcom"]["register"]["version"]] == ["1"]
