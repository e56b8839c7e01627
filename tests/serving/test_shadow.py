"""The challenger in shadow: it never changes an answer, its failures are contained and counted,
its predictions are logged as shadow, and it goes through the champion's integrity checks."""

from __future__ import annotations

import asyncio
import os
import signal
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlflow.tracking import MlflowClient
from sqlalchemy import select

from rakuten_mlops.appdb import PredictionRecord, make_engine
from rakuten_mlops.serving.app import create_app

CONSTANT_CODE, CONSTANT_PROBABILITY = 10, 0.3
MODEL_CODE = """
import mlflow
import pandas as pd


class Challenger(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        if FAIL and (model_input["designation"].astype(str) != "smoke test").any():
            raise RuntimeError("the challenger cannot score live listings")
        n = len(model_input)
        return pd.DataFrame(
            {
                "prdtypecode": [CODE] * n,
                "probability": [PROBABILITY] * n,
                "top_k": [[{"code": CODE, "probability": PROBABILITY}] for _ in range(n)],
                "modalities": ["text"] * n,
            }
        )


mlflow.models.set_model(Challenger())
"""
LISTINGS = [
    "Piscine tubulaire ronde 3 m", "Coussin velours 40x40 bleu", "Figurine Dragon Ball Goku",
    "Jeu PS4 FIFA 19", "Livre Harry Potter tome 1", "Tondeuse thermique 46 cm", "Lot de 3 chaussettes bébé",
    "Carte Pokemon Dracaufeu holo", "Drone quadricoptère caméra HD", "Croquettes chien adulte 15 kg",
]  # fmt: skip


@pytest.fixture(scope="module")
def shadow_model(champion, tmp_path_factory):
    """A registered model of its own: v1 = the session champion, v2 = a challenger that always says
    code 10 at 0.3, v3 = a challenger that passes its smoke test and fails on live listings."""
    client = MlflowClient(tracking_uri=champion.tracking_uri, registry_uri=champion.tracking_uri)
    name = f"shadow-test-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    source = client.get_model_version(champion.model_name, champion.version)
    client.create_model_version(name, source.source, run_id=source.run_id)
    client.set_registered_model_alias(name, "champion", "1")
    tmp = tmp_path_factory.mktemp("challengers")
    experiment = client.create_experiment(f"{name}-runs", artifact_location=(tmp / "artifacts").as_uri())
    for fail in (False, True):
        code = tmp / f"challenger_{fail}.py"
        code.write_text(
            f"FAIL = {fail}\nCODE = {CONSTANT_CODE}\nPROBABILITY = {CONSTANT_PROBABILITY}\n"
            + textwrap.dedent(MODEL_CODE)
        )
        _log_model(champion.tracking_uri, experiment, code, name)
    return name, client


def _log_model(tracking_uri: str, experiment: str, code: Path, name: str) -> None:
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        with mlflow.start_run(experiment_id=experiment):
            mlflow.pyfunc.log_model(
                name="model", python_model=str(code), pip_requirements=[], registered_model_name=name
            )
    finally:
        mlflow.set_tracking_uri(previous)


def _challenge(client: MlflowClient, name: str, version: str | None) -> None:
    if version is None:
        client.delete_registered_model_alias(name, "challenger")
    else:
        client.set_registered_model_alias(name, "challenger", version)


def _metric(text: str, line_start: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start))


async def _token(c: httpx.AsyncClient, kit: Any, user: str) -> dict[str, str]:
    r = await c.post("/v1/auth/token", data={"username": user, "password": kit.PASSWORD})
    return dict(kit.bearer(r.json()["access_token"]))


def _serve(make_settings, kit, name: str, scenario, **overrides: Any) -> Any:
    """Run `scenario(client, app, alice, root)` against a fresh app on the model `name`."""
    settings = make_settings(model_name=name, predict_quota_per_minute=0, **overrides)
    kit.add_user(settings, "alice")
    kit.add_user(settings, "root", "admin")
    app = create_app(settings)

    async def run() -> Any:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api", timeout=60) as c:
                alice, root = await _token(c, kit, "alice"), await _token(c, kit, "root")
                return await scenario(c, app, alice, root)

    return settings, asyncio.run(run())


async def _concurrent_predictions(c: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Eight clients send every listing three times at once (and one batch): the answers in order."""

    async def one(i: int) -> dict[str, Any]:
        r = await c.post("/v1/predict", json={"designation": LISTINGS[i % len(LISTINGS)]}, headers=headers)
        assert r.status_code == 200, r.text
        return dict(r.json())

    semaphore = asyncio.Semaphore(8)

    async def bounded(i: int) -> dict[str, Any]:
        async with semaphore:
            return await one(i)

    answers = await asyncio.gather(*(bounded(i) for i in range(3 * len(LISTINGS))))
    batch = await c.post(
        "/v1/predict/batch", json={"items": [{"designation": d} for d in LISTINGS[:4]]}, headers=headers
    )
    assert batch.status_code == 200, batch.text
    return [*answers, *batch.json()["predictions"]]


async def _wait_for(c: httpx.AsyncClient, line_start: str, value: float) -> str:
    deadline = time.monotonic() + 60
    while True:
        text = (await c.get("/metrics")).text
        if _metric(text, line_start) >= value:
            return text
        assert time.monotonic() < deadline, f"{line_start} never reached {value}"
        await asyncio.sleep(0.05)


def _without_id(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "prediction_id"}


def test_the_challenger_never_changes_an_answer_and_is_logged_as_shadow(make_settings, kit, shadow_model):
    name, client = shadow_model

    async def without(c, app, alice, root):
        assert app.state.serving.shadow.current is None
        return await _concurrent_predictions(c, alice)

    seen: dict[str, Any] = {}

    async def with_challenger(c, app, alice, root):
        assert app.state.serving.shadow.current.version == "2"
        answers = await _concurrent_predictions(c, alice)
        metrics = await _wait_for(c, "rakuten_shadow_predictions_total{", len(answers))
        seen["metrics"] = metrics
        seen["status"] = (await c.get("/v1/monitoring/shadow", headers=root)).json()["serving"]
        return answers

    try:
        _challenge(client, name, None)
        _, plain = _serve(make_settings, kit, name, without)
        _challenge(client, name, "2")
        settings, shadowed = _serve(make_settings, kit, name, with_challenger)
    finally:
        _challenge(client, name, None)
    # Identical answers, listing by listing, whether or not a challenger is scored beside the champion.
    assert [_without_id(a) for a in shadowed] == [_without_id(a) for a in plain]
    assert {a["model_version"] for a in shadowed} == {"1"}
    metrics = seen["metrics"]
    n = len(shadowed)
    assert (
        _metric(metrics, 'rakuten_shadow_predictions_total{challenger_version="2",champion_version="1"}') == n
    )
    agreeing = sum(a["prdtypecode"] == CONSTANT_CODE for a in shadowed)
    assert _metric(metrics, "rakuten_shadow_agreements_total{") == agreeing
    assert (
        _metric(
            metrics, 'rakuten_shadow_class_predictions_total{code="10",model_version="2",role="challenger"}'
        )
        == n
    )
    assert _metric(metrics, "rakuten_challenger_loaded ") == 1
    assert seen["status"]["loaded_version"] == "2"
    # The prediction log holds each answered prediction once, and one shadow row of version 2 beside it.
    engine = make_engine(settings.app_database_url)
    with engine.connect() as conn:
        rows = conn.execute(select(PredictionRecord.__table__)).mappings().all()
    engine.dispose()
    served = [r for r in rows if not r["shadow"]]
    shadow = [r for r in rows if r["shadow"]]
    assert {r["id"] for r in served} == {a["prediction_id"] for a in shadowed}
    assert sorted(r["shadow_of"] for r in shadow) == sorted(a["prediction_id"] for a in shadowed)
    assert {(r["model_version"], r["prdtypecode"], r["probability"]) for r in shadow} == {
        ("2", CONSTANT_CODE, CONSTANT_PROBABILITY)
    }
    by_id = {r["id"]: r for r in served}
    assert all(r["designation"] == by_id[r["shadow_of"]]["designation"] for r in shadow)


def _shadow_row_of(database_url: str, served_id: str) -> str:
    """The id of the shadow prediction logged beside `served_id` (waits for the log writer)."""
    engine = make_engine(database_url)
    deadline = time.monotonic() + 30
    try:
        while True:
            with engine.connect() as conn:
                found = conn.execute(
                    select(PredictionRecord.id).where(PredictionRecord.shadow_of == served_id)
                ).scalar()
            if found is not None:
                return str(found)
            assert time.monotonic() < deadline, "the shadow prediction was never logged"
            time.sleep(0.05)
    finally:
        engine.dispose()


def test_feedback_on_a_shadow_prediction_id_is_refused(make_settings, kit, shadow_model):
    name, client = shadow_model

    async def scenario(c, app, alice, root):
        r = await c.post("/v1/predict", json={"designation": LISTINGS[0]}, headers=alice)
        served_id = r.json()["prediction_id"]
        url = app.state.serving.settings.app_database_url
        shadow_id = await asyncio.to_thread(_shadow_row_of, url, served_id)
        shadow = await c.post(
            "/v1/feedback", json={"prediction_id": shadow_id, "true_code": 10}, headers=root
        )
        served = await c.post(
            "/v1/feedback", json={"prediction_id": served_id, "true_code": 10}, headers=root
        )
        return shadow, served

    _challenge(client, name, "2")
    try:
        _, (shadow, served) = _serve(make_settings, kit, name, scenario)
    finally:
        _challenge(client, name, None)
    assert shadow.status_code == 404 and "no prediction" in shadow.json()["detail"]
    assert served.status_code == 202


def test_a_failing_challenger_is_dropped_and_counted_and_answers_stay_served(
    make_settings, kit, shadow_model
):
    name, client = shadow_model

    async def scenario(c, app, alice, root):
        assert app.state.serving.shadow.current.version == "3"  # its smoke test passed
        answers = await _concurrent_predictions(c, alice)
        metrics = await _wait_for(c, 'rakuten_shadow_failures_total{reason="predict_error"}', 1)
        reload = await c.post("/v1/model/reload", headers=root)  # the same version is not taken back
        after = await c.post("/v1/predict", json={"designation": LISTINGS[1]}, headers=alice)
        status = (await c.get("/v1/monitoring/shadow", headers=root)).json()["serving"]
        return answers, metrics, reload, after, status, (await c.get("/metrics")).text

    _challenge(client, name, "3")
    try:
        _, (answers, _, reload, after, status, final) = _serve(make_settings, kit, name, scenario)
    finally:
        _challenge(client, name, None)
    assert {a["model_version"] for a in answers} == {"1"}
    assert reload.status_code == 200 and after.status_code == 200 and after.json()["model_version"] == "1"
    assert status["loaded_version"] is None and "3" in status["dropped_versions"]
    assert "predict_error" in status["dropped_versions"]["3"]
    assert _metric(final, 'rakuten_shadow_failures_total{reason="predict_error"}') == 1
    assert _metric(final, "rakuten_challenger_loaded ") == 0
    assert _metric(final, "rakuten_shadow_predictions_total{") == 0


def test_a_challenger_goes_through_the_signature_check(make_settings, kit, shadow_model):
    name, client = shadow_model

    async def scenario(c, app, alice, root):
        status = (await c.get("/v1/monitoring/shadow", headers=root)).json()["serving"]
        return status, (await c.get("/metrics")).text

    _challenge(client, name, "2")
    try:  # no version of this model is signed: with a key, the challenger is refused before loading
        _, (status, metrics) = _serve(make_settings, kit, name, scenario, model_signing_key="k" * 32)
    finally:
        _challenge(client, name, None)
    assert status["loaded_version"] is None and status["last_error"].startswith("unsigned")
    assert _metric(metrics, 'rakuten_shadow_failures_total{reason="unsigned"}') == 1
    assert _metric(metrics, "rakuten_challenger_loaded ") == 0


def test_a_full_queue_drops_listings_instead_of_waiting(make_settings) -> None:
    from rakuten_mlops.serving.metrics import ServingMetrics
    from rakuten_mlops.serving.model_loader import LoadedModel
    from rakuten_mlops.serving.shadow import ShadowScorer

    settings = make_settings(shadow_queue_rows=3, shadow_share=0.5)
    scorer = ShadowScorer(settings, ServingMetrics(), prediction_log=None)  # type: ignore[arg-type]
    row, logged = {"designation": "x", "description": "", "image": None}, {"id": "p"}
    assert scorer.offer(row, logged) is False  # no challenger: nothing queued
    scorer.current = LoadedModel(None, "m", "2", "", "registry", None)  # type: ignore[arg-type]
    # Not started: nothing is scored, so the queue fills. Every second listing is offered (share 0.5).
    queued = [scorer.offer(row, logged) for _ in range(10)]
    assert queued == [False, True, False, True, False, True, False, False, False, False]
    assert scorer.status()["queued"] == 3
    assert scorer.metrics.dropped._value.get() == 2


def test_the_queue_is_bounded_in_bytes_too(make_settings) -> None:
    from rakuten_mlops.serving.metrics import ServingMetrics
    from rakuten_mlops.serving.model_loader import LoadedModel
    from rakuten_mlops.serving.shadow import ShadowScorer

    scorer = ShadowScorer(make_settings(shadow_queue_bytes=1024), ServingMetrics(), prediction_log=None)  # type: ignore[arg-type]
    scorer.current = LoadedModel(None, "m", "2", "", "registry", None)  # type: ignore[arg-type]
    small = {"designation": "x" * 100, "description": "", "image": b"\xff" * 500}
    large = {"designation": "x", "description": "", "image": b"\xff" * 2000}
    assert scorer.offer(large, {"id": "a"}) is False  # alone over the bound
    assert scorer.offer(small, {"id": "b"}) is True
    assert scorer.offer(small, {"id": "c"}) is False  # 1,200 bytes would wait
    assert scorer.status()["queued"] == 1 and scorer.metrics.dropped._value.get() == 2


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_challenger_scores_in_a_low_priority_process_stopped_with_the_app(
    make_settings, kit, shadow_model
):
    name, client = shadow_model

    async def scenario(c, app, alice, root):
        status = (await c.get("/v1/monitoring/shadow", headers=root)).json()["serving"]
        pid = status["process_pid"]
        assert pid is not None and pid != os.getpid() and _alive(pid)
        priority = os.getpriority(os.PRIO_PROCESS, pid)
        first = await c.post("/v1/predict", json={"designation": LISTINGS[0]}, headers=alice)
        await _wait_for(c, "rakuten_shadow_predictions_total{", 1)
        _challenge(client, name, None)  # the alias goes: the process goes with it
        await c.post("/v1/model/reload", headers=root)
        gone = (await c.get("/v1/monitoring/shadow", headers=root)).json()["serving"]
        _challenge(client, name, "2")
        await c.post("/v1/model/reload", headers=root)
        again = (await c.get("/v1/monitoring/shadow", headers=root)).json()["serving"]
        os.kill(again["process_pid"], signal.SIGKILL)  # the scoring process dies: contained, counted
        answers = await _concurrent_predictions(c, alice)
        metrics = await _wait_for(c, 'rakuten_shadow_failures_total{reason="predict_error"}', 1)
        after = (await c.get("/v1/monitoring/shadow", headers=root)).json()["serving"]
        return pid, priority, first, gone, again, answers, metrics, after

    _challenge(client, name, "2")
    try:
        _, (pid, priority, first, gone, again, answers, metrics, after) = _serve(
            make_settings, kit, name, scenario
        )
    finally:
        _challenge(client, name, None)
    assert priority == 19
    assert first.status_code == 200
    assert gone["loaded_version"] is None and gone["process_pid"] is None and not _alive(pid)
    assert again["loaded_version"] == "2" and again["process_pid"] not in (None, pid)
    assert {a["model_version"] for a in answers} == {"1"}  # every answer served by the champion
    assert _metric(metrics, 'rakuten_shadow_failures_total{reason="predict_error"}') == 1
    assert after["loaded_version"] is None and "ended" in after["dropped_versions"]["2"]
    assert after["process_pid"] is None and not _alive(again["process_pid"])  # no orphan left
