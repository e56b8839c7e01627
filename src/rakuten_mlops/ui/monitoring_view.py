"""What the Monitoring page shows, built from the API's monitoring routes (no Streamlit here)."""

from __future__ import annotations

from typing import Any

import pandas as pd


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


def series(points: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    """A time series from the API (ISO times) as a frame with UTC timestamps."""
    frame = pd.DataFrame(points, columns=columns)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame
