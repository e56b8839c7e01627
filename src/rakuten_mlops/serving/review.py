"""The review queue: served predictions below the confidence threshold that nobody has labelled yet.

Shadow predictions are never listed (they answered nobody). A label sent for a listed prediction
goes through `POST /v1/feedback` like any other, so it counts in live F1 and leaves the queue.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import exists, func, inspect, select
from sqlalchemy.engine import Engine

from rakuten_mlops.appdb import FeedbackRecord, PredictionRecord, utcnow
from rakuten_mlops.categories import category_name, is_known_code


def review_queue(
    engine: Engine, threshold: float, days: float, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """(total, page) of unlabelled served predictions with probability < `threshold`, newest first.

    Raises SQLAlchemyError when the database does not answer.
    """
    if not {"predictions", "feedback"} <= set(inspect(engine).get_table_names()):
        return 0, []
    p, f = PredictionRecord.__table__, FeedbackRecord.__table__
    where = (
        p.c.shadow.is_(False),
        p.c.probability < threshold,
        p.c.created_at >= utcnow() - dt.timedelta(days=days),
        ~exists().where(f.c.prediction_id == p.c.id),
    )
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(p).where(*where)).scalar_one()
        rows = conn.execute(
            select(p).where(*where).order_by(p.c.created_at.desc(), p.c.id).limit(limit).offset(offset)
        ).mappings()
        items = [
            {
                "prediction_id": r["id"],
                "created_at": r["created_at"],
                "username": r["username"],
                "model_version": r["model_version"],
                "designation": r["designation"],
                "description": r["description"] or "",
                "prdtypecode": r["prdtypecode"],
                "category": category_name(r["prdtypecode"]) if is_known_code(r["prdtypecode"]) else "",
                "probability": r["probability"],
                "top_k": r["top_k"] or [],
                "image_sha256": r["image_sha256"],
            }
            for r in rows
        ]
    return int(total), items
