"""Shadow overhead: the API's answers with and without a challenger scored in shadow, same load.

Trains a text-only champion on a generated sample in a temporary home, registers a second version
of the same model (a challenger that costs what the champion costs), starts the API (one worker),
then alternates rounds without and with the `challenger` alias (moved, then `POST /v1/model/reload`):
an open-loop load at a fixed rate (latency while the machine is not saturated) and a closed loop at
full speed (throughput when the two models share the CPU). Shadow listings scored and dropped are
read from `/metrics` after each round. Writes JSON.

    python benchmarks/shadow_overhead.py                  # ~5 minutes on 2 cores
    python benchmarks/shadow_overhead.py --duration 5     # quicker, noisier
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from serving_benchmark import free_port, line, median_run, server, train_champion

from rakuten_mlops.config import Settings
from rakuten_mlops.simulation.loadgen.traffic import TrafficConfig, build_payloads, load_listings, run_traffic

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = secrets.token_urlsafe(16)


def shadow_counts(url: str) -> dict[str, float]:
    """Listings scored in shadow and dropped (queue full), summed over labels."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    out = {"scored": 0.0, "dropped": 0.0, "queued": 0.0}
    for row in text.splitlines():
        if row.startswith("rakuten_shadow_predictions_total"):
            out["scored"] += float(row.rsplit(" ", 1)[1])
        elif row.startswith("rakuten_shadow_dropped_total"):
            out["dropped"] += float(row.rsplit(" ", 1)[1])
        elif row.startswith("rakuten_shadow_queue_size"):
            out["queued"] += float(row.rsplit(" ", 1)[1])
    return out


def drained(url: str, limit_s: float = 60.0) -> dict[str, float]:
    """The shadow counts once the queue is empty (a backlog must not weigh on the next round)."""
    deadline = time.monotonic() + limit_s
    while True:
        counts = shadow_counts(url)
        if counts["queued"] == 0 or time.monotonic() > deadline:
            time.sleep(0.5)  # the batch taken last may still be scoring
            return shadow_counts(url)
        time.sleep(0.2)


def set_challenger(settings: Settings, version: str | None, url: str, admin: str) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)
    if version is None:
        client.delete_registered_model_alias(settings.model_name, "challenger")
    else:
        client.set_registered_model_alias(settings.model_name, "challenger", version)
    r = httpx.post(f"{url}/v1/model/reload", headers={"Authorization": f"Bearer {admin}"}, timeout=60)
    r.raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measured run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds; the median is reported")
    parser.add_argument("--rate", type=float, default=40.0, help="requests/s of the open-loop load")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--n-per-class", type=int, default=60, help="sample size used to train the champion")
    parser.add_argument(
        "--text-model", default="stack", help="text model of the champion (params.yaml text.model; not auto)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "shadow_overhead.json")
    args = parser.parse_args()
    started = time.perf_counter()

    with ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rakuten-bench-")))
        print("training the champion ...", flush=True)
        champion = train_champion(home, args.n_per_class, args.text_model)
        settings = Settings(_env_file=None, home=home)
        from mlflow.tracking import MlflowClient

        from rakuten_mlops.appdb import create_schema, make_engine, session_factory, session_scope
        from rakuten_mlops.serving.users import create_user

        client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)
        source = client.get_model_version(settings.model_name, champion["version"])
        challenger = str(
            client.create_model_version(settings.model_name, source.source, run_id=source.run_id).version
        )
        engine = make_engine(settings.app_database_url)
        create_schema(engine)
        with session_scope(session_factory(engine)) as session:
            create_user(session, "bench", PASSWORD, "predictor")
            create_user(session, "benchadmin", PASSWORD, "admin")
        engine.dispose()

        env = {
            **os.environ,
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
            "RAKUTEN_HOME": str(home),
            "RAKUTEN_JWT_SECRET": secrets.token_urlsafe(48),
            "RAKUTEN_MODEL_POLL_SECONDS": "0",
            "RAKUTEN_PREDICT_QUOTA_PER_MINUTE": "0",
            "RAKUTEN_SHADOW_SHARE": "1.0",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        }
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        stack.enter_context(
            server(
                [sys.executable, "-m", "uvicorn", "--factory", "rakuten_mlops.serving.app:create_app",
                 "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--log-level", "warning",
                 "--no-access-log"],
                env, f"{url}/readyz", home / "api.log",
            )
        )  # fmt: skip

        def token(user: str) -> str:
            r = httpx.post(f"{url}/v1/auth/token", data={"username": user, "password": PASSWORD})
            return str(r.json()["access_token"])

        user, admin = token("bench"), token("benchadmin")
        listings = load_listings(champion["data_dir"], limit=2000, seed=1)
        payloads = build_payloads(listings, 1, "api")
        loads = {"open_loop": (args.rate, 64), "closed_loop": (0.0, args.concurrency)}
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {
            s: {k: [] for k in loads} for s in ("without", "with")
        }
        load_before = os.getloadavg()
        asyncio.run(
            run_traffic(TrafficConfig(url=url, token=user, rate=0, max_requests=50, concurrency=4), payloads)
        )
        for round_no in range(args.rounds):
            order = ["without", "with"] if round_no % 2 == 0 else ["with", "without"]
            for setup in order:
                set_challenger(settings, challenger if setup == "with" else None, url, admin)
                for kind, (rate, concurrency) in loads.items():
                    before = drained(url)
                    cfg = TrafficConfig(
                        url=url, token=user, rate=rate, duration_s=args.duration, concurrency=concurrency
                    )
                    report = asyncio.run(run_traffic(cfg, payloads))
                    after = drained(url)
                    report["shadow"] = {k: after[k] - before[k] for k in ("scored", "dropped")}
                    runs[setup][kind].append(report)
                    print(
                        f"round {round_no + 1} {setup:8} {kind:11} {line(report)}  shadow {report['shadow']}",
                        flush=True,
                    )
        set_challenger(settings, None, url, admin)
        load_after = os.getloadavg()

    results = {s: {k: median_run(runs[s][k]) for k in loads} for s in runs}
    for setup in runs:
        for kind in loads:
            results[setup][kind]["shadow_per_round"] = [r["shadow"] for r in runs[setup][kind]]

    def median(setup: str, kind: str, figure: Any) -> float:
        return round(float(statistics.median(figure(r) for r in runs[setup][kind])), 2)

    summary = {  # the median of each figure over the rounds
        kind: {
            "p50_ms": {s: median(s, kind, lambda r: r["latency_ms"]["p50"]) for s in runs},
            "p99_ms": {s: median(s, kind, lambda r: r["latency_ms"]["p99"]) for s in runs},
            "req_per_s": {s: median(s, kind, lambda r: r["throughput_rps"]) for s in runs},
            "shadow_scored_share": {
                s: median(s, kind, lambda r: r["shadow"]["scored"] / max(r["ok"], 1)) for s in runs
            },
            "shadow_dropped_share": {
                s: median(s, kind, lambda r: r["shadow"]["dropped"] / max(r["ok"], 1)) for s in runs
            },
        }
        for kind in loads
    }
    out = {
        "benchmark": "shadow_overhead",
        "command": "python benchmarks/shadow_overhead.py " + " ".join(sys.argv[1:]),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "load_average_1m": {"before": round(load_before[0], 2), "after": round(load_after[0], 2)},
        },
        "model": {"kind": f"text only, text.model={args.text_model}; challenger = a copy of the champion",
                  "champion_version": champion["version"], "challenger_version": challenger},
        "load": {
            "open_loop": {"rate_per_s": args.rate}, "closed_loop": {"concurrency": args.concurrency},
            "duration_s": args.duration, "rounds": args.rounds, "shadow_share": 1.0, "workers": 1,
            "reported": "summary: the median of each figure over the rounds; results: the round with the "
            "median listings/s per setup and load (every round under 'rounds')",
        },
        "results": results,
        "summary": summary,
        "total_seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str))
    print(json.dumps(summary, indent=2))
    print(f"written to {args.out} in {out['total_seconds']} s")


if __name__ == "__main__":
    main()
