"""What the prediction log's writer costs per batch of 500 records as its table grows, by id kind.

The API's writer thread inserts queued prediction records in batches (`PredictionLog`); every
insert also updates the table's indexes, the primary key among them. This writes `--rows` records
in 500-row batches into a new SQLite app database, once with random ids (UUID version 4) and once
with the time-ordered ids the API uses (`appdb.record_id`, UUID version 7), and reports the median
wall and CPU time of a batch over the first and the last `--window` batches.

    python benchmarks/prediction_log_writes.py            # ~1.5 minutes on 2 cores
    python benchmarks/prediction_log_writes.py --rows 50000 --out /tmp/writes.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rakuten_mlops.appdb import create_schema, make_engine, record_id, utcnow  # noqa: E402
from rakuten_mlops.serving.prediction_log import PredictionLog  # noqa: E402

BATCH = 500


def _record(ident: str, i: int) -> dict[str, Any]:
    """A prediction record shaped as the predict route queues it."""
    return {
        "id": ident, "created_at": utcnow(), "username": f"client{i % 8}",
        "model_name": "rakuten-product-classifier", "model_version": "3",
        "designation": f"Lot de 3 coussins décoratifs en velours 45x45 cm n°{i}",
        "description": "Housse de coussin douce, fermeture éclair invisible, lavable en machine.",
        "image_sha256": None, "prdtypecode": 1560, "probability": 0.8123,
        "top_k": [{"code": 1560, "probability": 0.81}, {"code": 2060, "probability": 0.1}],
        "modalities": "text", "latency_ms": 3.2,
    }  # fmt: skip


def _batches(new_id: Callable[[], str], rows: int, window: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/app.db")
        create_schema(engine)
        plog = PredictionLog(engine, Path(tmp) / "spool")
        plog.schema_ready = True
        wall: list[float] = []
        cpu: list[float] = []
        for b in range(rows // BATCH):
            records = [("predictions", _record(new_id(), b * BATCH + i)) for i in range(BATCH)]
            t0, c0 = time.perf_counter(), time.thread_time()
            if not plog._write(records):
                raise SystemExit("the database refused a batch")
            wall.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
        engine.dispose()
    ms = 1000.0
    return {
        "first_wall_ms": round(statistics.median(wall[:window]) * ms, 2),
        "first_cpu_ms": round(statistics.median(cpu[:window]) * ms, 2),
        "last_wall_ms": round(statistics.median(wall[-window:]) * ms, 2),
        "last_cpu_ms": round(statistics.median(cpu[-window:]) * ms, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=500_000, help="records written per id kind")
    parser.add_argument("--window", type=int, default=40, help="batches in the first and last medians")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "prediction_log_writes.json"
    )
    args = parser.parse_args()
    if args.rows < 2 * args.window * BATCH:
        parser.error(f"--rows must be at least 2 x --window x {BATCH}")
    kinds = {"uuid4 (random)": lambda: str(uuid.uuid4()), "uuid7 (time-ordered, record_id)": record_id}
    results = {}
    for name, new_id in kinds.items():
        results[name] = _batches(new_id, args.rows, args.window)
        print(f"{name}: {results[name]}", flush=True)
    out = {
        "command": "python benchmarks/prediction_log_writes.py"
        + ("" if args.rows == 500_000 else f" --rows {args.rows}"),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "rows": args.rows,
        "batch_rows": BATCH,
        "window_batches": args.window,
        "database": "SQLite (WAL, synchronous=NORMAL), a new file",
        "per_batch": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
