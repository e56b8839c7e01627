"""Speed of the tiny deep recipe: training samples/s, single and batch inference, PyTorch vs ONNX Runtime.

    python benchmarks/deep_speed.py                       # CPU -> benchmarks/results/deep_speed.json
    python benchmarks/deep_speed.py --device cuda --precision bf16 --require-device cuda \\
        --out benchmarks/results/gpu_check.json           # what benchmarks/gpu_check.sh runs

The transformer of params/deep-tiny.yaml (its `text.transformer` section, `--epochs` epochs, no
early stop) is fine-tuned on the built-in sample (`generate_sample`, 40 rows per class on
average, no images), 90 % train / 10 % validation. Training samples/s is the training rows over
the wall time of each epoch's optimisation loop (validation excluded), mean over epochs.
Inference is timed on the validation listings: one listing per call (median of `--repeats`
calls), and the validation listings repeated 5 times in batches of `inference_batch_size`,
with the runtime forced to PyTorch, then to ONNX Runtime (CPU). The machine's load average is
recorded beside the figures.
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
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from rakuten_mlops.config import TransformerParams
from rakuten_mlops.data.schema import LABEL, X_TRAIN, Y_TRAIN
from rakuten_mlops.models.transformer import TransformerTextClassifier
from rakuten_mlops.simulation.core.sample import generate_sample

HERE = Path(__file__).resolve().parent
RECIPE = HERE.parent / "params" / "deep-tiny.yaml"


def sample_frame(n_per_class: int) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        generate_sample(Path(tmp), n_per_class, seed=42, with_images=False)
        x = pd.read_csv(Path(tmp) / X_TRAIN, index_col=0)
        y = pd.read_csv(Path(tmp) / Y_TRAIN, index_col=0)
    return x.join(y)


def time_inference(clf: TransformerTextClassifier, frame: pd.DataFrame, repeats: int) -> dict[str, float]:
    clf.predict_proba(frame.head(4))  # warm-up: session / network built, first kernels run
    single = []
    for i in range(repeats):
        row = frame.iloc[[i % len(frame)]]
        t0 = time.perf_counter()
        clf.predict_proba(row)
        single.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    clf.predict_proba(frame)
    batch_s = time.perf_counter() - t0
    return {
        "single_median_ms": round(statistics.median(single) * 1000, 3),
        "single_p95_ms": round(float(np.percentile(single, 95)) * 1000, 3),
        "batch_rows": len(frame),
        "batch_rows_per_second": round(len(frame) / batch_s, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--n-per-class", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=100)
    ap.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"])
    ap.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp16", "no"])
    ap.add_argument("--require-device", default=None, help="fail unless training ran on this device type")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "deep_speed.json")
    args = ap.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    recipe = yaml.safe_load(RECIPE.read_text())["text"]["transformer"]
    recipe.update(epochs=args.epochs, patience=args.epochs, device=args.device, precision=args.precision)
    params = TransformerParams.model_validate(recipe)
    frame = sample_frame(args.n_per_class)
    val = frame.groupby(LABEL, group_keys=False).sample(frac=0.1, random_state=0)
    train = frame.drop(val.index)
    clf = TransformerTextClassifier(params, random_state=42)
    t0 = time.perf_counter()
    clf.fit(train, train[LABEL].to_numpy(), val=(val, val[LABEL].to_numpy()))
    fit_seconds = time.perf_counter() - t0
    if args.require_device and not clf.device_.startswith(args.require_device):
        sys.exit(f"training ran on {clf.device_}, not {args.require_device}")
    import torch

    gpu: dict[str, object] = {}
    if clf.device_.startswith("cuda"):
        gpu = {
            "name": torch.cuda.get_device_name(0),
            "max_memory_allocated_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
        }
    inference = {}
    for runtime in ("torch", "onnx"):
        clf.runtime = runtime
        inference[runtime] = time_inference(clf, pd.concat([val] * 5), args.repeats)
    result = {
        "command": "python benchmarks/deep_speed.py " + " ".join(sys.argv[1:]),
        "recipe": str(RECIPE.relative_to(HERE.parent)),
        "train_rows": len(train),
        "val_rows": len(val),
        "epochs": len(clf.history_),
        "device": clf.device_,
        "precision": clf.precision_,
        "train_samples_per_second": round(
            statistics.mean(h["train_samples_per_second"] for h in clf.history_), 1
        ),
        "fit_seconds_with_validation_and_onnx_export": round(fit_seconds, 1),
        "val_weighted_f1_last_epoch": clf.history_[-1]["val_weighted_f1"],
        "inference_on": "cpu" if not clf.device_.startswith("cuda") else f"{clf.device_} (torch), cpu (onnx)",
        "inference": inference,
        "gpu": gpu,
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
