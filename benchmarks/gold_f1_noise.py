"""Run-to-run noise of the gold weighted F1, to size the promotion gate's `min_gain`.

Usage: ``python benchmarks/gold_f1_noise.py DATA_DIR [--seeds 1 2] [--fraction 0.9] [--params params.yaml]``

One ingest + split (the gold rows stay fixed), then the model trained once per seed on a
seeded `--fraction` of the train split: two exchangeable retrains whose true difference is
zero, as two retrains on slightly different pools are. (With the whole train split, two seeds
give the same model: training is deterministic.) Prints each run's gold weighted F1, their
difference, the 95 % bootstrap interval of one model's gold F1 and the paired bootstrap
interval of the difference (the interval the promotion decision states).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from rakuten_mlops.config import Settings, load_params
from rakuten_mlops.data.schema import LABEL
from rakuten_mlops.lifecycle.promotion import bootstrap_gain_interval
from rakuten_mlops.pipelines.evaluate import score_parts
from rakuten_mlops.pipelines.ingest import ingest, load_splits, split
from rakuten_mlops.pipelines.layout import WorkDir
from rakuten_mlops.pipelines.train import embed, model_path, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--seeds", type=int, nargs=2, default=[1, 2])
    parser.add_argument("--fraction", type=float, default=0.9, help="of the train split each run uses")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = load_params(args.params)
    with tempfile.TemporaryDirectory() as tmp:
        base = WorkDir(Path(tmp) / "seed-base")
        ingest(args.data_dir, base)
        split(base, params)
        embed(base, Settings(), params)  # nothing to embed without images
        gold = load_splits(base)["gold"]
        preds, f1s = [], []
        for seed in args.seeds:
            work = WorkDir(Path(tmp) / f"seed-{seed}")
            shutil.copytree(base.root, work.root)
            rows = pd.read_parquet(work.split_path("train"))
            rows.sample(frac=args.fraction, random_state=seed).to_parquet(work.split_path("train"))
            train(work, params.model_copy(update={"seed": seed}))
            model = joblib.load(model_path(work))
            metrics, pred = score_parts(model, gold, None)
            preds.append(pred["system"])
            f1s.append(metrics["system"]["weighted_f1"])
        y, labels = gold[LABEL].to_numpy(), model.classes_
        single = bootstrap_gain_interval(y, preds[0], None, labels, seed=params.seed)
        paired = bootstrap_gain_interval(y, preds[1], preds[0], labels, seed=params.seed)
        same = bootstrap_gain_interval(y, preds[0], preds[0], labels, seed=params.seed)
    print(
        json.dumps(
            {
                "data_dir": str(args.data_dir),
                "gold_rows": len(y),
                "seeds": args.seeds,
                "fraction": args.fraction,
                "gold_weighted_f1": [round(f, 4) for f in f1s],
                "difference": round(f1s[1] - f1s[0], 4),
                "predictions_differ": int(np.sum(preds[0] != preds[1])),
                "single_model_interval": single,
                "paired_difference_interval": paired,
                "identical_models_interval": same,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
