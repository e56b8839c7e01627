"""Serving benchmark: the same champion under this API and under `mlflow models serve`, same load.

Trains a text-only champion (the default text model) on a generated sample in a
temporary home, starts both servers on 127.0.0.1 (one worker each), then drives each with the
traffic generator at equal concurrency: single-listing requests, then batches. Writes JSON.

    python benchmarks/serving_benchmark.py                 # ~2 minutes on 2 cores
    python benchmarks/serving_benchmark.py --duration 5    # quicker, noisier
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from rakuten_mlops.config import Params, Settings
from rakuten_mlops.simulation.loadgen.traffic import TrafficConfig, build_payloads, load_listings, run_traffic

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = secrets.token_urlsafe(16)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def train_champion(home: Path, n_per_class: int) -> dict[str, Any]:
    """Generate a sample and run the training pipeline (text only) into `home`."""
    from rakuten_mlops.pipelines.runner import run_pipeline
    from rakuten_mlops.simulation.core.sample import generate_sample

    data_dir = home / "data"
    generate_sample(data_dir, n_per_class=n_per_class, seed=11, with_images=False)
    settings = Settings(_env_file=None, home=home)
    params = Params.model_validate(
        {"image": {"enabled": False}, "fusion": {"enabled": False}, "promotion": {"min_f1": 0.0}}
    )
    cwd = os.getcwd()
    os.chdir(home)  # MLflow may write ./mlruns
    try:
        summary = run_pipeline(data_dir, settings=settings, params=params)
    finally:
        os.chdir(cwd)
    return {"data_dir": str(data_dir), "version": summary["register"]["version"], "train": summary["train"]}


@contextmanager
def server(cmd: list[str], env: dict[str, str], ready_url: str, log_path: Path, limit_s: float = 90):
    """Start a server process, wait until `ready_url` answers 200, stop it on exit."""
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + limit_s
            while True:
                if proc.poll() is not None:
                    tail = log_path.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{' '.join(cmd[:5])} exited early:\n{tail}")
                try:
                    if httpx.get(ready_url, timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{ready_url} not ready after {limit_s} s:\n{tail}")
                time.sleep(0.25)
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)


def measure(cfg: TrafficConfig, payloads: list[bytes], warmup: int = 30) -> dict[str, Any]:
    """Warm up with `warmup` requests, then run the measured load."""
    if warmup:
        asyncio.run(
            run_traffic(TrafficConfig(**{**cfg.__dict__, "duration_s": 10, "max_requests": warmup}), payloads)
        )
    return asyncio.run(run_traffic(cfg, payloads))


def median_run(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median listings/s, plus every run's headline figures."""
    ordered = sorted(reports, key=lambda r: r["items_per_s"])
    chosen = dict(ordered[len(ordered) // 2])
    chosen["rounds"] = [
        {"items_per_s": r["items_per_s"], "p50_ms": r["latency_ms"]["p50"], "p99_ms": r["latency_ms"]["p99"]}
        for r in reports
    ]
    return chosen


def line(report: dict[str, Any]) -> str:
    lat = report["latency_ms"]
    return (
        f"{report['throughput_rps']:7.1f} req/s {report['items_per_s']:8.1f} listings/s  "
        f"p50 {lat['p50']:6.1f} ms  p99 {lat['p99']:6.1f} ms  errors {report['errors']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per measured run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--n-per-class", type=int, default=60, help="sample size used to train the champion")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "serving.json")
    args = parser.parse_args()
    started = time.perf_counter()

    with ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rakuten-bench-")))
        print("training the champion ...", flush=True)
        champion = train_champion(home, args.n_per_class)
        settings = Settings(_env_file=None, home=home)
        from rakuten_mlops.appdb import create_schema, make_engine, session_factory, session_scope
        from rakuten_mlops.serving.users import create_user

        engine = make_engine(settings.app_database_url)
        create_schema(engine)
        with session_scope(session_factory(engine)) as session:
            create_user(session, "bench", PASSWORD, "predictor")
        engine.dispose()

        env = {
            **os.environ,
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
            "RAKUTEN_HOME": str(home),
            "RAKUTEN_JWT_SECRET": secrets.token_urlsafe(48),
            "RAKUTEN_MODEL_POLL_SECONDS": "0",
            "RAKUTEN_PREDICT_QUOTA_PER_MINUTE": "0",  # one user at full speed: no per-user quota
            "MLFLOW_TRACKING_URI": settings.tracking_uri,
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        }
        api_port, mlflow_port = free_port(), free_port()
        api_url, mlflow_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{mlflow_port}"
        print("starting both servers ...", flush=True)
        stack.enter_context(
            server(
                [sys.executable, "-m", "uvicorn", "--factory", "rakuten_mlops.serving.app:create_app",
                 "--host", "127.0.0.1", "--port", str(api_port), "--workers", "1", "--log-level", "warning",
                 "--no-access-log"],
                env, f"{api_url}/readyz", home / "api.log",
            )
        )  # fmt: skip
        stack.enter_context(
            server(
                [sys.executable, "-m", "mlflow", "models", "serve", "-m",
                 f"models:/{settings.model_name}@champion", "--env-manager", "local",
                 "-h", "127.0.0.1", "-p", str(mlflow_port), "-w", "1"],
                env, f"{mlflow_url}/ping", home / "mlflow.log",
            )
        )  # fmt: skip
        token = httpx.post(
            f"{api_url}/v1/auth/token", data={"username": "bench", "password": PASSWORD}
        ).json()
        listings = load_listings(champion["data_dir"], limit=2000, seed=1)
        load_before = os.getloadavg()
        targets = {"mlflow": (mlflow_url, "mlflow"), "api": (api_url, "api")}
        kinds = {"single": 1, "batch": args.batch_size}
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {t: {k: [] for k in kinds} for t in targets}
        for round_no in range(args.rounds):
            # Interleaved, alternating order: background load on a shared machine hits both alike.
            order = list(targets) if round_no % 2 == 0 else list(reversed(targets))
            for kind, batch in kinds.items():
                for target in order:
                    url, mode = targets[target]
                    cfg = TrafficConfig(
                        url=url, token=token["access_token"], rate=0, duration_s=args.duration,
                        concurrency=args.concurrency, batch_size=batch, mode=mode,  # type: ignore[arg-type]
                    )  # fmt: skip
                    report = measure(
                        cfg, build_payloads(listings, batch, cfg.mode), warmup=30 if round_no == 0 else 0
                    )
                    runs[target][kind].append(report)
                    print(f"round {round_no + 1}  {target:6} {kind:6}  {line(report)}", flush=True)
        load_after = os.getloadavg()

    results = {t: {k: median_run(runs[t][k]) for k in kinds} for t in targets}
    ratio = {
        kind: {
            "throughput_x": round(
                results["api"][kind]["items_per_s"] / max(results["mlflow"][kind]["items_per_s"], 1e-9), 2
            ),
            "p99_ms": {t: results[t][kind]["latency_ms"]["p99"] for t in targets},
        }
        for kind in kinds
    }
    out = {
        "benchmark": "serving",
        "command": "python benchmarks/serving_benchmark.py " + " ".join(sys.argv[1:]),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "load_average_1m": {"before": round(load_before[0], 2), "after": round(load_after[0], 2)},
        },
        "model": {"kind": "text only, default params.yaml text model", **champion},
        "load": {
            "concurrency": args.concurrency, "duration_s": args.duration, "batch_size": args.batch_size,
            "rounds": args.rounds, "workers_per_server": 1,
            "generator": "rakuten_mlops.simulation.loadgen.traffic (asyncio keep-alive client, same machine)",
            "reported": "per target and kind: the round with the median listings/s (all under 'rounds')",
        },
        "results": results,
        "api_vs_mlflow": ratio,
        "total_seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str))
    print(json.dumps(ratio, indent=2))
    print(f"written to {args.out} in {out['total_seconds']} s")


if __name__ == "__main__":
    main()
