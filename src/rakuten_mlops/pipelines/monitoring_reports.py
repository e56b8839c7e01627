"""Readers of what monitoring wrote under ``<home>/monitoring`` (drift reports, live scores, decisions).

The files are those `rakuten_mlops.pipelines.monitoring` writes: one folder per drift report
(``drift/<time>-<label>/summary.json`` + ``report.html``), ``live/latest.json``,
``decisions/decisions.jsonl`` and ``retrains.jsonl``. The API's monitoring routes serve them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from rakuten_mlops.infra import read_jsonl
from rakuten_mlops.pipelines.monitoring_store import MonitoringDir


def _load(text: str) -> Any:
    """JSON with NaN and infinities read as None (a test with no score writes NaN; JSON has none)."""
    return json.loads(text, parse_constant=lambda _: None)


REPORT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")


def _report_folders(mon: MonitoringDir) -> list[Path]:
    root = mon.drift
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir()), reverse=True)


def drift_reports(home: Path, limit: int = 50, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """(number of report folders, the summaries of `limit` of them from `offset`), newest first.

    Each summary gets `id` (its folder name, for `report_html`) and `has_html`. A folder whose
    summary cannot be read (a report being written, a foreign folder) is skipped.
    """
    folders = _report_folders(MonitoringDir.of_home(home))
    out: list[dict[str, Any]] = []
    for folder in folders[offset:]:
        if len(out) >= limit:
            break
        try:
            summary = _load((folder / "summary.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(summary, dict):
            out.append({**summary, "id": folder.name, "has_html": (folder / "report.html").is_file()})
    return len(folders), out


def report_html(home: Path, report_id: str) -> Path | None:
    """The Evidently HTML of report `report_id` (a folder name under drift/), None when absent."""
    if not REPORT_ID.match(report_id) or ".." in report_id:
        return None
    path = MonitoringDir.of_home(home).drift / report_id / "report.html"
    return path if path.is_file() else None


def live_latest(home: Path) -> dict[str, Any] | None:
    """The last live-quality computation (``live/latest.json``), None before the first."""
    try:
        latest = _load(MonitoringDir.of_home(home).latest_live.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return latest if isinstance(latest, dict) else None


def decisions(home: Path, limit: int = 20) -> list[dict[str, Any]]:
    """The most recent retrain decisions, newest first."""
    return list(reversed(read_jsonl(MonitoringDir.of_home(home).decisions_log)))[:limit]


def retrains(home: Path, limit: int = 20) -> list[dict[str, Any]]:
    """The most recent retrain runs (CLI and stream DAG: one record format), newest first.

    Stream-DAG retrains recorded before the DAG wrote ``retrains.jsonl`` too are read from
    their decision's `retrained` entry.
    """
    mon = MonitoringDir.of_home(home)
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
