"""Learning curve on real labels: the project as a user runs it against the first script a user would try.

    python benchmarks/learning_curve.py                         # head499 + en17k at 1k/3k/6k/full, 3 seeds
    python benchmarks/learning_curve.py --sizes 1000 --seeds 0 --datasets en17k      # one point, ~1 min

Protocol, per dataset, folder size and seed (the same as ../shared/tools/real-check):
  * classes with fewer than 5 rows are left out; a seeded, stratified 80/20 split of the dataset;
  * the 80% part, subsampled (stratified, same seed) to the folder size, is the folder a user gives
    the system: `rakuten-mlops pipeline run --data-dir FOLDER` in a fresh RAKUTEN_HOME (the project
    keeps its own gold set aside, and registers a model refitted on everything else), then
    `rakuten-mlops predict` with version 1 on the held-out 20%;
  * the baseline, TF-IDF word 1-2 + char_wb 2-5 + LinearSVC(C=0.5), learns from the *whole* folder;
  * both are scored by weighted F1 on the same held-out 20% (all of it, whatever the folder size).
Also recorded per run: pipeline wall time, train and refit seconds, the chosen text model, the rows
the registered model learned from and its size. Writes JSON and a PNG plot.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline, make_union
from sklearn.svm import LinearSVC

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "rakuten"
RESULTS = ROOT / "benchmarks" / "results"
CLI = Path(sys.executable).with_name("rakuten-mlops")
MODEL_URI = "models:/rakuten-product-classifier/1"


def load(name: str) -> tuple[pd.DataFrame, pd.Series]:
    src = SHARED / name
    if not (src / "X_train_update.csv").is_file():
        sys.exit(f"learning_curve: no data set at {src} (development data next to the repository)")
    x = pd.read_csv(src / "X_train_update.csv", index_col=0, dtype={"designation": str, "description": str})
    y = pd.read_csv(src / "Y_train_CVw08PX.csv", index_col=0)["prdtypecode"]
    keep = y.map(y.value_counts()) >= 5  # a class needs rows on both sides of every split
    return x[keep], y[keep]


def baseline_text(frame: pd.DataFrame) -> pd.Series:
    t = (frame["designation"].fillna("") + " " + frame["description"].fillna("")).map(html.unescape)
    return t.map(lambda s: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", s)).strip().lower())


def baseline_f1(
    x_folder: pd.DataFrame, y_folder: pd.Series, x_test: pd.DataFrame, y_test: pd.Series
) -> float:
    model = make_pipeline(
        make_union(
            TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=2, sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True),
        ),
        LinearSVC(C=0.5),
    ).fit(baseline_text(x_folder), y_folder)
    return float(f1_score(y_test, model.predict(baseline_text(x_test)), average="weighted"))


def cli(args: list[str], home: Path) -> None:
    env = {**os.environ, "RAKUTEN_HOME": str(home)}
    env.pop("RAKUTEN_PARAMS_PATH", None)
    done = subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"`rakuten-mlops {' '.join(args)}` failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def project_run(x_folder: pd.DataFrame, y_folder: pd.Series, x_test: pd.DataFrame, y_test: pd.Series) -> dict:
    with tempfile.TemporaryDirectory(prefix="learning-curve-") as tmp:
        work = Path(tmp)
        folder, home = work / "folder", work / "home"
        folder.mkdir()
        x_folder.to_csv(folder / "X_train_update.csv")
        y_folder.to_frame("prdtypecode").to_csv(folder / "Y_train_CVw08PX.csv")
        x_test.to_csv(work / "X_test_update.csv")
        started = time.perf_counter()
        cli(["pipeline", "run", "--data-dir", str(folder)], home)
        wall = time.perf_counter() - started
        cli(["predict", "--model-uri", MODEL_URI, "--input", str(work / "X_test_update.csv"),
             "--output", str(work / "preds.csv")], home)  # fmt: skip
        preds = pd.read_csv(work / "preds.csv", index_col=0)["prdtypecode"].reindex(y_test.index)
        summary = json.loads((home / "pipeline" / "run_summary.json").read_text())
        model_file = Path(summary["refit"]["model_path"])
        return {
            "f1": float(f1_score(y_test, preds.fillna(-1), average="weighted")),
            "pipeline_s": round(wall, 1),
            "train_s": summary["seconds"]["train"],
            "refit_s": summary["seconds"]["refit"],
            "text_model": summary["train"]["text_model"]["chosen"],
            "cv": {n: c["cv_weighted_f1"] for n, c in summary["train"]["text_model"]["candidates"].items()},
            "rows_learned": summary["refit"]["rows"],
            "model_mb": round(model_file.stat().st_size / 2**20, 2),
        }


def point(name: str, size: int | None, seed: int) -> dict[str, Any]:
    x, y = load(name)
    x_folder, x_test, y_folder, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed)
    if size and size < len(x_folder):
        x_folder, _, y_folder, _ = train_test_split(
            x_folder, y_folder, train_size=size, stratify=y_folder, random_state=seed
        )
    ours = project_run(x_folder, y_folder, x_test, y_test)
    base = baseline_f1(x_folder, y_folder, x_test, y_test)
    row = {"dataset": name, "folder_rows": len(x_folder), "test_rows": len(x_test), "seed": seed,
           "baseline_f1": round(base, 4), **ours, "f1": round(ours["f1"], 4),
           "diff": round(ours["f1"] - base, 4)}  # fmt: skip
    print(
        f"{name:8s} {len(x_folder):6d} rows seed {seed}: project {row['f1']:.4f} vs baseline {base:.4f} "
        f"({row['diff']:+.4f}), {ours['text_model']}, pipeline {ours['pipeline_s']:.0f} s",
        flush=True,
    )
    return row


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    frame = pd.DataFrame(rows)
    out = []
    for (name, size), g in frame.groupby(["dataset", "folder_rows"], sort=False):
        diff = g["diff"].to_numpy()

        def mean(col: str, digits: int, g: pd.DataFrame = g) -> float:
            return round(float(g[col].mean()), digits)

        out.append({
            "dataset": name, "folder_rows": int(size), "seeds": len(g),
            "project_f1": mean("f1", 4), "baseline_f1": mean("baseline_f1", 4),
            "diff_mean": round(float(diff.mean()), 4),
            "diff_sem": round(float(diff.std(ddof=1) / np.sqrt(len(diff))), 4) if len(diff) > 1 else None,
            "project_wins": int((diff >= 0).sum()),
            "pipeline_s": mean("pipeline_s", 1), "train_s": mean("train_s", 1), "refit_s": mean("refit_s", 1),
            "model_mb": mean("model_mb", 2), "text_models": g["text_model"].value_counts().to_dict(),
        })  # fmt: skip
    return out


def plot(summary: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 1]})
    for ax, name in zip(axes, ("en17k", "head499"), strict=True):
        rows = [r for r in summary if r["dataset"] == name]
        if not rows:
            ax.set_visible(False)
            continue
        n = [r["folder_rows"] for r in rows]
        ax.plot(n, [r["project_f1"] for r in rows], "o-", label="rakuten-mlops (pipeline run + predict)")
        ax.plot(n, [r["baseline_f1"] for r in rows], "s--", label="TF-IDF + LinearSVC on the whole folder")
        for r in rows:
            ax.annotate(f"{r['diff_mean']:+.3f}", (r["folder_rows"], r["project_f1"]),
                        textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8)  # fmt: skip
        ax.set_xscale("log") if len(rows) > 1 else None
        ax.set_xlabel("rows in the folder given to the system")
        ax.set_ylabel("weighted F1 on the held-out 20%")
        ax.set_title(f"{name} (mean of {rows[0]['seeds']} seeds)")
        ax.grid(alpha=0.3)
    next(ax for ax in axes if ax.lines).legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["head499", "en17k"], choices=["head499", "en17k"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[1000, 3000, 6000, 0],
                    help="en17k folder sizes; 0 = the whole 80%% (13,587 rows)")  # fmt: skip
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--head499-seeds", nargs="+", type=int, default=list(range(8)),
                    help="head499 tests on ~98 rows: more seeds to see through the noise")  # fmt: skip
    ap.add_argument("--out", type=Path, default=RESULTS / "learning_curve.json")
    args = ap.parse_args(argv)
    rows = []
    for name in args.datasets:
        sizes = [0] if name == "head499" else args.sizes
        seeds = args.head499_seeds if name == "head499" else args.seeds
        for size in sizes:
            rows += [point(name, size, seed) for seed in seeds]
    summary = aggregate(rows)
    result = {
        "command": " ".join(
            ["python benchmarks/learning_curve.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "summary": summary,
        "runs": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    plot(summary, args.out.with_suffix(".png"))
    for r in summary:
        print(f"{r['dataset']:8s} {r['folder_rows']:6d}: project {r['project_f1']:.4f} baseline "
              f"{r['baseline_f1']:.4f} diff {r['diff_mean']:+.4f} (wins {r['project_wins']}/{r['seeds']}) "
              f"{r['text_models']}")  # fmt: skip
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
