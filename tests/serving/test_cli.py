"""CLI: users create/list/disable, serve refusing an insecure configuration, and the traffic generator."""

from __future__ import annotations

import asyncio
import json
import pickle
import socket
import threading
import time

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from rakuten_mlops.config import get_settings
from rakuten_mlops.serving import workers
from rakuten_mlops.serving.app import create_app
from rakuten_mlops.simulation.loadgen.traffic import TrafficConfig, build_payloads, load_listings, run_traffic
from tests.helpers import free_port

runner = CliRunner()
linux_reuse_port = pytest.mark.skipif(
    not workers.reuse_port_supported(), reason="SO_REUSEPORT spreads connections on Linux only"
)


@pytest.fixture()
def cli(tmp_path, monkeypatch):
    """The main `rakuten-mlops` app, with settings pointing at a temporary home."""
    from rakuten_mlops.cli import app

    for var in ("RAKUTEN_DATABASE_URL", "RAKUTEN_ENV", "RAKUTEN_JWT_SECRET"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RAKUTEN_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield app
    get_settings.cache_clear()


def test_users_create_list_disable(cli, kit):
    r = runner.invoke(cli, ["users", "create", "erin", "--role", "admin", "--password", kit.PASSWORD])
    assert r.exit_code == 0, r.output
    assert "created user erin with role admin" in r.output
    r = runner.invoke(cli, ["users", "create", "frank"], input=f"{kit.PASSWORD}\n{kit.PASSWORD}\n")
    assert r.exit_code == 0, r.output
    assert "Password" in r.output  # prompted, since --password was omitted
    r = runner.invoke(cli, ["users", "disable", "frank"])
    assert r.exit_code == 0 and "disabled user frank" in r.output
    r = runner.invoke(cli, ["users", "list"])
    lines = {line.split()[1]: line for line in r.output.splitlines() if "erin" in line or "frank" in line}
    assert "admin" in lines["erin"] and "no" in lines["erin"]
    assert "predictor" in lines["frank"] and "yes" in lines["frank"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["users", "create", "erin", "--password", "short"], "at least 12 characters"),
        (["users", "create", "erin", "--role", "root", "--password", "long-enough-password"], "role must be"),
        (["users", "create", "a b", "--password", "long-enough-password"], "username must be"),
        (["users", "disable", "nobody"], "no user called 'nobody'"),
    ],
)
def test_users_errors_exit_2_with_a_message(cli, args, message):
    r = runner.invoke(cli, args)
    assert r.exit_code == 2
    assert message in r.output


def test_serve_refuses_a_placeholder_secret_in_production(cli, monkeypatch):
    monkeypatch.setenv("RAKUTEN_ENV", "production")
    monkeypatch.setenv("RAKUTEN_JWT_SECRET", "change-me")
    get_settings.cache_clear()
    r = runner.invoke(cli, ["serve", "--port", "1"])
    assert r.exit_code == 2
    assert "RAKUTEN_JWT_SECRET" in r.output


@pytest.fixture(scope="module")
def live_server(make_settings, kit):
    """The API under uvicorn on 127.0.0.1, with a predictor token."""
    settings = make_settings()
    kit.add_user(settings, "alice")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    r = httpx.post(f"{url}/v1/auth/token", data={"username": "alice", "password": kit.PASSWORD})
    yield url, r.json()["access_token"]
    server.should_exit = True
    thread.join(timeout=30)


def test_traffic_command_is_bounded_and_writes_json(cli, live_server, tmp_path, champion):
    url, token = live_server
    out = tmp_path / "traffic.json"
    args = [
        "traffic",
        "--url",
        url,
        "--token",
        token,
        "--rate",
        "200",
        "--duration",
        "20",
        "--concurrency",
        "4",
    ]
    r = runner.invoke(
        cli, [*args, "--max-requests", "30", "--out", str(out), "--data-dir", str(champion.data_dir)]
    )
    assert r.exit_code == 0, r.output
    assert "throughput" in r.output and "p99" in r.output
    report = json.loads(out.read_text())
    assert report["requests"] == 30 and report["ok"] == 30 and report["errors"] == {}
    assert report["config"]["url"] == url and report["config"]["token"] == "***"
    assert set(report["latency_ms"]) == {"p50", "p95", "p99", "mean", "max"}
    assert report["throughput_rps"] > 0


def test_traffic_batches_and_counts_errors_by_status(live_server):
    url, token = live_server
    listings = load_listings(None, limit=50)
    batch = TrafficConfig(
        url=url, token=token, rate=0, duration_s=30, concurrency=2, max_requests=6, batch_size=3
    )
    report = asyncio.run(run_traffic(batch, build_payloads(listings, 3, "api")))
    assert report["ok"] == 6 and report["items"] == 18 and report["config"]["endpoint"] == "/v1/predict/batch"
    forged = TrafficConfig(url=url, token="not-a-token", rate=0, duration_s=30, concurrency=2, max_requests=5)
    report = asyncio.run(run_traffic(forged, build_payloads(listings, 1, "api")))
    assert report["ok"] == 0 and report["errors"] == {"401": 5}


def test_traffic_only_contacts_the_given_url():
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(302, headers={"location": "http://elsewhere.example/"})

    cfg = TrafficConfig(
        url="http://127.0.0.1:9", rate=0, duration_s=30, concurrency=3, max_requests=9, mode="mlflow"
    )
    payloads = build_payloads(load_listings(None, limit=20), 2, "mlflow")
    report = asyncio.run(run_traffic(cfg, payloads, transport=httpx.MockTransport(handler)))
    assert report["errors"] == {"302": 9}
    assert {(u.host, u.port, u.path) for u in seen} == {("127.0.0.1", 9, "/invocations")}
    body = json.loads(payloads[0])
    assert body["dataframe_split"]["columns"] == ["designation", "description"]
    assert len(body["dataframe_split"]["data"]) == 2


def test_serve_runs_the_app_factory_under_uvicorn(cli, monkeypatch):
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append((app, kwargs)))
    r = runner.invoke(cli, ["serve", "--host", "127.0.0.1", "--port", "8123"])
    assert r.exit_code == 0, r.output
    [(app, kwargs)] = calls
    assert app == "rakuten_mlops.serving.app:create_app" and kwargs["factory"] is True
    assert (kwargs["host"], kwargs["port"], kwargs["workers"]) == ("127.0.0.1", 8123, 1)
    assert (kwargs["access_log"], kwargs["log_level"]) == (True, "info")
    r = runner.invoke(cli, ["serve", "--port", "8123", "--no-access-log", "--log-level", "warning"])
    assert r.exit_code == 0, r.output
    assert (calls[-1][1]["access_log"], calls[-1][1]["log_level"]) == (False, "warning")
    r = runner.invoke(cli, ["serve", "--port", "8123", "--log-level", "loud"])
    assert r.exit_code == 2 and "--log-level must be one of critical, error" in r.output


@linux_reuse_port
def test_serve_with_workers_gives_each_its_own_socket(cli, monkeypatch):
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("one shared socket"))
    monkeypatch.setattr(workers, "run_workers", lambda *a, **k: calls.append((a, k)))
    r = runner.invoke(cli, ["serve", "--host", "127.0.0.1", "--port", "8123", "--workers", "2"])
    assert r.exit_code == 0, r.output
    [(args, kwargs)] = calls
    assert args == ("rakuten_mlops.serving.app:create_app", "127.0.0.1", 8123, 2)
    assert kwargs["factory"] is True and kwargs["proxy_headers"] is False


@linux_reuse_port
@pytest.mark.parametrize("reuse_port", [False, True], ids=["ordinary listener", "another serve --workers"])
def test_serve_with_workers_on_a_busy_port_says_so(cli, reuse_port):
    with socket.socket() as taken:
        if reuse_port:  # a running `serve --workers`: joining its port would share its connections
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = runner.invoke(cli, ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"])
    assert r.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in " ".join(r.output.split())


@linux_reuse_port
def test_each_worker_binds_a_socket_of_its_own_on_one_port():
    port = free_port()
    pickled = pickle.dumps(workers.WorkerSockets("127.0.0.1", port))
    assert workers.WorkerSockets("127.0.0.1", port) == []  # the supervisor holds no socket
    first, second = pickle.loads(pickled), pickle.loads(pickled)  # what two workers receive
    try:
        [a], [b] = first, second
        assert a is not b and a.getsockname()[1] == b.getsockname()[1] == port
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # one of them accepts it
    finally:
        for sock in (*first, *second):
            sock.close()


def test_serve_says_what_does_not_span_workers(cli, monkeypatch):
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: None)
    monkeypatch.setattr(workers, "run_workers", lambda *a, **k: None)
    monkeypatch.delenv("RAKUTEN_REDIS_URL", raising=False)
    monkeypatch.setenv("RAKUTEN_MODEL_POLL_SECONDS", "0")
    get_settings.cache_clear()
    try:
        r = runner.invoke(cli, ["serve", "--port", "8123", "--workers", "3"])
        assert r.exit_code == 0, r.output
        said = " ".join(r.output.split())  # the console wraps long lines
        assert "up to 3x the configured limits" in said and "reaches only the worker that answers" in said
        r = runner.invoke(cli, ["serve", "--port", "8123", "--workers", "1"])
        assert "warning" not in r.output
    finally:
        get_settings.cache_clear()
