"""App database readers for live monitoring: feedback joined with its prediction, recent predictions."""

from __future__ import annotations

import datetime as dt

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
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    except SQLAlchemyError as exc:
        raise ConnectionError(f"cannot read predictions from the app database: {exc}") from exc
    finally:
        engine.dispose()
    return pd.DataFrame(rows, columns=columns)
