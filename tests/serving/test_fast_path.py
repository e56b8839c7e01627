"""The prediction fast path: split batches, concurrent requests, the response schema, the token memo."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from types import SimpleNamespace

import httpx
import jsonschema
import jwt
import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

import rakuten_mlops.serving.auth as auth_module
from rakuten_mlops.serving import model_holder
from rakuten_mlops.serving.app import create_app
from rakuten_mlops.serving.auth import Authenticator, AuthError
from rakuten_mlops.serving.batcher import MicroBatcher, NoModelError
from rakuten_mlops.serving.deps import user_with_role
from rakuten_mlops.serving.fast_path import RouteFastPath, check_endpoint
from rakuten_mlops.serving.metrics import ServingMetrics
from rakuten_mlops.serving.model_holder import ModelHolder
from rakuten_mlops.serving.predictor import predict_rows
from rakuten_mlops.serving.schemas import BatchOut, PredictionOut
from rakuten_mlops.serving.security import create_token
from rakuten_mlops.simulation.loadgen.traffic import load_listings

# -- the micro-batcher on its own ---------------------------------------------------------------


def test_a_large_request_is_split_and_small_ones_join_between_its_chunks():
    calls: list[list[str]] = []
    gate = threading.Event()

    def predict(model, rows):
        gate.wait(5)  # the first call holds, so that everything else queues up behind it
        calls.append([r["designation"] for r in rows])
        return [{"echo": r["designation"], "model": model} for r in rows]

    async def scenario():
        batcher = MicroBatcher(lambda: "m1", predict, max_rows=6, split_rows=4)
        await batcher.start()
        first = asyncio.create_task(batcher.submit([{"designation": "warm"}]))
        await asyncio.sleep(0.05)
        big = asyncio.create_task(batcher.submit([{"designation": f"b{i}"} for i in range(10)]))
        await asyncio.sleep(0.01)
        small = [asyncio.create_task(batcher.submit([{"designation": f"s{i}"}])) for i in range(3)]
        await asyncio.sleep(0.05)
        gate.set()
        results = await asyncio.gather(first, big, *small)
        await batcher.stop()
        return results

    _, big, *small = asyncio.run(scenario())
    assert [r["echo"] for r in big[1]] == [f"b{i}" for i in range(10)]  # every row, in order
    assert [r[1][0]["echo"] for r in small] == ["s0", "s1", "s2"]
    assert max(len(c) for c in calls) <= 6  # no call holds more than max_rows
    # The small requests were answered before the big one's last chunk: they did not wait for it.
    last_big = max(i for i, c in enumerate(calls) if "b9" in c)
    assert all(any(f"s{i}" in c for c in calls[:last_big]) for i in range(3))


def test_a_model_swap_between_chunks_still_answers_the_request_with_one_model():
    model = {"name": "old"}
    calls = 0

    def predict(m, rows):
        nonlocal calls
        calls += 1
        if calls == 1:
            model["name"] = "new"  # swapped while the first chunk is predicted
        return [{"row": r["designation"], "model": m} for r in rows]

    async def scenario():
        batcher = MicroBatcher(lambda: model["name"], predict, max_rows=2, split_rows=2, parallel=1)
        await batcher.start()
        result = await batcher.submit([{"designation": str(i)} for i in range(6)])
        await batcher.stop()
        return result

    used, rows = asyncio.run(scenario())
    assert used == "new"
    assert [r["row"] for r in rows] == [str(i) for i in range(6)]
    assert {r["model"] for r in rows} == {"new"}


@pytest.mark.parametrize(("model", "most_at_once"), [("holds-the-lock", 1), ("releases-it", 2)])
def test_predict_calls_in_flight_follow_the_model_being_served(model, most_at_once):
    in_flight, seen, lock = 0, [], threading.Lock()
    gate = threading.Event()

    def predict(m, rows):
        nonlocal in_flight
        with lock:
            in_flight += 1
            seen.append(in_flight)
        gate.wait(5)  # hold the call while the others queue up (or start beside it)
        with lock:
            in_flight -= 1
        return [{"echo": r["designation"]} for r in rows]

    async def scenario():
        batcher = MicroBatcher(
            lambda: model, predict, max_rows=1, parallel=2,
            slots_for=lambda m: 1 if m == "holds-the-lock" else 2,
        )  # fmt: skip
        await batcher.start()
        tasks = [asyncio.create_task(batcher.submit([{"designation": str(i)}])) for i in range(4)]
        await asyncio.sleep(0.2)
        gate.set()
        results = await asyncio.gather(*tasks)
        await batcher.stop()
        return results

    results = asyncio.run(scenario())
    assert [r[1][0]["echo"] for r in results] == ["0", "1", "2", "3"]
    assert max(seen) == most_at_once


def test_a_text_only_model_gets_one_call_in_flight_unless_configured(make_settings, monkeypatch):
    loaded = SimpleNamespace(model=object())
    for classifier, calls in [
        (SimpleNamespace(uses_images=False), 1),  # text alone: holds the interpreter lock
        (SimpleNamespace(uses_images=True), 2),  # the image network releases it
        (None, 2),  # not this project's model: the former default
    ]:
        monkeypatch.setattr(model_holder, "own_classifier", lambda _, c=classifier: c)
        assert model_holder.parallel_calls(loaded) == calls
    metrics = ServingMetrics()
    auto = ModelHolder(make_settings(), metrics).batcher
    assert (auto.parallel, auto.slots_for) == (2, model_holder.parallel_calls)
    fixed = ModelHolder(make_settings(micro_batch_parallel=3), ServingMetrics()).batcher
    assert (fixed.parallel, fixed.slots_for) == (3, None)


# -- the token memo -----------------------------------------------------------------------------


def test_a_remembered_token_still_expires(api, monkeypatch):
    state = api.app.state.serving
    auth = Authenticator(state.tokens, state.sessions, cache_s=0)
    token = create_token(state.tokens, "alice", ["predictor"])
    claims = auth.verify(token)
    assert auth.verify(token) is claims  # the second time from the memo
    # Past its expiry the memo no longer answers: the token goes through full verification, which
    # (on a clock past `exp` + leeway) refuses it.
    monkeypatch.setattr(time, "time", lambda: claims["exp"] + 1)
    checked: list[str] = []

    def decode_on_a_later_clock(cfg, tok):
        checked.append(tok)
        raise jwt.ExpiredSignatureError("Signature has expired")

    monkeypatch.setattr(auth_module, "decode_token", decode_on_a_later_clock)
    with pytest.raises(AuthError) as err:
        auth.verify(token)
    assert err.value.status_code == 401 and "expired" in err.value.message and checked == [token]


def test_a_remembered_token_is_refused_once_revoked(api, kit):
    root = api.headers("root")
    r = api.client.post("/v1/users", json={"username": "memo-user", "password": kit.PASSWORD}, headers=root)
    assert r.status_code == 201, r.text
    user = kit.bearer(kit.login(api.client, "memo-user"))
    for _ in range(2):  # verified, then remembered
        assert api.client.post("/v1/predict", json={"designation": "Jeu"}, headers=user).status_code == 200
    assert api.client.post("/v1/users/memo-user/disable", headers=root).status_code == 200
    r = api.client.post("/v1/predict", json={"designation": "Jeu"}, headers=user)
    assert r.status_code == 401 and r.json()["detail"] == "user account is disabled"


def test_the_predict_routes_own_user_check_stands_without_the_auth_gate(api):
    # /v1/predict checks token and role without FastAPI's dependencies; where no gate ran, it
    # authenticates the bearer token itself, with the dependencies' answers.
    def request(headers: list[tuple[bytes, bytes]]) -> Request:
        return Request({"type": "http", "app": api.app, "headers": headers, "state": {}})

    token = api.tokens["alice"].encode()
    user = asyncio.run(user_with_role(request([(b"authorization", b"Bearer " + token)]), "predictor"))
    assert (user.username, user.roles) == ("alice", ("predictor",))
    with pytest.raises(AuthError) as err:
        asyncio.run(user_with_role(request([]), "predictor"))
    assert err.value.status_code == 401 and "not authenticated" in err.value.message
    with pytest.raises(AuthError) as err:
        asyncio.run(user_with_role(request([(b"authorization", b"Bearer " + token)]), "admin"))
    assert (
        err.value.status_code == 403
        and err.value.message == "this needs the 'admin' role; you have predictor"
    )


def test_the_predict_route_documents_its_bearer_token(api):
    openapi = api.client.get("/openapi.json").json()
    assert openapi["paths"]["/v1/predict"]["post"]["security"] == [{"OAuth2PasswordBearer": []}]
    assert "OAuth2PasswordBearer" in openapi["components"]["securitySchemes"]


# -- through the app ----------------------------------------------------------------------------


def test_responses_keep_the_response_models_schema(api):
    openapi = api.client.get("/openapi.json").json()
    components = openapi["components"]["schemas"]

    def check(body, model, name):
        # What FastAPI produced before the routes encoded their bodies themselves, byte for byte.
        assert model.model_validate(body).model_dump(mode="json", exclude_unset=True) == body
        _validate(body, name, components)  # and the schema the OpenAPI document publishes

    r = api.client.post("/v1/predict", json={"designation": "Piscine gonflable"}, headers=api.headers())
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    check(body, PredictionOut, "PredictionOut")
    assert list(body) == [f for f in PredictionOut.model_fields if f != "explanation"]
    assert list(body["top_k"][0]) == ["code", "category", "probability"]
    items = [{"designation": "Piscine"}, {"designation": "Livre de cuisine", "description": "recettes"}]
    r = api.client.post("/v1/predict/batch", json={"items": items}, headers=api.headers())
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    check(r.json(), BatchOut, "BatchOut")
    assert [list(p) for p in r.json()["predictions"]] == [list(body)] * 2


def _answer(r: httpx.Response) -> tuple:
    """What a client sees of a response, but the new prediction id."""
    body = r.json()
    if isinstance(body, dict):
        body.pop("prediction_id", None)
    headers = {h: r.headers.get(h) for h in ("content-type", "www-authenticate", "retry-after", "allow")}
    return r.status_code, headers, body


def _request_counts(client: TestClient) -> list[str]:
    """The app's request counter lines for /v1/predict."""
    lines = client.get("/metrics").text.splitlines()
    return sorted(x for x in lines if x.startswith("rakuten_http_requests_total{") and "/v1/predict" in x)


def test_the_predict_fast_path_answers_every_request_as_the_router_does(api):
    # The same requests through two apps on the same home: one whose POST /v1/predict goes
    # through Starlette's router and FastAPI's request handling, one that skips them.
    direct, routed = create_app(api.settings), create_app(api.settings)
    routed.user_middleware = [m for m in routed.user_middleware if m.cls is not RouteFastPath]
    alice, mallory = api.headers(), api.headers("mallory")
    listing = {"designation": "Piscine tubulaire ronde", "description": "avec pompe et bache"}
    cases = [
        ("POST", {}, {"json": listing}),  # no token
        ("POST", {"Authorization": "Bearer not-a-token"}, {"json": listing}),
        ("POST", mallory, {"json": listing}),  # a disabled account
        ("POST", alice, {"json": listing}),
        ("POST", alice, {"json": {**listing, "explain": True}}),
        ("POST", alice, {"json": {"description": "no title"}}),
        ("POST", alice, {"json": {"designation": "x" * 100_000}}),
        ("POST", alice, {"content": b"{not json", "headers": {"content-type": "application/json"}}),
        ("POST", alice, {"content": b"designation", "headers": {"content-type": "text/plain"}}),
        ("POST", alice, {"data": listing}),  # multipart/form-data
        ("POST", alice, {"data": listing, "files": {"image": ("a.png", b"not an image", "image/png")}}),
        ("GET", alice, {}),  # not the fast path's method: the router's 405
    ]
    with TestClient(direct) as fast, TestClient(routed) as slow:
        for method, auth, kwargs in cases:
            headers = {**auth, **kwargs.pop("headers", {})}
            expected = slow.request(method, "/v1/predict", headers=headers, **kwargs)
            got = fast.request(method, "/v1/predict", headers=headers, **kwargs)
            assert _answer(got) == _answer(expected), (method, auth, kwargs)
            assert got.status_code != 500, got.text
        counts = _request_counts(fast)
        assert counts == _request_counts(slow)  # labelled by the route template, as from the router
        assert any('status="200"' in x for x in counts) and any('status="422"' in x for x in counts)


def test_an_unexpected_error_on_the_fast_path_still_answers_500_and_is_logged(make_settings, kit, caplog):
    settings = make_settings()
    kit.add_user(settings, "erin")
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        token = kit.login(client, "erin")

        async def broken(rows):
            raise RuntimeError("boom")

        app.state.serving.holder.predict = broken
        r = client.post("/v1/predict", json={"designation": "Piscine"}, headers=kit.bearer(token))
    assert r.status_code == 500 and r.json() == {"detail": "internal error; it has been logged"}
    assert "unhandled error on POST /v1/predict" in caplog.text


def test_the_fast_path_refuses_an_endpoint_it_cannot_call_as_fastapi_would():
    from fastapi import APIRouter, Depends

    router = APIRouter()

    @router.post("/with-dependency")
    async def with_dependency(request: Request, user: str = Depends(lambda: "u")) -> None: ...

    @router.post("/plain")
    def plain(request: Request) -> None: ...

    for route in router.routes:
        with pytest.raises(TypeError, match=route.path):
            check_endpoint(route)


def _validate(body, name, components):
    """`body` against the OpenAPI component `name` (its $refs resolved within the components)."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": components}}
    jsonschema.validate(body, schema)


def test_a_large_batch_and_concurrent_singles_all_get_their_own_answers_in_order(
    make_settings, kit, champion
):
    settings = make_settings(
        max_batch_size=64, micro_batch_split_rows=5, micro_batch_max_rows=12, predict_quota_per_minute=0
    )
    kit.add_user(settings, "alice")
    app = create_app(settings)
    listings = load_listings(champion.data_dir, limit=200, seed=3)
    items = [  # 88 distinct listings (the sample's titles, numbered)
        {"designation": f"{x['designation']} {i}", "description": x["description"]}
        for i, x in zip(range(88), itertools.cycle(listings), strict=False)
    ]
    batch_items, singles = items[:64], items[64:]

    async def scenario():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
                r = await c.post("/v1/auth/token", data={"username": "alice", "password": kit.PASSWORD})
                headers = kit.bearer(r.json()["access_token"])
                calls = [c.post("/v1/predict/batch", json={"items": batch_items}, headers=headers)]
                calls += [c.post("/v1/predict", json=item, headers=headers) for item in singles]
                responses = await asyncio.gather(*calls)
                model = app.state.serving.holder.current.model
        return responses, model

    responses, model = asyncio.run(scenario())
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    got = [*responses[0].json()["predictions"], *(r.json() for r in responses[1:])]
    # Each listing predicted alone, in process: the answer the API must give it, whatever it was batched with.
    expected = [predict_rows(model, [{**item, "image": None}])[0] for item in [*batch_items, *singles]]
    assert len(got) == len(expected) == 88
    for answer, want in zip(got, expected, strict=True):
        assert answer["prdtypecode"] == want["prdtypecode"]
        assert answer["probability"] == pytest.approx(want["probability"], abs=1e-9)
        assert [t["code"] for t in answer["top_k"]] == [t["code"] for t in want["top_k"]]
    assert len({a["prediction_id"] for a in got}) == 88


def test_stopping_fails_every_chunk_of_a_waiting_split_request():
    gate = threading.Event()

    def predict(model, rows):
        gate.wait(5)
        return [{"echo": r["designation"]} for r in rows]

    async def scenario():
        batcher = MicroBatcher(lambda: "m", predict, max_rows=4, split_rows=2, parallel=1)
        await batcher.start()
        first = asyncio.create_task(batcher.submit([{"designation": "busy"}]))
        await asyncio.sleep(0.05)  # the only predict slot is taken
        big = asyncio.create_task(batcher.submit([{"designation": str(i)} for i in range(6)]))
        await asyncio.sleep(0.05)
        stopping = asyncio.create_task(batcher.stop())
        await asyncio.sleep(0.05)
        gate.set()
        await stopping
        first.cancel()  # in flight when the loop stopped (the server drains requests before this)
        return (await asyncio.wait_for(asyncio.gather(big, return_exceptions=True), 5))[0]

    big = asyncio.run(scenario())
    assert isinstance(big, NoModelError)  # answered, not left waiting for chunks never queued


# -- the model's own predict path ----------------------------------------------------------------


def test_rows_predicted_straight_by_the_model_get_what_mlflows_predict_and_scikit_learn_give(
    champion, monkeypatch
):
    import mlflow

    from rakuten_mlops.models.text import TextClassifier
    from rakuten_mlops.serving.predictor import own_classifier

    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(champion.tracking_uri)
    mlflow.set_registry_uri(champion.tracking_uri)
    try:
        model = mlflow.pyfunc.load_model(f"models:/{champion.model_name}/{champion.version}")
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])
    assert own_classifier(model) is not None  # served straight from the rows
    listings = load_listings(champion.data_dir, limit=200, seed=4)
    rows = [  # 60 listings from the sample's (numbered, so that they differ)
        {"designation": f"{x['designation']} {i}", "description": x["description"], "image": None}
        for i, x in zip(range(60), itertools.cycle(listings), strict=False)
    ]
    rows += [
        {"designation": "", "description": None, "image": None},
        {"designation": "Piscine &amp; <b>spa</b>", "image": b""},
        {"designation": "zzqx wvut", "description": "<p>Filtre &agrave; sable</p>", "image": None},
    ]
    chunks = [rows[:1], rows[1:9], rows[9:41], rows[41:]]  # one listing, a micro-batch, a batch, the rest
    assert len(rows) > 41
    fast = [predict_rows(model, chunk) for chunk in chunks]

    class ThroughMlflow:  # no wrapper to unwrap: DataFrame in, MLflow's predict, DataFrame out
        predict = staticmethod(model.predict)

    monkeypatch.setattr(TextClassifier, "scorer", lambda self: None)  # scikit-learn's own calls
    slow = [predict_rows(ThroughMlflow(), chunk) for chunk in chunks]
    assert sum(map(len, fast)) == len(rows)
    assert fast == slow  # codes, names, probabilities and top-k: equal, not merely close
