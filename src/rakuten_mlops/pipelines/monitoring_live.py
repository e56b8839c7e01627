"""App database readers for live monitoring: feedback joined with its prediction, recent predictions,
and their time series (live F1 per model version, share of each predicted class)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd

from rakuten_mlops.monitoring.live import FEEDBACK_COLUMNS


def read_feedback(database_url: str, since: dt.datetime, limit: int) -> pd.DataFrame:
    """Feedback joined with its prediction from the app DB; empty when the tables do not exist yet."""
    from sqlalchemy import exists, inspect, select
    from sqlalchemy.exc import SQLAlchemyError

    from rakuten_mlops.appdb import FeedbackRecord, PredictionRecord, make_engine

    engine = make_engine(database_url)
    try:
        tables = set(inspect(engine).get_table_names())
        if not {"feedback", "predictions"} <= tables:
            return pd.DataFrame(columns=list(FEEDBACK_COLUMNS))
        f, p = FeedbackRecord.__table__, PredictionRecord.__table__
        # One label per prediction: an admin's correction supersedes the earlier label.
        newer = FeedbackRecord.__table__.alias("newer")
        superseded = exists().where(
            newer.c.prediction_id == f.c.prediction_id, newer.c.created_at > f.c.created_at
        )
        query = (
            select(
                f.c.prediction_id,
                p.c.model_version,
                p.c.prdtypecode.label("predicted_code"),
                f.c.true_code,
                f.c.created_at.label("time"),
            )
            .join(p, p.c.id == f.c.prediction_id)
            .where(f.c.created_at >= since, ~superseded)
            .order_by(f.c.created_at.desc())
            .limit(limit)
        )
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    except SQLAlchemyError as exc:
        raise ConnectionError(f"cannot read feedback from the app database: {exc}") from exc
    finally:
        engine.dispose()
    return pd.DataFrame(rows, columns=list(FEEDBACK_COLUMNS))


def read_recent_predictions(database_url: str, limit: int) -> pd.DataFrame:
    """The last `limit` logged predictions (designation, description, predicted code, version, time)."""
    from sqlalchemy import inspect, select
    from sqlalchemy.exc import SQLAlchemyError

    from rakuten_mlops.appdb import PredictionRecord, make_engine

    columns = ["designation", "description", "predicted_code", "model_version", "time"]
    engine = make_engine(database_url)
    try:
        if "predictions" not in set(inspect(engine).get_table_names()):
            return pd.DataFrame(columns=columns)
        p = PredictionRecord.__table__
        query = (
            select(p.c.designation, p.c.description, p.c.prdtypecode, p.c.model_version, p.c.created_at)
            .order_by(p.c.created_at.desc())
            .limit(limit)
        )
        if has_shadow_column(engine):  # a challenger's shadow predictions answered no one: left out
            query = query.where(p.c.shadow.is_(False))
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    except SQLAlchemyError as exc:
        raise ConnectionError(f"cannot read predictions from the app database: {exc}") from exc
    finally:
        engine.dispose()
    return pd.DataFrame(rows, columns=columns)


def has_shadow_column(engine: Any) -> bool:
    """Whether the prediction log has the `shadow` column (the API adds it at start)."""
    from sqlalchemy import inspect

    return "shadow" in {c["name"] for c in inspect(engine).get_columns("predictions")}


def no_database_yet(url: str) -> bool:
    """A default SQLite app database that does not exist yet (reading must not create it)."""
    return url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file()


def recent_feedback(database_url: str, days: float = 30.0, limit: int = 20_000) -> pd.DataFrame:
    """Feedback of the last `days` joined with its prediction (raises ConnectionError when the DB is down)."""
    if no_database_yet(database_url):
        return pd.DataFrame(columns=list(FEEDBACK_COLUMNS))
    return read_feedback(database_url, dt.datetime.now(dt.UTC) - dt.timedelta(days=days), limit)


def recent_predictions(database_url: str, limit: int = 5_000) -> pd.DataFrame:
    """The last logged predictions (raises ConnectionError when the app database is down)."""
    if no_database_yet(database_url):
        return pd.DataFrame(columns=["designation", "description", "predicted_code", "model_version", "time"])
    return read_recent_predictions(database_url, limit)


def bucket_frequency(times: pd.Series) -> str:
    """Hourly buckets over up to two days of data, daily beyond."""
    if times.empty:
        return "D"
    span = times.max() - times.min()
    return "h" if span <= pd.Timedelta(days=2) else "D"


def live_f1_over_time(feedback: pd.DataFrame) -> pd.DataFrame:
    """Weighted F1 of each time bucket's feedback, per model version (time, model_version, weighted_f1, n)."""
    from sklearn.metrics import f1_score

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
