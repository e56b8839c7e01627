"""The training pipeline: ingest → split → embed → train → evaluate → refit → register → promote."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rakuten_mlops.config import Params, Settings
from rakuten_mlops.errors import InvalidInputError
from rakuten_mlops.pipelines.evaluate import evaluate
from rakuten_mlops.pipelines.ingest import ingest, split
from rakuten_mlops.pipelines.layout import WorkDir, write_json
from rakuten_mlops.pipelines.progress import NullProgress, Progress
from rakuten_mlops.pipelines.refit import refit
from rakuten_mlops.pipelines.register import promote, register
from rakuten_mlops.pipelines.train import embed, fuse, train, train_image, train_text

STEPS = ("ingest", "split", "embed", "train", "evaluate", "refit", "register", "promote")
# `train` is these three in one go; Airflow runs them as separate tasks (text beside embed).
TRAIN_PARTS = ("train_text", "train_image", "fuse")


def default_work_dir(settings: Settings) -> WorkDir:
    return WorkDir(settings.home / "pipeline")


def run_step(
    step: str,
    work: WorkDir,
    settings: Settings,
    params: Params,
    data_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run one named step; `data_dir` is needed by `ingest` only."""
    if step == "ingest":
        if data_dir is None:
            raise InvalidInputError("the ingest step needs a data folder")
        return ingest(data_dir, work, progress)
    if step == "split":
        return split(work, params)
    if step == "embed":
        return embed(work, settings, params, progress)
    if step == "train":
        return train(work, params, progress, settings)
    if step == "train_text":
        return train_text(work, params, progress, settings)
    if step == "train_image":
        return train_image(work, params, progress)
    if step == "fuse":
        return fuse(work, params)
    if step == "evaluate":
        return evaluate(work, settings)
    if step == "refit":
        return refit(work, params, progress, settings)
    if step == "register":
        return register(work, settings, params)
    if step == "promote":
        return promote(work, settings, params, progress)
    raise InvalidInputError(f"unknown step {step!r}; steps: {', '.join(STEPS + TRAIN_PARTS)}")


def run_pipeline(
    data_dir: str | Path,
    settings: Settings,
    params: Params,
    work: WorkDir | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run every step in order; returns each step's summary and the total time."""
    progress = progress or NullProgress()
    work = work or default_work_dir(settings)
    started = time.perf_counter()
    summary: dict[str, Any] = {"work_dir": str(work.root)}
    for step in STEPS:
        t0 = time.perf_counter()
        progress.log(f"[{step}]")
        summary[step] = run_step(step, work, settings, params, data_dir, progress)
        summary.setdefault("seconds", {})[step] = round(time.perf_counter() - t0, 2)
        # Written as it grows: the register step's model card reads the seconds of the steps so far.
        write_json(work.root / "run_summary.json", {**summary, "complete": False})
    summary["total_seconds"] = round(time.perf_counter() - started, 2)
    write_json(work.root / "run_summary.json", summary)
    return summary
