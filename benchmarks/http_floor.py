"""The HTTP floor: a bare ASGI app that answers POST /v1/predict with a fixed prediction, no framework.

`serving_benchmark.py` serves it with uvicorn, with the options `rakuten-mlops serve` uses, and
drives it with the same load as the API. Its rate is what uvicorn's HTTP parsing, the event
loop and the load generator leave on this machine before any routing, token check, validation,
prediction or logging: no endpoint served this way can answer single listings faster.

    python -m uvicorn benchmarks.http_floor:app --port 8001 --no-access-log
"""

from __future__ import annotations

from typing import Any

import orjson

# The size and shape of a real answer of /v1/predict (five top_k entries).
ANSWER = orjson.dumps(
    {
        "prediction_id": "01938a6e-8f4c-7a3b-9c1d-2e3f4a5b6c7d",
        "prdtypecode": 2583,
        "category": "Piscine et accessoires",
        "probability": 0.9731,
        "top_k": [
            {"code": c, "category": f"category {c}", "probability": p}
            for c, p in ((2583, 0.9731), (2585, 0.0102), (1302, 0.0061), (2582, 0.0040), (1560, 0.0021))
        ],
        "modalities": ["text"],
        "model_name": "rakuten-classifier",
        "model_version": "1",
    }
)
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]
NOT_FOUND = b'{"detail":"Not Found"}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:  # the whole body is read, as any real endpoint must
        message = await receive()
        more = message.get("more_body", False)
    if scope["path"] == "/v1/predict" or scope["path"] == "/readyz":
        body, status, headers = ANSWER, 200, HEADERS
    else:
        body, status = NOT_FOUND, 404
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
