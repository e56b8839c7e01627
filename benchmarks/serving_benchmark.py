"""Serving benchmark: the same champion under this API and under `mlflow models serve`, same load.

Trains a text-only champion (the default text model) on a generated sample in a
temporary home, starts both servers on 127.0.0.1 (one worker each), then drives each with the
traffic generator at equal concurrency: single-listing requests, then batches. Writes JSON.

The HTTP floor is measured beside them: a bare ASGI app (`benchmarks/http_floor.py`) under
uvicorn with the API's options, answering single listings with a fixed prediction. With the
in-process rate of the same model, it bounds what any endpoint served this way can reach on
single listings: one worker spends at least 1/floor + 1/model seconds of its one interpreter on
each (`single_listing_bound` in the JSON).

The ceiling is measured in the same run: the same model, loaded in this process, predicting
batches of `--ceiling-rows` listings back to back (listings/s, one thread, no HTTP). Each load run
also records the CPU the load generator itself used (it shares the cores with the servers) and
the CPU of the server's process tree.

    python benchmarks/serving_benchmark.py                 # ~2 minutes on 2 cores
    python benchmarks/serving_benchmark.py --duration 5    # quicker, noisier
    python benchmarks/serving_benchmark.py --targets api --api-workers 2 --out /tmp/w2.json
    python benchmarks/serving_benchmark.py --targets api --rounds 1 \\
        --profile benchmarks/results/serving_profile.svg
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
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
import psutil

from rakuten_mlops.config import Params, Settings
from rakuten_mlops.simulation.loadgen.traffic import TrafficConfig, build_payloads, load_listings, run_traffic

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = secrets.token_urlsafe(16)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def train_champion(home: Path, n_per_class: int, text_model: str) -> dict[str, Any]:
    """Generate a sample and run the training pipeline (text only) into `home`."""
    from rakuten_mlops.pipelines.runner import run_pipeline
    from rakuten_mlops.simulation.core.sample import generate_sample

    data_dir = home / "data"
    generate_sample(data_dir, n_per_class=n_per_class, seed=11, with_images=False)
    settings = Settings(_env_file=None, home=home)
    params = Params.model_validate(
        {
            "image": {"enabled": False},
            "fusion": {"enabled": False},
            "promotion": {"min_f1": 0.0},
            # One fixed model, so that runs compare (`auto` picks by cross-validation on the sample).
            "text": {
                "model": text_model,
                **({} if text_model.endswith("+use") else {"sentence_encoder": None}),
            },
        }
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


def _tree_cpu_s(proc: psutil.Process) -> tuple[float, float]:
    """CPU seconds of a process and its children (uvicorn workers): all threads, main threads only.

    A worker's main thread runs the event loop (HTTP, routing, auth, JSON, validation); the
    other threads are the predict threads, the prediction-log writer and the shadow scorer.
    """
    total = main = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            for t in p.threads():
                total += t.user_time + t.system_time
                if t.id == p.pid:
                    main += t.user_time + t.system_time
        except psutil.Error:
            pass
    return total, main


def measure(cfg: TrafficConfig, payloads: list[bytes], server_pid: int, warmup: int = 30) -> dict[str, Any]:
    """Warm up with `warmup` requests, then run the measured load; records the CPU each side used."""
    if warmup:
        asyncio.run(
            run_traffic(TrafficConfig(**{**cfg.__dict__, "duration_s": 10, "max_requests": warmup}), payloads)
        )
    server = psutil.Process(server_pid)
    gen0, srv0, wall0 = time.process_time(), _tree_cpu_s(server), time.perf_counter()
    report = asyncio.run(run_traffic(cfg, payloads))
    wall = time.perf_counter() - wall0
    cpus = os.cpu_count() or 1
    srv1 = _tree_cpu_s(server)
    gen, srv, loop = time.process_time() - gen0, srv1[0] - srv0[0], srv1[1] - srv0[1]
    report["cpu"] = {
        "loadgen_cores": round(gen / wall, 3),  # 1.0 = one core busy the whole run
        "loadgen_share_of_machine": round(gen / wall / cpus, 3),
        "server_cores": round(srv / wall, 3),
        "server_share_of_machine": round(srv / wall / cpus, 3),
        "server_event_loop_cores": round(loop / wall, 3),  # the main thread of each worker
        "server_other_threads_cores": round((srv - loop) / wall, 3),  # predict, log writer, shadow
    }
    return report


def ceiling(model: Any, listings: list[dict[str, Any]], rows: int, duration_s: float) -> dict[str, Any]:
    """The same model's batched predict rate in this process (listings/s): what no server can beat."""
    from rakuten_mlops.serving.predictor import predict_rows

    cycle = itertools.cycle(listings)
    batches = [
        [{"designation": x["designation"], "description": x["description"], "image": None} for x in chunk]
        for chunk in ([next(cycle) for _ in range(rows)] for _ in range(max(1, len(listings) // rows)))
    ]
    predict_rows(model, batches[0])  # warm-up
    n, start = 0, time.perf_counter()
    cpu0 = time.process_time()
    while time.perf_counter() - start < duration_s:
        n += len(predict_rows(model, batches[(n // rows) % len(batches)]))
    elapsed = time.perf_counter() - start
    return {
        "batch_rows": rows,
        "listings": n,
        "seconds": round(elapsed, 3),
        "listings_per_s": round(n / elapsed, 1),
        "cpu_cores": round((time.process_time() - cpu0) / elapsed, 3),
        "what": "predict_rows (rows in, dicts out) on the loaded pyfunc model, one thread, no HTTP",
    }


def median_run(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median listings/s, plus every run's headline figures."""
    ordered = sorted(reports, key=lambda r: r["items_per_s"])
    chosen = dict(ordered[len(ordered) // 2])
    chosen["rounds"] = [
        {"items_per_s": r["items_per_s"], "p50_ms": r["latency_ms"]["p50"], "p99_ms": r["latency_ms"]["p99"]}
        for r in reports
    ]
    return chosen


# Where a request's server time goes: each self sample of the flame graph goes to the category of
# the frame nearest the leaf that matches (first pattern wins on a frame).
CATEGORIES = [
    ("token verification (JWT)", r"Authenticator\.verify|decode_token"),
    ("user lookup (account cache, database)", r"Authenticator\._account|Authenticator\._lookup"),
    ("quota", r"quota_one|_spend_quota|Quota\."),
    ("body read, JSON decode, validation", r"read_product|_validated|check_product|read_batch|check_texts"),
    ("response encoding", r"\b_json \(|orjson|serialize_response|Response\.__call__|Response\.__init__"),
    ("prediction-log record, metrics, shadow offer", r"_record \(|observe_prediction|\.offer \(|\.add \("),
    ("model predict (predict threads)", r"ModelHolder\.__init__\.<locals>\.<lambda>|predict_rows"),
    ("prediction-log writer thread", r"PredictionLog\._run"),
    ("shadow scorer thread", r"ShadowScorer\._run"),
    ("predict threads between calls", r"_worker \(concurrent/futures/thread\.py"),
    (
        "micro-batcher (queueing, futures)",
        r"MicroBatcher|_chain_future|Future\.set_result|ThreadPoolExecutor\.submit",
    ),
    ("HTTP parsing and sending (uvicorn, httptools)", r"httptools_impl|h11_impl|uvicorn/protocols"),
    ("metrics middleware", r"MetricsMiddleware"),
    ("FastAPI/Starlette routing, middleware, dependencies", r"fastapi/|starlette/|Middleware\.__call__"),
    ("event loop itself (uvloop, asyncio)", r"asyncio/|Runner\.run|uvloop"),
]


def flame_breakdown(svg_path: Path) -> dict[str, float]:
    """Share of a py-spy flame graph's samples by category (CATEGORIES), largest first."""
    import collections
    import html
    import re

    frames = []
    pattern = r'<g><title>(.*?)</title><rect x="[^"]*" y="([\d.]+)"[^>]*fg:x="(\d+)" fg:w="(\d+)"'
    for m in re.finditer(pattern, svg_path.read_text(), re.S):
        name = re.sub(r" \([\d,]+ samples?, [\d.]+%\)$", "", html.unescape(m.group(1)).strip())
        frames.append({"name": name, "y": float(m.group(2)), "x": int(m.group(3)), "w": int(m.group(4))})
    if not frames:
        return {}
    by_y: dict[float, list[dict[str, Any]]] = collections.defaultdict(list)
    for f in frames:
        f["children_w"], f["parent"] = 0, None
        by_y[f["y"]].append(f)
    root_y = next((f["y"] for f in frames if f["name"] == "all"), max(by_y))
    step = 16.0 if root_y == max(by_y) else -16.0  # a parent sits one row nearer the root
    for f in frames:
        for parent in by_y.get(f["y"] + step, []):
            if parent["x"] <= f["x"] and f["x"] + f["w"] <= parent["x"] + parent["w"]:
                f["parent"] = parent
                parent["children_w"] += f["w"]
                break
    totals: collections.Counter[str] = collections.Counter()
    for f in frames:
        own = f["w"] - f["children_w"]
        node, category = f, "other"
        while own > 0 and node is not None and category == "other":
            category = next((c for c, pat in CATEGORIES if re.search(pat, node["name"])), "other")
            node = node["parent"]
        totals[category] += max(own, 0)
    total = sum(totals.values()) or 1
    return {c: round(100 * n / total, 1) for c, n in totals.most_common()}


def record_profile(
    args: argparse.Namespace, url: str, token: str, listings: list[dict[str, Any]], pid: int
) -> dict[str, Any]:
    """A py-spy flame graph of the API's worker(s) while single-listing load runs."""
    import shutil

    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise SystemExit("--profile needs py-spy: pip install 'rakuten-mlops[dev]'")
    args.profile.parent.mkdir(parents=True, exist_ok=True)
    seconds = max(int(args.duration), 3)
    rec = subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200",
         "--subprocesses", "--nonblocking", "--gil", "--format", "flamegraph", "-o", str(args.profile)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    time.sleep(0.5)
    cfg = TrafficConfig(
        url=url, token=token, rate=0, duration_s=seconds + 1, concurrency=args.concurrency,
        batch_size=1, mode="api",
    )  # fmt: skip
    report = measure(cfg, build_payloads(listings, 1, "api"), pid, warmup=0)
    _, err = rec.communicate(timeout=60)
    if rec.returncode != 0:
        raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
    print(f"profile  api    single  {line(report)}  -> {args.profile}", flush=True)
    svg = args.profile.resolve()
    return {
        "svg": str(svg.relative_to(ROOT)) if svg.is_relative_to(ROOT) else str(svg),
        "seconds": seconds,
        "rate_hz": 200,
        "samples": "only threads holding the GIL (py-spy --gil): where the Python CPU goes",
        "items_per_s_while_profiled": report["items_per_s"],
        "cpu_while_profiled": report["cpu"],
        "breakdown_percent": flame_breakdown(args.profile),
    }


def line(report: dict[str, Any]) -> str:
    lat = report["latency_ms"]
    return (
        f"{report['throughput_rps']:7.1f} req/s {report['items_per_s']:8.1f} listings/s  "
        f"p50 {lat['p50']:6.1f} ms  p99 {lat['p99']:6.1f} ms  errors {report['errors']}"
    )


TABLE_START, TABLE_END = "<!-- serving-table:start -->", "<!-- serving-table:end -->"


def markdown_table(out: dict[str, Any]) -> str:
    """The README's serving table, from one run's JSON."""
    res, share, ratio = out["results"], out["api_share_of_ceiling"], out["api_vs_mlflow"]
    load = out["machine"]["load_average_1m"]
    names = {"api": "this API", "mlflow": "`mlflow models serve`", "floor": "bare uvicorn endpoint (floor)"}
    lines = [
        "| server | requests | req/s | listings/s | p50 ms | p99 ms | share of ceiling | vs MLflow |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for target in ("api", "mlflow", "floor"):
        for kind in ("single", "batch"):
            if kind not in res.get(target, {}):
                continue
            r = res[target][kind]
            size = "1 listing" if kind == "single" else f"{out['load']['batch_size']} listings"
            lat = r["latency_ms"]
            own = (
                f"{share[kind]:.0%}"
                if target == "api"
                else f"{r['items_per_s'] / out['ceiling']['listings_per_s']:.0%}"
            )
            x = f"{ratio[kind]['throughput_x']}×" if ratio and target == "api" else ""
            lines.append(
                f"| {names[target]} | {size} | {r['throughput_rps']:,.0f} | {r['items_per_s']:,.0f} | "
                f"{lat['p50']:.0f} | {lat['p99']:.0f} | {own} | {x} |"
            )
    c, small = out["ceiling"], out["ceiling_at_concurrency_rows"]
    workers = out["load"]["workers_per_server"]
    lines += [
        "",
        f"Ceiling (the same model in process, no HTTP): **{c['listings_per_s']:,.0f} listings/s** in "
        f"{c['batch_rows']}-row calls, {small['listings_per_s']:,.0f} in {small['batch_rows']}-row calls "
        f"(the largest micro-batch {out['load']['concurrency']} clients can form); single listings reach "
        f"{share.get('single_vs_concurrency_rows', 0):.0%} of the latter. Concurrency "
        f"{out['load']['concurrency']}, {out['load']['rounds']} interleaved rounds of "
        f"{out['load']['duration_s']:g} s (medians), workers: API {workers['api']}, "
        f"MLflow {workers['mlflow']}; load average {load['before']} before, {load['after']} after; "
        f"`{out['command'].strip()}`, {out['when']}.",
    ]
    bound = out.get("single_listing_bound")
    if bound:
        lines += [
            "",
            f"The floor (a bare ASGI app answering a fixed prediction, no routing, token, validation, "
            f"model nor log) answers {bound['http_floor_rps']:,.0f} req/s under the same load; with the "
            f"model's {bound['model_listings_per_s']:,.0f} listings/s, one worker can answer at most "
            f"**{bound['bound_rps']:,.0f} single listings/s** ({bound['bound_share_of_ceiling']:.0%} of "
            f"the ceiling). This API reaches {bound['api_share_of_bound']:.0%} of that bound.",
        ]
    return "\n".join(lines)


def update_readme(readme: Path, table: str) -> None:
    text = readme.read_text()
    start, end = text.find(TABLE_START), text.find(TABLE_END)
    if start < 0 or end < start:
        raise SystemExit(f"{readme} has no {TABLE_START} ... {TABLE_END} block")
    readme.write_text(text[: start + len(TABLE_START)] + "\n" + table + "\n" + text[end:])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per measured run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--n-per-class", type=int, default=60, help="sample size used to train the champion")
    parser.add_argument(
        "--text-model", default="stack", help="text model of the champion (params.yaml text.model; not auto)"
    )
    parser.add_argument("--ceiling-rows", type=int, default=256, help="rows per in-process predict call")
    parser.add_argument("--api-workers", type=int, default=1, help="uvicorn workers of this API")
    parser.add_argument(
        "--targets", default="mlflow,api,floor",
        help="comma-separated: mlflow, api, floor (the bare HTTP floor, single listings only); default all",
    )  # fmt: skip
    parser.add_argument(
        "--profile", type=Path, default=None,
        help="after the rounds, record a py-spy flame graph (SVG) of the API under single-listing load",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "serving.json")
    parser.add_argument(
        "--update-readme", action="store_true", help="rewrite the README's serving table from this run"
    )
    args = parser.parse_args()
    started = time.perf_counter()

    with ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rakuten-bench-")))
        print("training the champion ...", flush=True)
        champion = train_champion(home, args.n_per_class, args.text_model)
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
        wanted = [t.strip() for t in args.targets.split(",") if t.strip()]
        if not wanted or set(wanted) - {"mlflow", "api", "floor"}:
            parser.error("--targets takes mlflow, api, floor (comma-separated)")
        api_port, mlflow_port, floor_port = free_port(), free_port(), free_port()
        api_url, mlflow_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{mlflow_port}"
        floor_url = f"http://127.0.0.1:{floor_port}"
        print("starting the servers ...", flush=True)
        pids: dict[str, int] = {}
        if "api" in wanted:
            pids["api"] = stack.enter_context(
                server(
                    # As a user starts it (`rakuten-mlops serve`: with N workers, a socket each).
                    [sys.executable, "-c", "from rakuten_mlops.cli import main; main()", "serve",
                     "--host", "127.0.0.1", "--port", str(api_port), "--workers", str(args.api_workers),
                     "--log-level", "warning", "--no-access-log"],
                    env, f"{api_url}/readyz", home / "api.log",
                )
            ).pid  # fmt: skip
        if "mlflow" in wanted:
            pids["mlflow"] = stack.enter_context(
                server(
                    [sys.executable, "-m", "mlflow", "models", "serve", "-m",
                     f"models:/{settings.model_name}@champion", "--env-manager", "local",
                     "-h", "127.0.0.1", "-p", str(mlflow_port), "-w", "1"],
                    env, f"{mlflow_url}/ping", home / "mlflow.log",
                )
            ).pid  # fmt: skip
        if "floor" in wanted:
            pids["floor"] = stack.enter_context(
                server(
                    # uvicorn as `rakuten-mlops serve` runs it (auto loop and parser: uvloop, httptools).
                    [sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "benchmarks"), "http_floor:app",
                     "--host", "127.0.0.1", "--port", str(floor_port), "--log-level", "warning",
                     "--no-access-log", "--no-proxy-headers"],
                    env, f"{floor_url}/readyz", home / "floor.log",
                )
            ).pid  # fmt: skip
        if args.api_workers > 1 and "api" in wanted:
            time.sleep(5)  # /readyz answered from one worker; let the others load the model too
        token = (
            httpx.post(f"{api_url}/v1/auth/token", data={"username": "bench", "password": PASSWORD}).json()
            if "api" in wanted
            else {"access_token": None}
        )
        listings = load_listings(champion["data_dir"], limit=2000, seed=1)
        load_before = os.getloadavg()
        all_targets = {"mlflow": (mlflow_url, "mlflow"), "api": (api_url, "api"), "floor": (floor_url, "api")}
        targets = {t: all_targets[t] for t in wanted}
        kinds = {"single": 1, "batch": args.batch_size}
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {t: {k: [] for k in kinds} for t in targets}
        ceilings: list[dict[str, Any]] = []
        small_ceilings: list[dict[str, Any]] = []
        os.environ["MLFLOW_TRACKING_URI"] = settings.tracking_uri
        import mlflow.pyfunc

        model = mlflow.pyfunc.load_model(f"models:/{settings.model_name}@champion")
        for round_no in range(args.rounds):
            # The ceilings once a round, while the servers idle: they see the same background load.
            # `concurrency` rows: the largest micro-batch single listings can form at this concurrency.
            ceilings.append(ceiling(model, listings, args.ceiling_rows, min(args.duration, 3.0)))
            small_ceilings.append(ceiling(model, listings, args.concurrency, min(args.duration, 3.0)))
            print(
                f"round {round_no + 1}  ceiling {ceilings[-1]['listings_per_s']:8.1f} listings/s in process "
                f"({args.ceiling_rows}-row calls), {small_ceilings[-1]['listings_per_s']:8.1f} "
                f"({args.concurrency}-row calls)",
                flush=True,
            )
            # Interleaved, alternating order: background load on a shared machine hits both alike.
            order = list(targets) if round_no % 2 == 0 else list(reversed(targets))
            for kind, batch in kinds.items():
                for target in order:
                    if target == "floor" and kind != "single":
                        continue  # the floor answers one fixed prediction
                    url, mode = targets[target]
                    cfg = TrafficConfig(
                        url=url, token=token["access_token"], rate=0, duration_s=args.duration,
                        concurrency=args.concurrency, batch_size=batch, mode=mode,  # type: ignore[arg-type]
                    )  # fmt: skip
                    report = measure(
                        cfg, build_payloads(listings, batch, cfg.mode), pids[target],
                        warmup=30 if round_no == 0 else 0,
                    )  # fmt: skip
                    runs[target][kind].append(report)
                    print(f"round {round_no + 1}  {target:6} {kind:6}  {line(report)}", flush=True)
        load_after = os.getloadavg()
        profile = None
        if args.profile is not None and "api" in wanted:
            profile = record_profile(args, api_url, token["access_token"], listings, pids["api"])

    results = {t: {k: median_run(runs[t][k]) for k in kinds if runs[t][k]} for t in targets}

    def median(runs: list[dict[str, Any]]) -> dict[str, Any]:
        chosen = sorted(runs, key=lambda c: c["listings_per_s"])[len(runs) // 2]
        return {**chosen, "rounds": [c["listings_per_s"] for c in runs]}

    ceiling_median, small_median = median(ceilings), median(small_ceilings)
    share = {
        kind: round(results["api"][kind]["items_per_s"] / ceiling_median["listings_per_s"], 3)
        for kind in kinds
        if "api" in results
    }
    if "api" in results:
        share["single_vs_concurrency_rows"] = round(
            results["api"]["single"]["items_per_s"] / small_median["listings_per_s"], 3
        )
    ratio = (
        {
            kind: {
                "throughput_x": round(
                    results["api"][kind]["items_per_s"] / max(results["mlflow"][kind]["items_per_s"], 1e-9), 2
                ),
                "p99_ms": {t: results[t][kind]["latency_ms"]["p99"] for t in ("api", "mlflow")},
            }
            for kind in kinds
        }
        if {"api", "mlflow"} <= set(targets)
        else None
    )
    bound = None
    if {"api", "floor"} <= set(targets):
        floor_rps = results["floor"]["single"]["items_per_s"]
        model_rps = small_median["listings_per_s"]
        most = 1 / (1 / floor_rps + 1 / model_rps)
        bound = {
            "http_floor_rps": floor_rps,
            "model_listings_per_s": model_rps,
            "bound_rps": round(most, 1),
            "bound_share_of_ceiling": round(most / ceiling_median["listings_per_s"], 3),
            "api_share_of_bound": round(results["api"]["single"]["items_per_s"] / most, 3),
            "what": (
                "single listings, one worker: the bare endpoint's time a request plus the model's time "
                "a listing in calls of `concurrency` rows, both spent holding the worker's one "
                "interpreter lock; no endpoint served by uvicorn in one worker answers faster"
            ),
        }
    out = {
        "benchmark": "serving",
        "command": "python benchmarks/serving_benchmark.py " + " ".join(sys.argv[1:]),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "load_average_1m": {"before": round(load_before[0], 2), "after": round(load_after[0], 2)},
            "note": "the load average counts this benchmark's own processes too (about 2 while it runs)",
        },
        "model": {"kind": f"text only, text.model={args.text_model}, other params.yaml defaults", **champion},
        "load": {
            "concurrency": args.concurrency, "duration_s": args.duration, "batch_size": args.batch_size,
            "rounds": args.rounds, "workers_per_server": {"api": args.api_workers, "mlflow": 1},
            "generator": "rakuten_mlops.simulation.loadgen.traffic (asyncio keep-alive client, same machine)",
            "reported": "per target and kind: the round with the median listings/s (all under 'rounds')",
        },
        "ceiling": ceiling_median,
        "ceiling_at_concurrency_rows": small_median,
        "results": results,
        "api_share_of_ceiling": share,
        "api_vs_mlflow": ratio,
        "single_listing_bound": bound,
        "profile": profile,
        "total_seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str))
    print(json.dumps({"api_vs_mlflow": ratio, "api_share_of_ceiling": share, "bound": bound}, indent=2))
    if {"api", "mlflow"} <= set(targets):
        table = markdown_table(out)
        print(table)
        if args.update_readme:
            update_readme(ROOT / "README.md", table)
            print("README.md serving table updated")
    print(f"written to {args.out} in {out['total_seconds']} s")


if __name__ == "__main__":
    main()
