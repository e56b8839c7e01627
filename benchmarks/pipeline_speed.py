"""Speed of each pipeline stage on a generated dataset of the challenge's size (text only),
and the image embedding rate per image.

    python benchmarks/pipeline_speed.py                       # 85k rows, the real size
    python benchmarks/pipeline_speed.py --n-per-class 800     # smaller, to see the scaling

Writes benchmarks/results/pipeline_speed.json (or --out). Registration uses a throw-away
MLflow home under a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rakuten_mlops.config import Params, Settings
from rakuten_mlops.pipelines.layout import WorkDir
from rakuten_mlops.pipelines.runner import STEPS, run_step
from rakuten_mlops.simulation.core.sample import generate_sample, render_image

HERE = Path(__file__).resolve().parent


def stage_times(n_per_class: int, tmp: Path, work_name: str = "work") -> dict[str, object]:
    """Every stage on one generated data set; a second call on the same `tmp` finds the sentence
    embeddings cached (the home is kept), which is what a rerun on the same texts costs."""
    t0 = time.perf_counter()
    warm = (tmp / "data").is_dir()
    # Every generated row labelled (no X_test part): 3145 per class = the real 84,916 training rows.
    if not warm:
        generate_sample(tmp / "data", n_per_class=n_per_class, seed=1, with_images=False, test_fraction=0.0)
    gen = time.perf_counter() - t0
    settings = Settings(home=tmp / "home", _env_file=None)  # type: ignore[call-arg]
    params = Params.model_validate({"promotion": {"min_f1": 0.0}})
    work = WorkDir(tmp / work_name)
    seconds: dict[str, float] = {"generate": round(gen, 2)}
    results: dict[str, object] = {}
    for step in STEPS:
        t0 = time.perf_counter()
        results[step] = run_step(step, work, settings, params, tmp / "data")
        seconds[step] = round(time.perf_counter() - t0, 2)
        print(f"  {step:9s} {seconds[step]:8.1f} s", flush=True)
    scores = results["evaluate"]["scores"]  # type: ignore[index]
    return {
        "rows": sum(results["split"]["sizes"].values()),  # type: ignore[index]
        "sentence_cache": "warm" if warm else "cold",
        "text_model": results["train"]["text_model"]["chosen"],  # type: ignore[index]
        "seconds": seconds,
        "train_seconds_text": results["train"]["text_seconds"],  # type: ignore[index]
        "pipeline_seconds": round(sum(v for k, v in seconds.items() if k != "generate"), 2),
        "test_weighted_f1": scores["test_weighted_f1"],
    }


def embedding_rate(n_images: int) -> dict[str, object]:
    from rakuten_mlops.features.images import ImageEmbedder

    rng = np.random.default_rng(0)
    import io

    data = []
    for i in range(n_images):
        buf = io.BytesIO()
        render_image(int([10, 2583, 1560][i % 3]), rng, 500).save(buf, "JPEG", quality=85)
        data.append(buf.getvalue())
    embedder = ImageEmbedder()
    embedder.embed_bytes(data[:8])  # load weights outside the timing
    t0 = time.perf_counter()
    _, ok = embedder.embed_bytes(data)
    dt = time.perf_counter() - t0
    return {
        "images": n_images,
        "image_size_px": 500,
        "seconds": round(dt, 2),
        "ms_per_image": round(1000 * dt / n_images, 1),
        "images_per_second": round(n_images / dt, 1),
        "hours_for_84916_images": round(84916 * dt / n_images / 3600, 2),
        "all_decoded": bool(ok.all()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-per-class", type=int, default=3145, help="3145 gives 84,916 rows in total")
    ap.add_argument(
        "--scaling", type=int, nargs="*", default=[800, 1600], help="smaller sizes for the cost curve"
    )
    ap.add_argument("--images", type=int, default=256, help="images for the embedding rate (0 to skip)")
    ap.add_argument("--warm", action="store_true", help="run the largest size again with its cache warm")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "pipeline_speed.json")
    args = ap.parse_args()
    report: dict[str, object] = {
        "command": " ".join(["python benchmarks/pipeline_speed.py", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "runs": [],
    }
    for n in [*args.scaling, args.n_per_class]:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"n_per_class={n}", flush=True)
            report["runs"].append(stage_times(n, Path(tmp)))  # type: ignore[union-attr]
            if args.warm and n == args.n_per_class:
                print("again, sentence embeddings cached", flush=True)
                report["runs"].append(stage_times(n, Path(tmp), "work2"))  # type: ignore[union-attr]
    if args.images:
        report["embedding"] = embedding_rate(args.images)
        print(f"embedding: {report['embedding']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
