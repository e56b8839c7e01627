"""Catalog scoring: `batch score --engine local` versus `--engine spark` (local[1], local[2]).

    python benchmarks/batch_scoring.py                                  # 200k rows (+ 100k local)
    python benchmarks/batch_scoring.py --rows 1000000 --memory-rows 100000

A text-only champion is trained on a small generated sample (`pipeline run`, default params) in a
throw-away RAKUTEN_HOME; the catalog is generated listings (the sample's rows repeated under new
index values: realistic text, not unique) written as a folder of Parquet part files of 50k rows.
Each run is one `rakuten-mlops batch score` process; its peak memory is the largest sum of the
resident set sizes of the process and all its descendants (the JVM and Spark's Python workers
included), sampled every 0.2 s with psutil. `--memory-rows` adds a local run on a smaller catalog:
the streaming engine's peak memory should not grow with the input.
Writes benchmarks/results/batch_scoring.json (or --out).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import psutil

from rakuten_mlops.data.schema import X_TEST, X_TRAIN
from rakuten_mlops.simulation.core.sample import generate_sample

HERE = Path(__file__).resolve().parent
CLI = Path(sys.executable).with_name("rakuten-mlops")
MODEL_URI = "models:/rakuten-product-classifier/1"
PART_ROWS = 50_000


def write_catalog(sample: Path, rows: int, folder: Path) -> None:
    """`rows` listings with the X_*_update.csv columns, as Parquet part files of PART_ROWS rows."""
    base = pd.concat(
        [
            pd.read_csv(sample / name, index_col=0, dtype=str, keep_default_na=False)
            for name in (X_TRAIN, X_TEST)
        ]
    )
    base.index.name = None
    folder.mkdir(parents=True)
    for part, start in enumerate(range(0, rows, PART_ROWS)):
        n = min(PART_ROWS, rows - start)
        block = pd.concat([base] * (n // len(base) + 1)).iloc[:n].copy()
        block.index = pd.RangeIndex(start, start + n)
        block.to_parquet(folder / f"part-{part:05d}.parquet")


class TreeMemory:
    """Peak of the summed RSS of a process and its descendants, sampled in a thread."""

    def __init__(self, pid: int, every_s: float = 0.2) -> None:
        self.root, self.every_s, self.peak = psutil.Process(pid), every_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            try:
                for p in [self.root, *self.root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):  # a worker that just exited
                        total += p.memory_info().rss
            except psutil.Error:
                return
            self.peak = max(self.peak, total)
            self._stop.wait(self.every_s)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def score(catalog: Path, out: Path, rows: int, env: dict[str, str], engine: str, master: str | None) -> dict:
    args = [str(CLI), "batch", "score", "--input", str(catalog), "--output", str(out), "--engine", engine,
            "--model-uri", MODEL_URI, "--chunk-size", "10000"]  # fmt: skip
    args += ["--master", master] if master else []
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    memory = TreeMemory(proc.pid)
    output, _ = proc.communicate()
    peak = memory.stop()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"batch score failed:\n{output[-3000:]}")
    scored = len(pd.read_parquet(out, columns=["probability"]))
    if scored != rows:
        sys.exit(f"{engine} {master}: {scored} rows scored, {rows} expected")
    shutil.rmtree(out, ignore_errors=True)
    return {
        "engine": engine,
        "master": master,
        "rows": rows,
        "wall_seconds": round(wall, 1),
        "rows_per_second": round(rows / wall, 1),
        "peak_rss_mib_process_tree": round(peak / 2**20, 1),
        # 1-minute load average before and after: above the 2 cores, other jobs shared the machine
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--memory-rows", type=int, default=100_000, help="extra local run (0: none)")
    ap.add_argument("--masters", nargs="+", default=["local[1]", "local[2]"])
    ap.add_argument("--out", type=Path, default=HERE / "results" / "batch_scoring.json")
    args = ap.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = {
            **os.environ,
            "RAKUTEN_HOME": str(tmp / "home"),
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        }
        sample = tmp / "sample"
        generate_sample(sample, n_per_class=40, seed=1, with_images=False)
        subprocess.run([str(CLI), "pipeline", "run", "--data-dir", str(sample)], env=env, check=True,
                       capture_output=True)  # fmt: skip
        plan = [(args.rows, "local", None)] + [(args.rows, "spark", m) for m in args.masters]
        if args.memory_rows:
            plan.append((args.memory_rows, "local", None))
        for rows, engine, master in plan:
            catalog = tmp / f"catalog_{rows}"
            if not catalog.exists():
                write_catalog(sample, rows, catalog)
            # local writes a Parquet folder too (no suffix), like the Spark engine
            runs.append(score(catalog, tmp / "scores", rows, env, engine, master))
            print(json.dumps(runs[-1]), flush=True)
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "command": "python benchmarks/batch_scoring.py " + " ".join(sys.argv[1:]),
        "note": "one run each, on a shared machine that may have been busy (other jobs on its 2 cores); "
        "Spark times include starting the JVM and loading the model in each Python worker",
        "model": "text-only champion, default params, trained on a generated sample (40 rows per class)",
        "catalog": f"generated listings, Parquet part files of {PART_ROWS} rows",
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
