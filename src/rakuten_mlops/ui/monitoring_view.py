"""What the Monitoring page shows, read from ``<home>/monitoring`` and the prediction log (no Streamlit here).

The files are those `rakuten_mlops.pipelines.monitoring` writes: one folder per drift report
(``drift/<time>-<label>/summary.json`` + ``report.html``), ``live/latest.json``,
``decisions/decisions.jsonl`` and ``retrains.jsonl``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.metrics import f1_score

from rakuten_mlops.config import Settings
from rakuten_mlops.infra import read_json_or_none, read_jsonl
from rakuten_mlops.pipelines.monitoring_store import MonitoringDir


def monitoring_dir(settings: Settings) -> MonitoringDir:
    return MonitoringDir.of_home(settings.home)


def drift_reports(settings: Settings) -> list[dict[str, Any]]:
    """Every drift report's summary, newest first, with `folder` (its directory) added."""
    root = monitoring_dir(settings).drift
    if not root.is_dir():
        return []
    out = []
    for folder in sorted((p for p in root.iterdir() if p.is_dir()), reverse=True):
        try:
            summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue  # a report being written, or a foreign folder
        out.append({**summary, "folder": str(folder)})
    return out


def report_html_path(report: dict[str, Any]) -> Path | None:
    path = Path(report["folder"]) / "report.html"
    return path if path.is_file() else None


def drift_columns(summary: dict[str, Any]) -> pd.DataFrame:
    """One row per monitored column: its test, score, threshold and whether it drifted."""
    rows = [
        {
            "column": column,
            "description": info.get("description", ""),
            "test": info.get("test"),
            "score": info.get("score"),
            "threshold": info.get("threshold"),
            "drifted": bool(info.get("drifted")),
        }
        for column, info in summary.get("columns", {}).items()
    ]
    return pd.DataFrame(rows, columns=["column", "description", "test", "score", "threshold", "drifted"])


def drift_history(reports: list[dict[str, Any]]) -> pd.DataFrame:
    """Drift share of each report over time (oldest first)."""
    rows = [
        {
            "time": pd.Timestamp(r["created_at"]),
            "drift_share": float(r.get("drift_share", 0.0)),
            "drifted": ", ".join(r.get("drifted_columns", [])),
            "current": (r.get("current") or {}).get("label", ""),
        }
        for r in reports
        if r.get("created_at")
    ]
    return pd.DataFrame(rows, columns=["time", "drift_share", "drifted", "current"]).sort_values("time")


def live_latest(settings: Settings) -> dict[str, Any] | None:
    return read_json_or_none(monitoring_dir(settings).latest_live)  # type: ignore[no-any-return]


def decisions(settings: Settings, limit: int = 20) -> list[dict[str, Any]]:
    """The most recent retrain decisions, newest first."""
    return list(reversed(read_jsonl(monitoring_dir(settings).decisions_log)))[:limit]


def retrains(settings: Settings, limit: int = 20) -> list[dict[str, Any]]:
    """The most recent retrain runs (CLI and stream DAG: one record format), newest first.

    Stream-DAG retrains recorded before the DAG wrote ``retrains.jsonl`` too are read from
    their decision's `retrained` entry.
    """
    mon = monitoring_dir(settings)
    runs = read_jsonl(mon.retrains_log)
    logged = {r.get("airflow_run_id") for r in runs if r.get("airflow_run_id")}
    for decision in read_jsonl(mon.decisions_log):
        old = decision.get("retrained")
        if old and decision.get("airflow_run_id") not in logged:
            runs.append(
                {
                    "kind": "retrain",
                    "finished_at": decision.get("recorded_at"),
                    "source": "airflow",
                    "airflow_run_id": decision.get("airflow_run_id"),
                    "data_hash": (decision.get("data") or {}).get("data_hash"),
                    "champion_before": decision.get("champion_version"),
                    **old,
                }
            )
    runs.sort(key=lambda r: str(r.get("finished_at") or ""))
    return list(reversed(runs))[:limit]


def bucket_frequency(times: pd.Series) -> str:
    """Hourly buckets over up to two days of data, daily beyond."""
    if times.empty:
        return "D"
    span = times.max() - times.min()
    return "h" if span <= pd.Timedelta(days=2) else "D"


def live_f1_over_time(feedback: pd.DataFrame) -> pd.DataFrame:
    """Weighted F1 of each time bucket's feedback, per model version (time, model_version, weighted_f1, n)."""
    columns = ["time", "model_version", "weighted_f1", "n"]
    if feedback.empty:
        return pd.DataFrame(columns=columns)
    df = feedback.copy()
    df["time"] = pd.to_datetime(df["time"], utc=True)
    df = df.sort_values("time", kind="stable").drop_duplicates("prediction_id", keep="last")
    df["bucket"] = df["time"].dt.floor(bucket_frequency(df["time"]))
    rows = []
    for (bucket, version), part in df.groupby(["bucket", df["model_version"].astype(str)], sort=True):
        y_true = part["true_code"].astype(int)
        y_pred = part["predicted_code"].astype(int)
        f1 = float(f1_score(y_true, y_pred, average="weighted", zero_division=0))
        rows.append({"time": bucket, "model_version": version, "weighted_f1": f1, "n": len(part)})
    return pd.DataFrame(rows, columns=columns)


def class_share_over_time(predictions: pd.DataFrame) -> pd.DataFrame:
    """Share of each predicted code per time bucket (columns: time, code, rows, share)."""
    columns = ["time", "code", "rows", "share"]
    if predictions.empty:
        return pd.DataFrame(columns=columns)
    df = predictions.copy()
    df["time"] = pd.to_datetime(df["time"], utc=True)
    df["bucket"] = df["time"].dt.floor(bucket_frequency(df["time"]))
    counts = df.groupby(["bucket", df["predicted_code"].astype(int)]).size().rename("rows").reset_index()
    counts.columns = ["time", "code", "rows"]
    counts["share"] = counts["rows"] / counts.groupby("time")["rows"].transform("sum")
    return counts[columns]


def _no_database_yet(url: str) -> bool:
    """A default SQLite app database that does not exist yet (reading must not create it)."""
    return url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file()


def read_feedback(settings: Settings, days: float = 30.0, limit: int = 20_000) -> pd.DataFrame:
    """Feedback joined with its prediction from the app database (raises ConnectionError when down)."""
    from rakuten_mlops.monitoring.live import FEEDBACK_COLUMNS
    from rakuten_mlops.pipelines.monitoring_live import read_feedback as read

    if _no_database_yet(settings.app_database_url):
        return pd.DataFrame(columns=list(FEEDBACK_COLUMNS))
    return read(settings.app_database_url, dt.datetime.now(dt.UTC) - dt.timedelta(days=days), limit)


def read_predictions(settings: Settings, limit: int = 5_000) -> pd.DataFrame:
    """The last logged predictions (raises ConnectionError when the app database is down)."""
    from rakuten_mlops.pipelines.monitoring_live import read_recent_predictions

    if _no_database_yet(settings.app_database_url):
        return pd.DataFrame(columns=["designation", "description", "predicted_code", "model_version", "time"])
    return read_recent_predictions(settings.app_database_url, limit)
