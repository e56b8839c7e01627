"""Helpers of the Airflow tests (import as `tests.orchestration.airflow_helpers`).

Airflow is never imported in the pytest process: its configuration is read once, at import,
from the environment. Each DAG run happens in `dag_runner.py`, in a child process whose
environment points AIRFLOW_HOME, the metadata database and RAKUTEN_HOME at temporary folders.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "src" / "rakuten_mlops" / "orchestration" / "dags"  # shipped in the package
RUNNER = Path(__file__).with_name("dag_runner.py")
DAG_IDS = ("rakuten_training", "rakuten_stream", "rakuten_traffic", "rakuten_batch_scoring")


@dataclass(frozen=True)
class AirflowSite:
    """A migrated SQLite AIRFLOW_HOME under a temporary home, and the environment that uses it."""

    home: Path  # RAKUTEN_HOME
    airflow_home: Path
    init_result: dict[str, str]
    env: dict[str, str]


def clean_environ(**extra: str) -> dict[str, str]:
    """This process's environment without any Airflow or rakuten settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RAKUTEN_"))}
    env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    env.update(extra)
    return env


def run_dags(env: dict[str, str], spec: dict[str, Any], workdir: Path, timeout_s: float) -> dict[str, Any]:
    """Run `dag_runner.py` with `spec` (see its docstring): its output, or a failure with its log's end."""
    workdir.mkdir(parents=True, exist_ok=True)
    spec_path, out_path, log_path = workdir / "spec.json", workdir / "out.json", workdir / "runner.log"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    out_path.unlink(missing_ok=True)
    with log_path.open("w", encoding="utf-8") as log:
        try:
            done = subprocess.run(
                [sys.executable, str(RUNNER), str(spec_path), str(out_path)],
                env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, timeout=timeout_s, check=False,
            )  # fmt: skip
            code: int | str = done.returncode
        except subprocess.TimeoutExpired:
            code = f"timeout after {timeout_s} s"
    if code != 0 or not out_path.is_file():
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-6000:]
        pytest.fail(f"dag runner failed ({code}); end of {log_path}:\n{tail}")
    return json.loads(out_path.read_text(encoding="utf-8"))


def write_test_params(path: Path) -> Path:
    """The project's params.yaml, made fast and decisive for a sample of a few hundred rows.

    Retraining is triggered by drift alone (the refresh rule is off) once 10 new rows exist.
    """
    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    raw["text"].update(calibration_cv=2, min_df=1)
    raw["monitoring"]["decision"].update(min_new_labelled_rows=10, refresh_fraction=None)
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def task_states(run: dict[str, Any], prefix: str = "") -> set[str]:
    """The states of the run's tasks whose id starts with `prefix`."""
    return {state for task_id, state in run["tasks"].items() if task_id.startswith(prefix)}


# ----------------------------------------------------------------------------- stub API
@dataclass
class StubApi:
    """A stand-in for the prediction API: login, reload (admin) and predict, every call recorded."""

    url: str = ""
    username: str = "airflow-admin"
    password: str = "stub-password-0123"
    token: str = "stub-token-abcdef"
    calls: list[tuple[str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, path: str) -> int:
        """Calls to `path` that carried the token (or, for the login route, any call)."""
        with self.lock:
            bearer = f"Bearer {self.token}"
            return sum(1 for p, auth in self.calls if p == path and (auth == bearer or p == "/v1/auth/token"))

    @property
    def connection_uri(self) -> str:
        """What AIRFLOW_CONN_RAKUTEN_API holds to point the DAGs at this API."""
        return f"http://{self.username}:{self.password}@{self.url.removeprefix('http://')}"


def _handler(stub: StubApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the traffic generator expects

        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            auth = self.headers.get("authorization")
            with stub.lock:
                stub.calls.append((self.path, auth))
            if self.path == "/v1/auth/token":
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                if form.get("username") == stub.username and form.get("password") == stub.password:
                    return self._answer(
                        200, {"access_token": stub.token, "token_type": "bearer", "expires_in": 60}
                    )
                return self._answer(401, {"detail": "incorrect username or password"})
            if auth != f"Bearer {stub.token}":
                return self._answer(401, {"detail": "not authenticated"})
            if self.path == "/v1/model/reload":
                return self._answer(200, {"changed": True, "version": "1", "message": "loaded version 1"})
            if self.path == "/v1/predict":
                return self._answer(200, {"prdtypecode": 2583, "probability": 0.9, "prediction_id": "p"})
            return self._answer(404, {"detail": "not found"})

    return Handler


class StubServer:
    """Serves a StubApi on a free port of 127.0.0.1 in a thread (`with StubServer() as stub:`)."""

    def __init__(self) -> None:
        self.stub = StubApi()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.stub))
        self.stub.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> StubApi:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.stub

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
