"""Which cross-validated metric should pick the text model: weighted F1 or log-loss?

    python benchmarks/selection_rules.py                               # head499 (11 splits), en17k 1k and 3k
    python benchmarks/selection_rules.py --datasets en17k --sizes 3000 --seeds 0

Per dataset, folder size and seed, with the split of `learning_curve.py` (classes with fewer than 5
rows left out, a seeded stratified 80/20 split, the 80% part subsampled to the folder size):
  * the folder is cut like the pipeline cuts it: 10% gold aside, then a train part of 7/9 of the
    rest, on which the text model runs its candidate selection (one fit, every candidate's
    out-of-fold probabilities);
  * every candidate is then fitted on train + val + test (the rows the registered model learns
    from) and scored on the held-out 20%, so each rule's choice has a test score;
  * the baseline (TF-IDF word 1-2 + char_wb 2-5 + LinearSVC(C=0.5)) learns from the whole folder.
Rules: `weighted_f1` (the default: best mean F1, simplest within the margin), `log_loss` (lowest mean
log-loss), `f1_then_log_loss` (F1, where candidates within one standard error of the paired per-fold
differences from the best count as tied and the lowest log-loss among them wins).
Writes benchmarks/results/selection_rules.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning_curve import RESULTS, baseline_f1, load

from rakuten_mlops.config import TextParams, get_settings
from rakuten_mlops.features.sentences import SentenceCache
from rakuten_mlops.models.text import TextClassifier

RULES = ("weighted_f1", "log_loss", "f1_then_log_loss")


def project_parts(
    x: pd.DataFrame, y: pd.Series, seed: int
) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]:
    """(train part, its labels, rows the registered model learns from, their labels)."""
    enough = y.map(y.value_counts()) >= 10  # a class too small for a gold share stays in training
    x_rest, _, y_rest, _ = train_test_split(
        x[enough], y[enough], test_size=0.1, stratify=y[enough], random_state=seed
    )
    x_rest, y_rest = pd.concat([x_rest, x[~enough]]), pd.concat([y_rest, y[~enough]])
    x_train, _, y_train, _ = train_test_split(x_rest, y_rest, test_size=2 / 9, random_state=seed)
    return x_train, y_train, x_rest, y_rest


def choose(candidates: dict[str, dict[str, Any]], rule: str, margin: float) -> str:
    f1 = {n: float(np.mean(c["folds"])) for n, c in candidates.items()}
    loss = {n: float(np.mean(c["folds_log_loss"])) for n, c in candidates.items()}
    if rule == "weighted_f1":
        return next(n for n in candidates if f1[n] >= max(f1.values()) - margin)
    if rule == "log_loss":
        return next(n for n in candidates if loss[n] <= min(loss.values()) + margin)
    best = max(f1, key=f1.__getitem__)

    def tied(name: str) -> bool:
        d = np.array(candidates[best]["folds"]) - np.array(candidates[name]["folds"])
        return bool(d.mean() <= d.std(ddof=1) / np.sqrt(len(d)))

    return min((n for n in candidates if tied(n)), key=loss.__getitem__)


def one_run(
    x: pd.DataFrame, y: pd.Series, size: int, seed: int, cache: SentenceCache
) -> dict[str, Any] | None:
    if size and size < len(x):
        x, _, y, _ = train_test_split(x, y, train_size=size, stratify=y, random_state=seed)
        keep = y.map(y.value_counts()) >= 5
        x, y = x[keep], y[keep]
    x_folder, x_test, y_folder, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed)
    x_train, y_train, x_learn, y_learn = project_parts(x_folder, y_folder, seed)
    if y_train.value_counts().min() < 2:
        return None  # a class with one training row: the pipeline refuses it too
    params = TextParams()
    selector = TextClassifier(params, random_state=42)
    selector.sentence_cache = cache
    selector.fit(x_train, y_train.to_numpy())
    candidates = selector.selection_["candidates"]
    test = {}
    for name in candidates:
        model = TextClassifier(params.model_copy(update={"model": name}), random_state=42)
        model.sentence_cache = cache
        model.fit(x_learn, y_learn.to_numpy())
        test[name] = round(float(f1_score(y_test, model.predict(x_test), average="weighted")), 4)
    chosen = {rule: choose(candidates, rule, params.selection_margin) for rule in RULES}
    return {
        "seed": seed,
        "folder_rows": len(x_folder),
        "baseline_f1": round(baseline_f1(x_folder, y_folder, x_test, y_test), 4),
        "test_f1": test,
        "chosen": chosen,
        "cv": {
            n: {"weighted_f1": c["cv_weighted_f1"], "log_loss": c["cv_log_loss"]}
            for n, c in candidates.items()
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["head499", "en17k"], choices=["head499", "en17k"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[1000, 3000], help="en17k folder sizes")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--head499-seeds", nargs="+", type=int, default=list(range(12)))
    ap.add_argument("--out", type=Path, default=RESULTS / "selection_rules.json")
    args = ap.parse_args()
    cache = SentenceCache(get_settings().home / "cache" / "sentences" / "use-multilingual-v3")
    runs, summary = [], []
    for name in args.datasets:
        x, y = load(name)
        plan = (
            [(0, s) for s in args.head499_seeds]
            if name == "head499"
            else [(n, s) for n in args.sizes for s in args.seeds]
        )
        for size in dict.fromkeys(n for n, _ in plan):
            done = [r for r in (one_run(x, y, n, s, cache) for n, s in plan if n == size) if r is not None]
            for r in done:
                r["dataset"] = name
                print(json.dumps({k: r[k] for k in ("dataset", "folder_rows", "seed", "chosen")}), flush=True)
            runs += done
            row: dict[str, Any] = {
                "dataset": name,
                "folder_rows": done[0]["folder_rows"],
                "splits": len(done),
            }
            for rule in RULES:
                diffs = [r["test_f1"][r["chosen"][rule]] - r["baseline_f1"] for r in done]
                row[rule] = {
                    "vs_baseline_mean": round(float(np.mean(diffs)), 4),
                    "wins": sum(d >= 0 for d in diffs),
                }
            summary.append(row)
            print(json.dumps(row), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "command": "python benchmarks/" + Path(__file__).name + " " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "summary": summary,
        "runs": runs,
    }, indent=1) + "\n")  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
