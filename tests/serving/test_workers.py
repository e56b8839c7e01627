"""`rakuten-mlops serve --workers 2`: connections spread over both workers; a model reload reaches both."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _worker_of(conn: http.client.HTTPConnection, workers: list[psutil.Process], port: int) -> int | None:
    """The pid of the worker process that holds the server side of `conn`."""
    local = conn.sock.getsockname()[1]
    for proc in workers:
        for c in proc.net_connections(kind="tcp"):
            if c.laddr and c.laddr.port == port and c.raddr and c.raddr.port == local:
                return proc.pid
    return None


def _get(conn: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> dict:
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200, body
    return json.loads(body)


def test_connections_spread_over_workers_and_a_reload_reaches_both(make_settings, kit, champion, tmp_path):
    client = MlflowClient(tracking_uri=champion.tracking_uri, registry_uri=champion.tracking_uri)
    source = client.get_model_version(champion.model_name, champion.version)
    name = f"workers-test-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)

    def add_version() -> str:
        mv = client.create_model_version(name, source.source, run_id=source.run_id)
        client.set_registered_model_alias(name, "champion", mv.version)
        return str(mv.version)

    first = add_version()
    settings = make_settings(model_name=name)
    kit.add_user(settings, "root", "admin")
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "RAKUTEN_ENV": "development",
        "RAKUTEN_HOME": str(settings.home),
        "RAKUTEN_MLFLOW_TRACKING_URI": champion.tracking_uri,
        "RAKUTEN_MLFLOW_REGISTRY_URI": champion.tracking_uri,
        "RAKUTEN_MODEL_NAME": name,
        "RAKUTEN_JWT_SECRET": kit.JWT_SECRET,
        "RAKUTEN_MODEL_POLL_SECONDS": "1",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from rakuten_mlops.cli import main; main()", "serve", "--workers", "2",
         "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp_path,
    )  # fmt: skip
    conns: dict[int, http.client.HTTPConnection] = {}
    try:
        deadline = time.monotonic() + 180
        workers: list[psutil.Process] = []
        while len(workers) < 2 or not _ready(port):
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the two workers never got ready"
            workers = psutil.Process(proc.pid).children(recursive=True)
            workers = [w for w in workers if "spawn_main" in " ".join(w.cmdline())]  # not the tracker
            time.sleep(0.5)
        token = _login(port, kit.PASSWORD)
        headers = {"Authorization": f"Bearer {token}"}
        # Connections opened together spread over both workers (each listens on its own socket).
        opened = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(16)]
        for conn in opened:
            conn.connect()
        holder: dict[int, int] = {}  # connection -> worker pid, once a worker has accepted it
        deadline = time.monotonic() + 30
        while len(holder) < len(opened):
            assert time.monotonic() < deadline, f"connections never accepted: {len(holder)} of 16"
            for i, conn in enumerate(opened):
                pid = holder.get(i) or _worker_of(conn, workers, port)
                if pid is not None:
                    holder[i] = pid
            time.sleep(0.1)
        assert set(holder.values()) == {w.pid for w in workers}, sorted(holder.values())
        for i, conn in enumerate(opened):  # one connection per worker for the rest
            if holder[i] not in conns:
                conns[holder[i]] = conn
            else:
                conn.close()
        for conn in conns.values():
            deadline = time.monotonic() + 60
            while _get(conn, "/v1/model", headers)["version"] is None:  # still loading its model
                assert time.monotonic() < deadline, "a worker never loaded its model"
                time.sleep(0.2)
        assert {_get(c, "/v1/model", headers)["version"] for c in conns.values()} == {first}

        new = add_version()
        a, b = list(conns.values())
        a.request("POST", "/v1/model/reload", headers=headers)
        r = a.getresponse()
        assert r.status == 200 and json.loads(r.read())["version"] == new
        deadline = time.monotonic() + 60
        while {_get(c, "/v1/model", headers)["version"] for c in (a, b)} != {new}:
            assert time.monotonic() < deadline, "the other worker never loaded the new champion"
            time.sleep(0.5)
        for conn in (a, b):  # and each worker predicts with it
            conn.request("POST", "/v1/predict", body=json.dumps({"designation": "Piscine"}),
                         headers={**headers, "content-type": "application/json"})  # fmt: skip
            r = conn.getresponse()
            assert r.status == 200 and json.loads(r.read())["model_version"] == new
    finally:
        for conn in conns.values():
            conn.close()
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _ready(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/readyz")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def _login(port: int, password: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(
        "POST", "/v1/auth/token", body=f"username=root&password={password}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    r = conn.getresponse()
    body = r.read()
    conn.close()
    assert r.status == 200, body
    return str(json.loads(body)["access_token"])
