"""Model holder: hot reload under concurrent requests, alias polling, registry unreachable at start."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from rakuten_mlops.serving.app import create_app
from tests.helpers import free_port


@pytest.fixture()
def own_model(champion):
    """A registered model of its own (copies of the champion), so moving its alias disturbs no other test."""
    client = MlflowClient(tracking_uri=champion.tracking_uri, registry_uri=champion.tracking_uri)
    source = client.get_model_version(champion.model_name, champion.version)
    name = f"reload-test-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)

    def add_version(promote: bool = True) -> str:
        mv = client.create_model_version(name, source.source, run_id=source.run_id)
        if promote:
            client.set_registered_model_alias(name, "champion", mv.version)
        return str(mv.version)

    add_version()
    return name, add_version


def _metric(text: str, line_start: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start))


def test_hot_reload_under_concurrent_requests_fails_no_request(make_settings, kit, own_model):
    name, add_version = own_model
    # Eight clients predict as fast as they can: the per-user quota is not what is tested here.
    settings = make_settings(model_name=name, predict_quota_per_minute=0)
    kit.add_user(settings, "alice")
    kit.add_user(settings, "root", "admin")
    app = create_app(settings)
    results: list[tuple[int, str | None, bool]] = []  # status, model version, sent after the swap
    swapped = False

    async def scenario() -> str:
        nonlocal swapped
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:

                async def token(user: str) -> dict[str, str]:
                    r = await c.post("/v1/auth/token", data={"username": user, "password": kit.PASSWORD})
                    return kit.bearer(r.json()["access_token"])

                alice, root = await token("alice"), await token("root")
                stop = asyncio.Event()

                async def hammer(i: int) -> None:
                    while not stop.is_set():
                        after_swap = swapped
                        r = await c.post("/v1/predict", json={"designation": f"Piscine {i}"}, headers=alice)
                        results.append((r.status_code, r.json().get("model_version"), after_swap))

                tasks = [asyncio.create_task(hammer(i)) for i in range(8)]
                while len(results) < 40:
                    await asyncio.sleep(0.01)
                new_version = await asyncio.to_thread(add_version)
                r = await c.post("/v1/model/reload", headers=root)
                assert r.status_code == 200 and r.json() == {
                    "changed": True, "version": new_version, "message": f"now serving version {new_version}"
                }  # fmt: skip
                swapped = True
                seen = len(results)
                while len(results) < seen + 40:
                    await asyncio.sleep(0.01)
                stop.set()
                await asyncio.gather(*tasks)
                metrics = (await c.get("/metrics")).text
                assert (
                    _metric(metrics, 'rakuten_model_reloads_total{result="success"}') == 2
                )  # start + reload
                assert f'version="{new_version}"' in metrics
                return new_version

    new_version = asyncio.run(scenario())
    assert all(status == 200 for status, _, _ in results), {s for s, _, _ in results}
    assert {v for _, v, _ in results} == {"1", new_version}
    # Atomic swap: every request sent after the reload answered is served by the new model only.
    after = [v for _, v, after_swap in results if after_swap]
    assert len(after) >= 30 and set(after) == {new_version}  # at most 8 were in flight


def test_poller_picks_up_a_new_champion(make_settings, kit, own_model):
    name, add_version = own_model
    settings = make_settings(model_name=name, model_poll_seconds=0.1)
    kit.add_user(settings, "alice")
    with TestClient(create_app(settings)) as client:
        headers = kit.bearer(kit.login(client, "alice"))
        assert client.get("/v1/model", headers=headers).json()["version"] == "1"
        add_version(promote=False)  # a version without the alias is not served
        new_version = add_version()
        deadline = time.monotonic() + 60
        while client.get("/v1/model", headers=headers).json()["version"] != new_version:
            assert time.monotonic() < deadline, "the poller never loaded the new champion"
            time.sleep(0.1)
        r = client.post("/v1/predict", json={"designation": "Coussin"}, headers=headers)
        assert r.status_code == 200 and r.json()["model_version"] == new_version == "3"


def test_registry_unreachable_at_start_serves_the_local_copy(
    api, make_settings, kit, copy_models, monkeypatch
):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    dead = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(mlflow_tracking_uri=dead, mlflow_registry_uri=dead, registry_timeout_seconds=20)
    copy_models(api.settings, settings)  # what an earlier run with a reachable registry left behind
    kit.add_user(settings, "alice")
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        headers = kit.bearer(kit.login(client, "alice"))
        model = client.get("/v1/model", headers=headers).json()
        assert (
            model["source"] == "local-copy"
            and model["version"] == api.app.state.serving.holder.current.version
        )
        assert model["last_error"]
        r = client.post("/v1/predict", json={"designation": "Figurine manga"}, headers=headers)
        assert r.status_code == 200 and r.json()["model_version"] == model["version"]
        metrics = client.get("/metrics").text
        assert _metric(metrics, 'rakuten_model_reloads_total{result="failure"}') == 1
        assert _metric(metrics, "rakuten_model_loaded ") == 1


def test_registry_unreachable_and_no_local_copy_is_not_ready(make_settings, kit, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    dead = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(mlflow_tracking_uri=dead, mlflow_registry_uri=dead)
    kit.add_user(settings, "alice")
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json() == {"detail": "no model loaded yet"}
        headers = kit.bearer(kit.login(client, "alice"))
        r = client.post("/v1/predict", json={"designation": "x"}, headers=headers)
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert r.json() == {"detail": "no model is loaded yet; retry later"}
        assert client.get("/v1/model", headers=headers).json()["ready"] is False
        assert _metric(client.get("/metrics").text, "rakuten_model_loaded ") == 0
