"""Prediction log: every record reaches the database across a graceful stop and across an outage.

Runs on SQLite and on the real PostgreSQL at 127.0.0.1:5432 (skipped when it does not answer).
A SQLite outage is injected at the DB-API level; a PostgreSQL outage is a TCP proxy that is cut.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import create_engine, event, text

from rakuten_mlops.serving.app import create_app
from tests.helpers import free_port


class TcpProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL; `cut()` drops every connection and refuses new ones."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        assert self._listener is not None
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self._sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


class Backend:
    """One database flavour: its URL for an app, an outage switch, and row counts."""

    def __init__(self, kind: str, pg_schema: str | None, kit) -> None:
        self.kind = kind
        self.pg_schema = pg_schema
        self.kit = kit
        self.proxy = TcpProxy(("127.0.0.1", 5432)) if kind == "postgres" else None
        self._sqlite_down = False

    def url(self, home) -> str | None:
        if self.kind == "sqlite":
            return None  # the default: a SQLite file under the app home
        return self.kit.pg_url(self.pg_schema, self.proxy.port)

    def prepare(self, app) -> None:
        if self.kind == "sqlite":

            def fail_while_down(*_args, **_kwargs):
                if self._sqlite_down:
                    raise sqlite3.OperationalError("disk I/O error (simulated outage)")

            event.listen(app.state.serving.engine, "before_cursor_execute", fail_while_down)

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        self.set_down(True)
        try:
            yield
        finally:
            self.set_down(False)

    def set_down(self, down: bool) -> None:
        if self.kind == "sqlite":
            self._sqlite_down = down
        elif down:
            self.proxy.cut()
        else:
            self.proxy.restore()

    def rows(self, settings, sql: str) -> list[tuple]:
        url = settings.app_database_url if self.kind == "sqlite" else self.kit.pg_url(self.pg_schema)
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(text(sql))]
        finally:
            engine.dispose()

    def ids(self, settings, table: str, since: str = "") -> set[str]:
        return {r[0] for r in self.rows(settings, f"SELECT id FROM {table}")}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request, kit) -> Backend:
    schema = request.getfixturevalue("pg_schema") if request.param == "postgres" else None
    return Backend(request.param, schema, kit)


def _app(make_settings, kit, backend, **overrides):
    settings = make_settings(**overrides)
    settings = settings.model_copy(update={"database_url": backend.url(settings.home)})
    kit.add_user(settings, f"u-{settings.home.name}")
    app = create_app(settings)
    backend.prepare(app)
    return settings, app, f"u-{settings.home.name}"


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (90, 160, 20)).save(buf, "JPEG")
    return buf.getvalue()


def _predict_many(client, headers, n: int) -> list[str]:
    ids = []
    for i in range(n // 2):
        r = client.post("/v1/predict", json={"designation": f"Robot jouet {i}"}, headers=headers)
        assert r.status_code == 200, r.text
        ids.append(r.json()["prediction_id"])
    items = [{"designation": f"Chaise de jardin {i}"} for i in range(n - n // 2)]
    for start in range(0, len(items), 4):
        r = client.post("/v1/predict/batch", json={"items": items[start : start + 4]}, headers=headers)
        assert r.status_code == 200, r.text
        ids += [p["prediction_id"] for p in r.json()["predictions"]]
    return ids


def _wait_for(check, what: str, limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


def test_no_record_is_lost_across_a_graceful_stop(make_settings, kit, backend):
    # A flush interval longer than the test: only the shutdown flush can write these records.
    settings, app, user = _app(make_settings, kit, backend, prediction_log_flush_seconds=3600)
    image = _jpeg()
    with TestClient(app) as client:
        headers = kit.bearer(kit.login(client, user))
        ids = _predict_many(client, headers, 20)
        r = client.post(
            "/v1/predict",
            json={
                "designation": "Lampe",
                "description": "LED",
                "image_base64": base64.b64encode(image).decode(),
            },
            headers=headers,
        )
        image_id = r.json()["prediction_id"]
        ids.append(image_id)
        for pid in ids[:5]:
            assert (
                client.post(
                    "/v1/feedback", json={"prediction_id": pid, "true_code": 2060}, headers=headers
                ).status_code
                == 202
            )
        assert app.state.serving.prediction_log.pending() == len(ids)  # labels are written at once
        assert backend.ids(settings, "predictions") == set()
    assert backend.ids(settings, "predictions") == set(ids)
    assert {r[0] for r in backend.rows(settings, "SELECT prediction_id FROM feedback")} == set(ids[:5])
    row = backend.rows(
        settings,
        "SELECT username, model_version, designation, description, image_sha256, latency_ms, probability, "
        f"prdtypecode FROM predictions WHERE id = '{image_id}'",
    )[0]
    assert row[:5] == (user, r.json()["model_version"], "Lampe", "LED", hashlib.sha256(image).hexdigest())
    assert row[5] > 0 and abs(row[6] - r.json()["probability"]) < 1e-9 and row[7] == r.json()["prdtypecode"]


def test_an_outage_neither_fails_predictions_nor_loses_records(make_settings, kit, backend):
    # A small in-memory buffer: most records spill to the disk spool during the outage. The
    # account checked before the outage stays cached (positive cache) for the whole test.
    settings, app, user = _app(
        make_settings, kit, backend, prediction_log_max_buffer=5, auth_cache_seconds=600
    )
    plog = app.state.serving.prediction_log
    with TestClient(app) as client:
        headers = kit.bearer(kit.login(client, user))
        before = set(_predict_many(client, headers, 4))
        _wait_for(lambda: backend.ids(settings, "predictions") == before, "the first records")
        with backend.outage():
            during = _predict_many(client, headers, 30)
            fb = client.post(
                "/v1/feedback", json={"prediction_id": during[0], "true_code": 10}, headers=headers
            )
            assert fb.status_code == 503 and fb.headers["retry-after"] == "5"  # labels are not buffered
            login = client.post("/v1/auth/token", data={"username": user, "password": kit.PASSWORD})
            assert login.status_code == 503 and login.headers["retry-after"] == "5"
            assert login.json() == {"detail": "the user database is unavailable; retry later"}
            _wait_for(lambda: plog.spilled > 0, "the spool to take the overflow")
            assert not plog.db_ok
        _wait_for(
            lambda: plog.pending() == 0 and backend.ids(settings, "predictions") == before | set(during),
            "the buffered and spooled records to reach the database",
        )
        assert list((settings.serving_dir / "spool").glob("spool-*.jsonl")) == []
        fb = client.post("/v1/feedback", json={"prediction_id": during[0], "true_code": 10}, headers=headers)
        assert fb.status_code == 202
    assert backend.ids(settings, "predictions") == before | set(during)
    assert backend.ids(settings, "feedback") and len(backend.ids(settings, "feedback")) == 1


def test_a_stop_during_an_outage_spools_and_the_next_start_replays(make_settings, kit, backend):
    settings, app, user = _app(
        make_settings, kit, backend, prediction_log_shutdown_seconds=0.3, auth_cache_seconds=600
    )
    with TestClient(app) as client:
        headers = kit.bearer(kit.login(client, user))
        assert client.get("/v1/auth/me", headers=headers).status_code == 200  # the account is cached
        backend.set_down(True)
        ids = _predict_many(client, headers, 12)
    spooled = list((settings.serving_dir / "spool").glob("spool-*.jsonl"))
    assert spooled and sum(len(p.read_text().splitlines()) for p in spooled) == len(ids)
    backend.set_down(False)
    assert not (backend.ids(settings, "predictions") & set(ids))
    restarted = create_app(settings)
    with TestClient(restarted):
        _wait_for(lambda: set(ids) <= backend.ids(settings, "predictions"), "the spool to be replayed")
    assert list((settings.serving_dir / "spool").glob("spool-*.jsonl")) == []
