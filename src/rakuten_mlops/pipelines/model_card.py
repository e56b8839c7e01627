"""Step part: build a registered version's model card from the run's files and log it to MLflow.

The register step logs the card (gate: not decided yet) with the version's run; the promote step
logs it again with the gate's decision, its reasons and interval. Files: ``model_card/model_card.md``,
``.html`` and ``.json`` (the data the two are rendered from) in the run's artefacts.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from rakuten_mlops.config import Settings
from rakuten_mlops.data.schema import LABEL
from rakuten_mlops.infra import write_json_atomic
from rakuten_mlops.lifecycle.model_card import (
    CARD_DIR,
    CARD_FILES,
    class_label,
    confused_pairs,
    render_html,
    render_markdown,
    weakest_classes,
)
from rakuten_mlops.lifecycle.registry import client
from rakuten_mlops.pipelines.ingest import load_splits
from rakuten_mlops.pipelines.layout import WorkDir, read_json
from rakuten_mlops.pipelines.refit import GOLD_PREDICTIONS_FILE, gate_report

PART_LABELS = {"val": "validation", "test": "test", "gold": "gold", "gold_pre_refit": "gold"}


def _class_rows(splits: dict[str, pd.DataFrame]) -> list[dict[str, Any]]:
    counts = {p: df[LABEL].value_counts() for p, df in splits.items()}
    total = sum(len(df) for df in splits.values())
    codes = sorted({int(c) for s in counts.values() for c in s.index})
    return [
        {
            "code": c,
            "name": class_label(c),
            "rows": {p: int(s.get(c, 0)) for p, s in counts.items()},
            "share": sum(int(s.get(c, 0)) for s in counts.values()) / max(total, 1),
        }
        for c in codes
    ]


def _metrics(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Overall scores: each evaluated set and model part (gold: the registered model)."""
    out = []
    for part in ("gold", "gold_pre_refit", "test", "val"):
        for model_name, m in report.get(part, {}).items():
            which = "registered model" if part == "gold" else "train-split model"
            out.append(
                {
                    "set": f"{PART_LABELS[part]} ({which})", "model": model_name,
                    "weighted_f1": m["weighted_f1"], "macro_f1": m["macro_f1"], "accuracy": m["accuracy"],
                    "n": m["n"],
                }
            )  # fmt: skip
    return out


def _cost(work: WorkDir) -> dict[str, Any]:
    """Seconds per step: the run summary when it is this run's, else what each step recorded itself."""
    path = work.root / "run_summary.json"
    refit = read_json(work.refit_dir / "summary.json", "refit")
    if path.is_file():
        summary = read_json(path, "pipeline run")
        if summary.get("refit") == refit and summary.get("seconds"):
            out: dict[str, Any] = {"source": "run summary", "seconds": dict(summary["seconds"])}
            if "total_seconds" in summary:
                out["total"] = summary["total_seconds"]
            return out
    seconds: dict[str, float] = {}
    for step, file in (("embed", "features/summary.json"), ("train_text", "model_parts/text.json")):
        if (work.root / file).is_file():
            value = read_json(work.root / file, step).get("seconds")
            if isinstance(value, int | float):
                seconds[step] = value
    seconds["refit"] = refit["seconds"]
    return {"source": "the steps' own summaries (steps run one by one)", "seconds": seconds}


def build_card(
    work: WorkDir,
    settings: Settings,
    version: str,
    tags: dict[str, str],
    registered_at: str,
    gate: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The card of `version` from this run's files (`tags`: what register set on the version)."""
    report = gate_report(work)
    ingest = read_json(work.ingest / "summary.json", "ingest")
    splits = load_splits(work)
    gold = report["gold"]["system"]
    answers = pd.read_parquet(work.refit_dir / GOLD_PREDICTIONS_FILE)
    titles = splits["gold"].loc[answers.index, "designation"].astype(str).tolist()
    per_class = [
        {"code": int(c), **s} for c, s in sorted(gold["per_class"].items(), key=lambda kv: int(kv[0]))
    ]
    for row in per_class:
        row["name"] = class_label(row["code"])
    return {
        "model_name": settings.model_name,
        "version": str(version),
        "registered_at": registered_at,
        "text_model": tags.get("text_model", "–"),
        "modalities": report["modalities"],
        "inputs": {k: tags.get(k, "–") for k in ("code_version", "data_hash", "params_hash")},
        "data": {
            "hash": ingest["data_hash"],
            "rows": ingest["rows"],
            "accepted": ingest["accepted"],
            "rejected": ingest["rejected"],
            "splits": {p: len(df) for p, df in splits.items()},
            "trained_on": report["refit"]["parts"],
            "train_rows": report["refit"]["rows"],
        },
        "classes": _class_rows(splits),
        "metrics": _metrics(report),
        "metrics_note": (
            "Gold: the registered model (refitted on every labelled row but gold, when refit is on). "
            "Validation and test: the model fitted on the train split, the only held-out scores it has."
        ),
        "per_class_set": f"gold set, {gold['n']} rows, registered model",
        "per_class": per_class,
        "weakest": weakest_classes(gold["per_class"]),
        "confusions": confused_pairs(answers[LABEL].to_numpy(), answers["predicted"].to_numpy(), titles),
        "gate": gate,
        "cost": _cost(work),
    }


def log_model_card(
    work: WorkDir, settings: Settings, version: str, gate: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Build `version`'s card and log it (Markdown, HTML, JSON) with the run that registered it."""
    c = client(settings)
    mv = c.get_model_version(settings.model_name, version)
    created = dt.datetime.fromtimestamp(mv.creation_timestamp / 1000, dt.UTC).isoformat(timespec="seconds")
    card = build_card(work, settings, version, dict(mv.tags or {}), created, gate)
    with tempfile.TemporaryDirectory(prefix="rakuten-card-") as tmp:
        folder = Path(tmp)
        (folder / CARD_FILES["markdown"]).write_text(render_markdown(card), encoding="utf-8")
        (folder / CARD_FILES["html"]).write_text(render_html(card), encoding="utf-8")
        write_json_atomic(folder / CARD_FILES["json"], card)
        for name in CARD_FILES.values():
            c.log_artifact(str(mv.run_id), str(folder / name), artifact_path=CARD_DIR)
    return card
