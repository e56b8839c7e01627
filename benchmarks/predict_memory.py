"""Peak memory and speed of the streaming `rakuten-mlops predict` as the input grows.

    python benchmarks/predict_memory.py                            # 100k and 400k rows
    python benchmarks/predict_memory.py --rows 100000 1000000 --chunk-size 10000

A text-only model is trained on a small generated sample (`pipeline run`, default params) in a
throw-away RAKUTEN_HOME; the inputs are generated listings (the sample's unlabelled and labelled
rows repeated under new index values, so the text is realistic but not unique). Each size is
predicted by `rakuten-mlops predict --chunk-size N` in its own process, measured by
`/usr/bin/time -v` (maximum resident set size) — plus, as the reference, the smallest size read as
one chunk (what the command did before it streamed: the whole input in memory).
Writes benchmarks/results/predict_memory.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from rakuten_mlops.data.schema import X_TEST, X_TRAIN
from rakuten_mlops.simulation.core.sample import generate_sample

HERE = Path(__file__).resolve().parent
CLI = Path(sys.executable).with_name("rakuten-mlops")
MODEL_URI = "models:/rakuten-product-classifier/1"


def write_input(sample: Path, rows: int, target: Path) -> None:
    """`rows` listings in the X_*_update.csv format, written 50k rows at a time."""
    base = pd.concat(
        [
            pd.read_csv(sample / name, index_col=0, dtype=str, keep_default_na=False)
            for name in (X_TRAIN, X_TEST)
        ]
    )
    base.index.name = None
    done = 0
    with target.open("w", encoding="utf-8") as f:
        while done < rows:
            n = min(50_000, rows - done)
            block = pd.concat([base] * (n // len(base) + 1)).iloc[:n].copy()
            block.index = pd.RangeIndex(done, done + n)
            block.to_csv(f, header=done == 0)
            done += n


def measure(input_csv: Path, out: Path, chunk_size: int, env: dict[str, str]) -> dict[str, float]:
    t0 = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-v", str(CLI), "predict", "--input", str(input_csv), "--output", str(out),
         "--model-uri", MODEL_URI, "--chunk-size", str(chunk_size)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"predict failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1])  # type: ignore[index]
    rows = len(pd.read_csv(out, usecols=["prdtypecode"]))
    return {
        "rows": rows,
        "chunk_size": chunk_size,
        "peak_rss_mib": round(peak_kb / 1024, 1),
        "wall_seconds": round(wall, 1),
        "rows_per_second": round(rows / wall, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, 400_000])
    ap.add_argument("--chunk-size", type=int, default=10_000)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "predict_memory.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "RAKUTEN_HOME": str(tmp / "home")}
        sample = tmp / "sample"
        generate_sample(sample, n_per_class=40, seed=1, with_images=False)
        subprocess.run([str(CLI), "pipeline", "run", "--data-dir", str(sample)], env=env, check=True,
                       capture_output=True)  # fmt: skip
        runs = []
        for rows in sorted(args.rows):
            inp = tmp / f"listings_{rows}.csv"
            write_input(sample, rows, inp)
            runs.append({"mode": "streamed", **measure(inp, tmp / "out.csv", args.chunk_size, env)})
            print(json.dumps(runs[-1]), flush=True)
            if rows == min(args.rows):
                runs.append({"mode": "one chunk (whole input)", **measure(inp, tmp / "out.csv", rows, env)})
                print(json.dumps(runs[-1]), flush=True)
            inp.unlink()
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "note": "one run each, on a shared machine that may have been busy (other jobs on its 2 cores)",
        "model": "text-only, default params, trained on a generated sample (40 rows per class)",
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
