"""Traffic generator: realistic listings sent to one URL, bounded in count and time, with a JSON report."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import numpy as np

from rakuten_mlops.errors import InvalidInputError
from rakuten_mlops.simulation.loadgen.keepalive import Connection, HttpError

Mode = Literal["api", "mlflow"]


@dataclass(frozen=True)
class TrafficConfig:
    """What to send, where, how fast and for how long (`rate` 0: as fast as `concurrency` allows)."""

    url: str
    token: str | None = None
    rate: float = 20.0
    duration_s: float = 10.0
    concurrency: int = 4
    max_requests: int = 100_000
    batch_size: int = 1
    mode: Mode = "api"
    timeout_s: float = 30.0

    def endpoint(self) -> str:
        if self.mode == "mlflow":
            return "/invocations"
        return "/v1/predict/batch" if self.batch_size > 1 else "/v1/predict"


def load_listings(
    data_dir: str | Path | None, limit: int = 2000, seed: int = 0, with_images: bool = False
) -> list[dict[str, Any]]:
    """Listings from a challenge-layout folder (test part if present), else from the sample generator."""
    if data_dir is None:
        from rakuten_mlops.simulation.core.sample import generate_listings

        frame = generate_listings(n_per_class=max(1, limit // 27 + 1), seed=seed)
    else:
        from rakuten_mlops.data.loader import load_dataset

        root = Path(data_dir)
        split = "test" if (root / "X_test_update.csv").is_file() else "train"
        frame = load_dataset(root, split=split).frame
    frame = frame.sample(n=min(limit, len(frame)), random_state=seed) if len(frame) else frame
    rows = []
    for rec in frame.to_dict("records"):
        row = {"designation": str(rec["designation"]), "description": str(rec.get("description") or "")}
        path = rec.get("image_path")
        if with_images and isinstance(path, str) and Path(path).is_file():
            row["image_base64"] = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        rows.append(row)
    return rows


def build_payloads(listings: list[dict[str, Any]], batch_size: int, mode: Mode) -> list[bytes]:
    """Request bodies, encoded once so the generator spends its time sending, not serialising."""
    if not listings:
        raise InvalidInputError("no listings to send")
    cycle = itertools.cycle(listings)
    n_payloads = max(1, min(len(listings) // batch_size, 500))
    payloads = []
    for _ in range(n_payloads):
        items = [next(cycle) for _ in range(batch_size)]
        if mode == "mlflow":
            data = [[i["designation"], i["description"]] for i in items]
            body: Any = {"dataframe_split": {"columns": ["designation", "description"], "data": data}}
        elif batch_size > 1:
            body = {"items": items}
        else:
            body = items[0]
        payloads.append(json.dumps(body).encode())
    return payloads


def summarise(
    cfg: TrafficConfig, latencies: list[float], statuses: Counter[str], elapsed: float
) -> dict[str, Any]:
    """Throughput, latency percentiles and error counts of one run."""
    n = sum(statuses.values())
    ok = sum(v for k, v in statuses.items() if k.startswith("2"))
    lat = np.asarray(latencies) * 1000 if latencies else np.zeros(1)
    return {
        "config": {**asdict(cfg), "token": "***" if cfg.token else None, "endpoint": cfg.endpoint()},
        "requests": n,
        "ok": ok,
        "items": ok * cfg.batch_size,
        "errors": {k: v for k, v in sorted(statuses.items()) if not k.startswith("2")},
        "elapsed_s": round(elapsed, 3),
        "throughput_rps": round(ok / elapsed, 2) if elapsed > 0 else 0.0,
        "items_per_s": round(ok * cfg.batch_size / elapsed, 2) if elapsed > 0 else 0.0,
        "latency_ms": {
            "p50": round(float(np.percentile(lat, 50)), 2),
            "p95": round(float(np.percentile(lat, 95)), 2),
            "p99": round(float(np.percentile(lat, 99)), 2),
            "mean": round(float(lat.mean()), 2),
            "max": round(float(lat.max()), 2),
        },
    }


async def _send_loop(
    cfg: TrafficConfig, post, payloads: list[bytes], latencies: list[float], statuses: Counter[str]
) -> float:
    """Run `cfg.concurrency` workers calling `post(path, body) -> status`; returns the elapsed time."""
    counter = itertools.count()
    path = cfg.endpoint()
    start = time.perf_counter()
    deadline = start + cfg.duration_s

    async def worker(slot: int) -> None:
        while True:
            i = next(counter)
            if i >= cfg.max_requests:
                return
            if cfg.rate > 0:  # open loop: request i is due at start + i / rate
                due = start + i / cfg.rate
                if due >= deadline:
                    return
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            if time.perf_counter() >= deadline:
                return
            t0 = time.perf_counter()
            status = await post(slot, path, payloads[i % len(payloads)])
            latencies.append(time.perf_counter() - t0)
            statuses[status] += 1

    await asyncio.gather(*(worker(slot) for slot in range(cfg.concurrency)))
    return time.perf_counter() - start


async def run_traffic(
    cfg: TrafficConfig, payloads: list[bytes], transport: httpx.AsyncBaseTransport | None = None
) -> dict[str, Any]:
    """Send requests to `cfg.url` only (no redirects followed) until `duration_s` or `max_requests`.

    Plain http URLs use a minimal keep-alive client (one connection per worker), so that the
    generator costs little CPU next to the server it measures; https, or a given `transport`, use httpx.
    """
    headers = {"content-type": "application/json"}
    if cfg.token and cfg.mode == "api":
        headers["authorization"] = f"Bearer {cfg.token}"
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    if transport is None and cfg.url.startswith("http://"):
        connections = [Connection(cfg.url, headers, cfg.timeout_s) for _ in range(cfg.concurrency)]

        async def post_raw(slot: int, path: str, body: bytes) -> str:
            try:
                status, _ = await connections[slot].post(path, body)
                return str(status)
            except HttpError as exc:
                return str(exc)

        try:
            elapsed = await _send_loop(cfg, post_raw, payloads, latencies, statuses)
        finally:
            for conn in connections:
                await conn.close()
        return summarise(cfg, latencies, statuses, elapsed)
    limits = httpx.Limits(max_connections=cfg.concurrency, max_keepalive_connections=cfg.concurrency)
    async with httpx.AsyncClient(
        base_url=cfg.url.rstrip("/"), headers=headers, timeout=cfg.timeout_s, limits=limits,
        follow_redirects=False, transport=transport,
    ) as client:  # fmt: skip

        async def post_httpx(slot: int, path: str, body: bytes) -> str:
            try:
                return str((await client.post(path, content=body)).status_code)
            except httpx.HTTPError as exc:
                return exc.__class__.__name__

        elapsed = await _send_loop(cfg, post_httpx, payloads, latencies, statuses)
    return summarise(cfg, latencies, statuses, elapsed)


def format_report(report: dict[str, Any]) -> str:
    """One human-readable line per figure."""
    lat = report["latency_ms"]
    lines = [
        f"target      {report['config']['url']}{report['config']['endpoint']}",
        f"requests    {report['requests']} ({report['ok']} ok) in {report['elapsed_s']} s",
        f"throughput  {report['throughput_rps']} req/s, {report['items_per_s']} listings/s",
        f"latency ms  p50 {lat['p50']}  p95 {lat['p95']}  p99 {lat['p99']}  max {lat['max']}",
        f"errors      {report['errors'] or 'none'}",
    ]
    return "\n".join(lines)
