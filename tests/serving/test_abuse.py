"""Attacks against the real app served by uvicorn, each with the answer it must get."""

from __future__ import annotations

import csv
import io
import json
import secrets
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import mlflow.artifacts
import pandas as pd
import pytest
import uvicorn
from mlflow.tracking import MlflowClient
from sqlalchemy import create_engine, event, text

from rakuten_mlops.config import Settings
from rakuten_mlops.lifecycle import signing
from rakuten_mlops.pipelines.monitoring_live import read_feedback
from rakuten_mlops.pipelines.predict import predict_file
from rakuten_mlops.pipelines.register import sign_version
from rakuten_mlops.serving.app import create_app
from rakuten_mlops.ui.batch_io import predictions_csv
from tests.helpers import claim_empty_redis_db, free_port, port_open
from tests.services import require, require_module


@contextmanager
def served(settings: Settings) -> Iterator[tuple[str, Any]]:
    """The app of `settings` under uvicorn on a free port: (base URL, app)."""
    app = create_app(settings)
    port = free_port()
    # As `rakuten-mlops serve` runs it: uvicorn leaves X-Forwarded-For to the app.
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _login(url: str, name: str, password: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/auth/token", data={"username": name, "password": password}, timeout=60)


def _token(url: str, name: str, kit) -> dict[str, str]:
    r = _login(url, name, kit.PASSWORD)
    assert r.status_code == 200, r.text
    return kit.bearer(r.json()["access_token"])


def _parallel(n: int, fn: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    barrier = threading.Barrier(n)

    def run(i: int) -> httpx.Response:
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


@pytest.fixture(scope="module")
def live(make_settings, kit) -> Iterator[tuple[str, Settings, Any]]:
    """One served app (users alice, bob, root) for the attacks that need no special settings."""
    settings = make_settings(auth_cache_seconds=30, login_max_failures=3, predict_quota_per_minute=0)
    for name, role in (("alice", "predictor"), ("bob", "predictor"), ("root", "admin")):
        kit.add_user(settings, name, role)
    with served(settings) as (url, app):
        # Tokens first: an attack below locks this address out of alice's account.
        app.state.tokens = {n: _token(url, n, kit) for n in ("alice", "bob", "root")}
        yield url, settings, app


def test_parallel_wrong_passwords_evaluate_at_most_the_limit(live):
    url, settings, _ = live
    answers = _parallel(20, lambda i: _login(url, "alice", f"wrong-password-{i}"))
    codes = Counter(r.status_code for r in answers)
    assert codes == {401: settings.login_max_failures, 429: 20 - settings.login_max_failures}
    assert all(int(r.headers["retry-after"]) > 0 for r in answers if r.status_code == 429)


def test_the_owner_logs_in_from_another_address_while_an_attacker_is_locked_out(make_settings, kit):
    # Behind a trusted proxy the client address comes from X-Forwarded-For.
    settings = make_settings(login_max_failures=3, trusted_proxies="127.0.0.1/32")
    kit.add_user(settings, "admin1", "admin")
    with served(settings) as (url, _):
        attacker = {"X-Forwarded-For": "203.0.113.66"}
        codes = [
            httpx.post(
                f"{url}/v1/auth/token", data={"username": "admin1", "password": "guess"}, headers=attacker
            ).status_code
            for _ in range(5)
        ]
        assert codes == [401, 401, 401, 429, 429]
        owner = httpx.post(
            f"{url}/v1/auth/token",
            data={"username": "admin1", "password": kit.PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.7"},
        )
        assert owner.status_code == 200
        again = httpx.post(
            f"{url}/v1/auth/token", data={"username": "admin1", "password": kit.PASSWORD}, headers=attacker
        )
        assert again.status_code == 429  # the attacker's address stays locked, even with the password


def test_a_forged_forwarded_for_from_an_untrusted_peer_is_ignored(make_settings, kit):
    settings = make_settings(login_max_failures=2)  # no trusted proxy
    with served(settings) as (url, _):
        codes = [
            httpx.post(
                f"{url}/v1/auth/token",
                data={"username": "carol", "password": "guess"},
                headers={"X-Forwarded-For": f"198.51.100.{i}"},
            ).status_code
            for i in range(4)
        ]
        assert codes == [401, 401, 429, 429]  # varying the header does not buy more attempts


def test_a_login_flood_with_random_names_is_refused_and_health_keeps_answering(make_settings):
    settings = make_settings(
        login_max_failures_per_address=6, login_hash_concurrency=1, login_queue_seconds=0.2
    )
    with served(settings) as (url, _):
        health: list[int] = []
        stop = threading.Event()

        def probe() -> None:
            while not stop.is_set():
                health.append(httpx.get(f"{url}/healthz", timeout=5).status_code)
                time.sleep(0.05)

        prober = threading.Thread(target=probe)
        prober.start()
        try:
            answers = _parallel(40, lambda i: _login(url, f"random-{uuid.uuid4().hex[:12]}", "x" * 12))
        finally:
            stop.set()
            prober.join()
        codes = Counter(r.status_code for r in answers)
        assert set(codes) <= {401, 429, 503}, codes
        assert codes[401] <= settings.login_max_failures_per_address
        assert codes[429] + codes[503] >= 40 - settings.login_max_failures_per_address
        assert all("retry-after" in r.headers for r in answers if r.status_code in (429, 503))
        assert health and set(health) == {200}


def test_an_oversized_batch_gets_a_small_answer_without_item_validation(live, kit):
    url, settings, app = live
    body = json.dumps({"items": [{}] * 300_000}, separators=(",", ":")).encode()
    assert len(body) < settings.max_request_bytes
    r = httpx.post(
        f"{url}/v1/predict/batch",
        content=body,
        headers={**app.state.tokens["alice"], "content-type": "application/json"},
    )
    assert r.status_code == 422
    assert len(r.content) < 500  # not one error per item
    assert r.json()["detail"] == f"batch has 300000 items; the limit is {settings.max_batch_size}; split it"


def test_invalid_items_list_only_a_few_errors(live, kit):
    url, settings, app = live
    items = [{"designation": "", "price": i} for i in range(settings.max_batch_size)]
    r = httpx.post(f"{url}/v1/predict/batch", json={"items": items}, headers=app.state.tokens["alice"])
    assert r.status_code == 422
    assert len(r.json()["errors"]) == 5 and "more)" in r.json()["detail"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/predict/batch", b"{" * 50_000),
        ("/v1/predict", b'{"designation": '),
        ("/v1/feedback", b"\xff\xfe junk"),
        ("/v1/users", b"[]"),
    ],
)
def test_anonymous_junk_is_401_before_any_parsing(live, path, body):
    url, _, _ = live
    r = httpx.post(f"{url}{path}", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 401 and "not authenticated" in r.json()["detail"]
    forged = httpx.post(
        f"{url}{path}",
        content=body,
        headers={"content-type": "application/json", "Authorization": "Bearer x.y.z"},
    )
    assert forged.status_code == 401 and forged.json()["detail"] == "token is malformed"


def _predict(url: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{url}/v1/predict", json={"designation": "Robot jouet"}, headers=headers, timeout=60)


def test_feedback_only_by_the_owner_once_and_admins_correct(live, kit):
    url, settings, app = live
    alice, bob, root = (app.state.tokens[n] for n in ("alice", "bob", "root"))
    pid = _predict(url, alice).json()["prediction_id"]
    r = httpx.post(f"{url}/v1/feedback", json={"prediction_id": pid, "true_code": 10}, headers=bob)
    assert r.status_code == 404  # someone else's prediction looks like no prediction
    r = httpx.post(f"{url}/v1/feedback", json={"prediction_id": pid, "true_code": 10}, headers=alice)
    assert r.status_code == 202
    r = httpx.post(f"{url}/v1/feedback", json={"prediction_id": pid, "true_code": 40}, headers=alice)
    assert r.status_code == 409 and "admin may correct" in r.json()["detail"]
    r = httpx.post(f"{url}/v1/feedback", json={"prediction_id": pid, "true_code": 2583}, headers=root)
    assert r.status_code == 202
    engine = create_engine(settings.app_database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT kind, true_code, username FROM feedback WHERE prediction_id = :p ORDER BY created_at"
            ),
            {"p": pid},
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("label", 10, "alice"), ("correction", 2583, "root")]
    live = read_feedback(settings.app_database_url, datetime.now(UTC) - timedelta(days=1), 1000)
    assert live[live["prediction_id"] == pid]["true_code"].tolist() == [2583]  # live F1 sees the correction


def test_parallel_first_labels_store_exactly_one(live, kit):
    url, _, app = live
    alice = app.state.tokens["alice"]
    pid = _predict(url, alice).json()["prediction_id"]
    answers = _parallel(
        8,
        lambda i: httpx.post(
            f"{url}/v1/feedback", json={"prediction_id": pid, "true_code": 10}, headers=alice
        ),
    )
    assert Counter(r.status_code for r in answers) == {202: 1, 409: 7}


def test_disabling_or_changing_role_revokes_tokens_at_once(live, kit):
    url, _, app = live
    root = app.state.tokens["root"]
    name = f"dave-{secrets.token_hex(3)}"
    assert (
        httpx.post(
            f"{url}/v1/users", json={"username": name, "password": kit.PASSWORD}, headers=root
        ).status_code
        == 201
    )
    dave = _token(url, name, kit)
    assert _predict(url, dave).status_code == 200  # the account is now cached (30 s)
    assert httpx.post(f"{url}/v1/users/{name}/disable", headers=root).status_code == 200
    r = _predict(url, dave)
    assert r.status_code == 401 and r.json()["detail"] == "user account is disabled"
    assert httpx.post(f"{url}/v1/users/{name}/enable", headers=root).status_code == 200
    r = _predict(url, dave)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]  # re-enabling revives no token
    dave = _token(url, name, kit)
    assert _predict(url, dave).status_code == 200
    r = httpx.post(f"{url}/v1/users/{name}/role", json={"role": "admin"}, headers=root)
    assert r.status_code == 200 and r.json()["role"] == "admin"
    assert _predict(url, dave).status_code == 401
    dave = _token(url, name, kit)
    assert httpx.get(f"{url}/v1/users", headers=dave).status_code == 200


def test_password_change_and_admin_reset_revoke_tokens(live, kit):
    url, _, app = live
    root = app.state.tokens["root"]
    name = f"erin-{secrets.token_hex(3)}"
    httpx.post(f"{url}/v1/users", json={"username": name, "password": kit.PASSWORD}, headers=root)
    erin = _token(url, name, kit)
    new = "another-long-passphrase"
    r = httpx.post(
        f"{url}/v1/auth/password", json={"current_password": "wrong-one", "new_password": new}, headers=erin
    )
    assert r.status_code == 403
    r = httpx.post(
        f"{url}/v1/auth/password", json={"current_password": kit.PASSWORD, "new_password": new}, headers=erin
    )
    assert r.status_code == 204
    assert _predict(url, erin).status_code == 401
    assert _login(url, name, kit.PASSWORD).status_code == 401
    erin = kit.bearer(_login(url, name, new).json()["access_token"])
    assert _predict(url, erin).status_code == 200
    r = httpx.post(f"{url}/v1/users/{name}/password", json={"password": kit.PASSWORD}, headers=root)
    assert r.status_code == 200
    assert _predict(url, erin).status_code == 401
    assert _login(url, name, kit.PASSWORD).status_code == 200


def test_user_store_down_is_503_not_200(make_settings, kit):
    settings = make_settings(auth_cache_seconds=0)
    kit.add_user(settings, "frank")
    with served(settings) as (url, app):
        headers = _token(url, "frank", kit)
        assert httpx.get(f"{url}/v1/auth/me", headers=headers).status_code == 200
        down = threading.Event()

        def fail_while_down(*_args, **_kwargs):
            if down.is_set():
                raise sqlite3.OperationalError("unable to open database file (simulated outage)")

        event.listen(app.state.serving.engine, "before_cursor_execute", fail_while_down)
        down.set()
        for r in (httpx.get(f"{url}/v1/auth/me", headers=headers), _predict(url, headers)):
            assert r.status_code == 503 and r.headers["retry-after"] == "5"
            assert r.json() == {"detail": "the user database is unavailable; retry later"}
        down.clear()
        assert httpx.get(f"{url}/v1/auth/me", headers=headers).status_code == 200


def test_predict_quota_is_429_with_retry_after(make_settings, kit):
    settings = make_settings(predict_quota_per_minute=5)
    kit.add_user(settings, "gina")
    with served(settings) as (url, _):
        headers = _token(url, "gina", kit)
        batch = {"items": [{"designation": "Chaise"}] * 4}
        assert httpx.post(f"{url}/v1/predict/batch", json=batch, headers=headers).status_code == 200
        assert _predict(url, headers).status_code == 200
        r = _predict(url, headers)
        assert r.status_code == 429 and 0 < int(r.headers["retry-after"]) <= 60
        assert "quota of 5 listings per minute" in r.json()["detail"]


@pytest.mark.redis
def test_two_workers_share_login_limits_and_quotas_through_redis(make_settings, kit):
    require(port_open("127.0.0.1", 6379), "Redis is not reachable at 127.0.0.1:6379")
    redis = require_module("redis", "the Redis client is not installed")
    db = claim_empty_redis_db()
    redis_url = f"redis://127.0.0.1:6379/{db}"
    try:
        first = make_settings(login_max_failures=4, predict_quota_per_minute=3, redis_url=redis_url)
        kit.add_user(first, "henry")
        # A second worker: its own process state and home, the same user database and Redis.
        second = make_settings(
            login_max_failures=4, predict_quota_per_minute=3, redis_url=redis_url,
            database_url=first.app_database_url,
        )  # fmt: skip
        with served(first) as (url1, _), served(second) as (url2, _):
            urls = [url1, url2]
            answers = _parallel(12, lambda i: _login(urls[i % 2], "henry", f"wrong-{i}"))
            assert Counter(r.status_code for r in answers) == {401: 4, 429: 8}  # not 4 per worker
            assert _login(url2, "henry", kit.PASSWORD).status_code == 429  # this address stays locked
            client = redis.Redis.from_url(redis_url)
            assert client.keys("rakuten:login:acct|henry|*")  # the windows live in Redis
            client.delete(*client.keys("rakuten:login:*"))
            token = _token(url1, "henry", kit)
            codes = [_predict(urls[i % 2], token).status_code for i in range(5)]
            assert codes == [200, 200, 200, 429, 429]  # one quota of 3 for both workers
    finally:
        redis.Redis.from_url(redis_url).flushdb()


SIGNING_KEY = "model-signing-key-" + secrets.token_hex(16)


def _metric(url: str, line_start: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no metric line starting with {line_start}")


def test_a_swapped_alias_to_an_unsigned_or_tampered_version_is_refused(
    make_settings, champion, kit, tmp_path
):
    # A model of its own in the session registry: v1 signed at registration, v2 unsigned,
    # v3 tampered files carrying v1's signature.
    c = MlflowClient(tracking_uri=champion.tracking_uri, registry_uri=champion.tracking_uri)
    name = f"signed-{secrets.token_hex(4)}"
    c.create_registered_model(name)
    source = c.get_model_version_download_uri(champion.model_name, champion.version)
    settings = make_settings(model_name=name, model_signing_key=SIGNING_KEY, predict_quota_per_minute=0)
    v1 = c.create_model_version(name, source, run_id=champion.run_id).version
    assert sign_version(c, settings, str(v1))
    signature = c.get_model_version(name, str(v1)).tags[signing.SIGNATURE_TAG]
    assert signature.startswith("hmac-sha256-v1:")
    v2 = c.create_model_version(name, source, run_id=champion.run_id).version
    tampered = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(tmp_path)))
    (tampered / "MLmodel").write_text((tampered / "MLmodel").read_text() + "\n# tampered\n")
    v3 = c.create_model_version(name, tampered.as_uri(), run_id=champion.run_id).version
    c.set_model_version_tag(name, str(v3), signing.SIGNATURE_TAG, signature)
    c.set_registered_model_alias(name, "champion", str(v1))

    kit.add_user(settings, "ops", "admin")
    with served(settings) as (url, _):
        admin = _token(url, "ops", kit)
        assert httpx.get(f"{url}/v1/model", headers=admin).json()["version"] == str(v1)
        for version, reason in ((v2, "unsigned"), (v3, "bad_signature")):
            c.set_registered_model_alias(name, "champion", str(version))
            r = httpx.post(f"{url}/v1/model/reload", headers=admin, timeout=60)
            assert r.status_code == 200 and r.json()["changed"] is False and r.json()["version"] == str(v1)
            model = httpx.get(f"{url}/v1/model", headers=admin).json()
            assert model["version"] == str(v1) and model["last_error"].startswith(reason)
            assert f"version {version} refused" in model["last_error"]
            assert _metric(url, f'rakuten_model_reload_failures_total{{reason="{reason}"}}') == 1.0
            served_by = _predict(url, admin).json()
            assert served_by["model_version"] == str(v1)  # the last good model is still served
        assert not list((settings.serving_dir / "models").glob(f"*/v{v3}"))  # the refused copy is gone


FORMULAS = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd"]


def test_formula_cells_in_ui_exports_are_neutralised():
    results = pd.DataFrame(
        {"index": range(len(FORMULAS)), "designation": FORMULAS, "probability": [-0.5] * len(FORMULAS)}
    )
    rows = list(csv.DictReader(io.StringIO(predictions_csv(results).decode(), newline="")))
    assert [r["designation"] for r in rows] == ["'" + f for f in FORMULAS]
    assert {r["probability"] for r in rows} == {"-0.5"}  # numbers stay numbers


def test_formula_cells_in_cli_predictions_and_rejects_are_neutralised(champion, tmp_path):
    listings = pd.DataFrame(
        {
            "designation": ["Robot jouet", "", "=cmd|' /C calc'!A0"],
            "description": ["ok", "=1+1", "@SUM(1)"],
            "productid": [1, 2, 3],
            "imageid": [1, 2, 3],
        },
        index=pd.Index([7, 8, 9]),
    )
    source = tmp_path / "X_test_update.csv"
    listings.to_csv(source)
    settings = Settings(_env_file=None, home=tmp_path, mlflow_tracking_uri=champion.tracking_uri)
    out = tmp_path / "predictions.csv"
    summary = predict_file(
        source, out, settings, model_uri=f"models:/{champion.model_name}/{champion.version}"
    )
    assert summary["predicted"] == 2 and summary["rejected"] == 1
    assert len(pd.read_csv(out, index_col=0)) == 2
    rejects = pd.read_csv(summary["rejects_path"], index_col=0, keep_default_na=False)
    assert rejects.loc[8, "description"] == "'=1+1"


def test_an_unreachable_limit_store_refuses_logins_rather_than_skip_the_limits(make_settings, kit):
    settings = make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    kit.add_user(settings, "ivan")
    with served(settings) as (url, _):
        r = _login(url, "ivan", kit.PASSWORD)
        assert r.status_code == 503 and "retry-after" in r.headers
        assert "login limiter store unavailable" in r.json()["detail"]
        assert httpx.get(f"{url}/healthz").status_code == 200
