"""MLflow runs of monitoring: one run per drift report and per retrain decision.

They go to the experiment ``<experiment_name>-monitoring``, apart from the training runs:
a drift run holds the drift share, a flag and a score per column and the report files;
a decision run holds the decision, its reasons and the full record as ``decision.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rakuten_mlops.config import Settings

MONITORING_EXPERIMENT_SUFFIX = "-monitoring"


def _monitoring_run(settings: Settings, run_name: str, tags: dict[str, str]) -> tuple[Any, str]:
    from rakuten_mlops.lifecycle.registry import client

    c = client(settings)
    name = settings.experiment_name + MONITORING_EXPERIMENT_SUFFIX
    exp = c.get_experiment_by_name(name)
    exp_id = (
        exp.experiment_id
        if exp is not None
        else c.create_experiment(name, artifact_location=settings.artifact_location)
    )
    run = c.create_run(exp_id, run_name=run_name, tags=tags)
    return c, run.info.run_id


def log_drift(summary: dict[str, Any], out: Path, settings: Settings) -> str:
    """Log a drift summary and its report files (written in `out`) as a run; returns the run id."""
    settings.home.mkdir(parents=True, exist_ok=True)
    label = summary.get("current", {}).get("label", "current")
    c, run_id = _monitoring_run(settings, f"drift-{label}", {"kind": "drift", "current": str(label)})
    c.log_metric(run_id, "drift_share", float(summary["drift_share"]))
    c.log_metric(run_id, "drifted_columns", float(summary["n_drifted"]))
    for col, info in summary["columns"].items():
        c.log_metric(run_id, f"drifted.{col}", 1.0 if info["drifted"] else 0.0)
        if info.get("score") is not None:
            c.log_metric(run_id, f"score.{col}", float(info["score"]))
    c.log_artifact(run_id, str(out / "report.html"), artifact_path="drift")
    c.log_artifact(run_id, str(out / "summary.json"), artifact_path="drift")
    c.set_terminated(run_id)
    return run_id


def log_decision(record: dict[str, Any], settings: Settings) -> str:
    """Log a recorded retrain decision as a run; returns the run id."""
    batch = (record.get("data") or {}).get("current_batch") or "none"
    c, run_id = _monitoring_run(
        settings, f"decision-{batch}", {"kind": "retrain-decision", "decision": record["decision"]}
    )
    c.set_tag(run_id, "reasons", "; ".join(record["reasons"])[:5000])
    c.log_metric(run_id, "retrain", 1.0 if record["retrain"] else 0.0)
    c.log_metric(run_id, "new_labelled_rows", float(record["new_labelled_rows"]))
    c.log_dict(run_id, record, "decision.json")
    c.set_terminated(run_id)
    return run_id
