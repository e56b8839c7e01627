"""What one predict call costs in process, by rows per call: the served model's own time, no HTTP.

Trains the serving benchmark's champion (text only, `text.model: stack`, generated sample), loads
it as the API does (the registered pyfunc model) and times, for calls of 1, 8, 32 and 256 rows:

* `api`: `predict_rows`, the API's path (the model predicts straight from the rows, TF-IDF
  features and base models through `TextScorer`);
* `mlflow`: the pyfunc model's `predict` on a DataFrame (what `mlflow models serve` calls),
  through `TextScorer` too;
* `reference`: the path before `TextScorer`: `predict_rows` through MLflow's `predict`, with
  scikit-learn's own transform and predict calls.

Each figure is the median of interleaved timings (the three paths alternate call by call, so
background load hits them alike). Also checks the three give the same answers.

    python benchmarks/predict_call_cost.py                       # ~1 minute on 2 cores
    python benchmarks/predict_call_cost.py --seconds 2 --out /tmp/cost.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from serving_benchmark import train_champion  # noqa: E402

from rakuten_mlops.config import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", default="1,8,32,256", help="rows per call, comma-separated")
    parser.add_argument("--seconds", type=float, default=4.0, help="timing per row count (all paths)")
    parser.add_argument("--n-per-class", type=int, default=60)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "predict_call_cost.json"
    )
    args = parser.parse_args()

    import mlflow.pyfunc
    import pandas as pd
    import sklearn

    from rakuten_mlops.models.text import TextClassifier
    from rakuten_mlops.serving.predictor import predict_rows
    from rakuten_mlops.simulation.loadgen.traffic import load_listings

    with tempfile.TemporaryDirectory(prefix="rakuten-cost-") as tmp:
        home = Path(tmp)
        print("training the champion ...", flush=True)
        champion = train_champion(home, args.n_per_class, "stack")
        settings = Settings(_env_file=None, home=home)
        os.environ["MLFLOW_TRACKING_URI"] = settings.tracking_uri
        model = mlflow.pyfunc.load_model(f"models:/{settings.model_name}@champion")
        listings = load_listings(champion["data_dir"], limit=2000, seed=1)
        load_before = os.getloadavg()

        class ThroughMlflow:  # predict_rows as it was: DataFrame, MLflow's predict, DataFrame back
            predict = staticmethod(model.predict)

        def reference(rows: list[dict[str, Any]]) -> Any:
            original = TextClassifier.scorer
            TextClassifier.scorer = lambda self: None  # type: ignore[method-assign]
            try:
                return predict_rows(ThroughMlflow(), rows)
            finally:
                TextClassifier.scorer = original  # type: ignore[method-assign]

        def mlflow_predict(rows: list[dict[str, Any]]) -> Any:
            frame = pd.DataFrame(
                {
                    "designation": [r["designation"] for r in rows],
                    "description": [r["description"] for r in rows],
                }
            )
            with sklearn.config_context(skip_parameter_validation=True):
                return model.predict(frame)

        paths = {
            "api": lambda rows: predict_rows(model, rows),
            "mlflow": mlflow_predict,
            "reference": reference,
        }
        results = []
        for n in [int(x) for x in args.rows.split(",")]:
            cycle = itertools.cycle(listings)
            calls = [
                [
                    {"designation": x["designation"], "description": x["description"], "image": None}
                    for x in chunk
                ]
                for chunk in ([next(cycle) for _ in range(n)] for _ in range(8))
            ]
            assert predict_rows(model, calls[0]) == reference(calls[0]), "the paths disagree"
            times: dict[str, list[float]] = {p: [] for p in paths}
            start, k = time.perf_counter(), 0
            while time.perf_counter() - start < args.seconds or k < 3:
                for name, fn in paths.items():
                    t0 = time.perf_counter()
                    fn(calls[k % len(calls)])
                    times[name].append(time.perf_counter() - t0)
                k += 1
            row = {"rows": n, "calls_per_path": k}
            for name, ts in times.items():
                ms = statistics.median(ts) * 1000
                row[name] = {"ms_per_call": round(ms, 3), "listings_per_s": round(n / ms * 1000, 1)}
            row["api_speedup_vs_reference"] = round(
                row["reference"]["ms_per_call"] / row["api"]["ms_per_call"], 2
            )
            results.append(row)
            print(
                f"{n:4d} rows  "
                + "  ".join(f"{p} {row[p]['ms_per_call']:7.2f} ms" for p in paths)
                + f"  ({row['api_speedup_vs_reference']}x)",
                flush=True,
            )
        load_after = os.getloadavg()

    out = {
        "benchmark": "predict_call_cost",
        "command": "python benchmarks/predict_call_cost.py " + " ".join(sys.argv[1:]),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_1m": {"before": round(load_before[0], 2), "after": round(load_after[0], 2)},
        },
        "model": {
            "kind": "text only, text.model=stack, other params.yaml defaults",
            "train": champion["train"],
        },
        "what": {
            "api": "predict_rows (rows in, dicts out; the model predicts straight from the rows)",
            "mlflow": "the pyfunc model's predict on a DataFrame (mlflow models serve's call)",
            "reference": "predict_rows via MLflow's predict, scikit-learn's own calls (the path before)",
            "figure": "median ms per call, the paths interleaved call by call, one thread",
        },
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
