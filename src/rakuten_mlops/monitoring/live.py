"""Live quality: weighted F1 and accuracy over the feedback of a sliding window, per model version.

`live_metrics` works on a DataFrame (prediction_id, model_version, predicted_code, true_code,
time); reading that frame from the app database is `rakuten_mlops.pipelines.monitoring_live`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

FEEDBACK_COLUMNS = ("prediction_id", "model_version", "predicted_code", "true_code", "time")


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True)


def window_feedback(
    feedback: pd.DataFrame, now: dt.datetime, window_days: float, max_feedback: int
) -> pd.DataFrame:
    """The latest feedback per prediction, within `window_days` of `now`, at most `max_feedback` rows."""
    if feedback.empty:
        return feedback.reindex(columns=list(FEEDBACK_COLUMNS))
    df = feedback.copy()
    df["time"] = _utc(df["time"])
    now_ts = pd.Timestamp(now).tz_convert("UTC") if pd.Timestamp(now).tzinfo else pd.Timestamp(now, tz="UTC")
    df = df[(df["time"] <= now_ts) & (df["time"] > now_ts - pd.Timedelta(days=window_days))]
    # A corrected label replaces the earlier one: the last feedback on a prediction wins.
    df = df.sort_values("time", kind="stable").drop_duplicates("prediction_id", keep="last")
    return df.tail(max_feedback)


def live_metrics(
    feedback: pd.DataFrame,
    *,
    now: dt.datetime | None = None,
    window_days: float = 7.0,
    max_feedback: int = 5000,
) -> dict[str, Any]:
    """Weighted F1 and accuracy per model version (and overall) over the feedback window."""
    now = now or dt.datetime.now(dt.UTC)
    df = window_feedback(feedback, now, window_days, max_feedback)
    versions: dict[str, dict[str, Any]] = {}
    for version, part in df.groupby(df["model_version"].astype(str), sort=True):
        versions[str(version)] = _scores(part)
    return {
        "computed_at": now.isoformat(timespec="seconds"),
        "window_days": window_days,
        "max_feedback": max_feedback,
        "overall": _scores(df),
        "versions": versions,
    }


def _scores(part: pd.DataFrame) -> dict[str, Any]:
    if part.empty:
        return {"n": 0, "weighted_f1": None, "accuracy": None, "first": None, "last": None}
    y_true = part["true_code"].astype(int).to_numpy()
    y_pred = part["predicted_code"].astype(int).to_numpy()
    return {
        "n": len(part),
        "weighted_f1": float(f1_score(y_true, y_pred, average="weighted", zero_division=0)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "first": part["time"].min().isoformat(),
        "last": part["time"].max().isoformat(),
    }
