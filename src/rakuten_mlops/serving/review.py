"""The review queue: served predictions below the confidence threshold that nobody has labelled yet.

Shadow predictions are never listed (they answered nobody). A label sent for a listed prediction
goes through `POST /v1/feedback` like any other, so it counts in live F1 and leaves the queue.
A listing sent with an image shows a thumbnail of it (`review_images`, kept by the prediction log).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import exists, func, inspect, select
from sqlalchemy.engine import Engine

from rakuten_mlops.appdb import FeedbackRecord, PredictionRecord, ReviewImage, utcnow
from rakuten_mlops.categories import category_name, is_known_code


def review_queue(
    engine: Engine, threshold: float, days: float, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """(total, page) of unlabelled served predictions with probability < `threshold`, newest first.

    Raises SQLAlchemyError when the database does not answer.
    """
    if not {"predictions", "feedback", "review_images"} <= set(inspect(engine).get_table_names()):
        return 0, []
    p, f, images = PredictionRecord.__table__, FeedbackRecord.__table__, ReviewImage.__table__
    where = (
        p.c.shadow.is_(False),
        p.c.probability < threshold,
        p.c.created_at >= utcnow() - dt.timedelta(days=days),
        ~exists().where(f.c.prediction_id == p.c.id),
    )
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(p).where(*where)).scalar_one()
        has_image = exists().where(images.c.sha256 == p.c.image_sha256).label("has_image")
        rows = conn.execute(
            select(p, has_image)
            .where(*where)
            .order_by(p.c.created_at.desc(), p.c.id)
            .limit(limit)
            .offset(offset)
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
                "has_image": bool(r["has_image"]),
            }
            for r in rows
        ]
    return int(total), items


class NoReviewImage(LookupError):
    """No thumbnail to show for this prediction; the message says why."""


def review_image(engine: Engine, prediction_id: str) -> bytes:
    """The JPEG thumbnail of the image sent with served prediction `prediction_id`.

    Raises NoReviewImage when there is none, SQLAlchemyError when the database does not answer.
    """
    p, images = PredictionRecord.__table__, ReviewImage.__table__
    if not {"predictions", "review_images"} <= set(inspect(engine).get_table_names()):
        raise NoReviewImage(f"no prediction with id {prediction_id}")
    with engine.connect() as conn:
        sha256 = conn.execute(
            select(p.c.image_sha256).where(p.c.id == prediction_id, p.c.shadow.is_(False))
        ).first()
        if sha256 is None:
            raise NoReviewImage(f"no prediction with id {prediction_id}")
        if sha256[0] is None:
            raise NoReviewImage(f"prediction {prediction_id} came without an image")
        jpeg = conn.execute(select(images.c.jpeg).where(images.c.sha256 == sha256[0])).scalar()
    if jpeg is None:
        raise NoReviewImage(
            f"no thumbnail kept for prediction {prediction_id}: thumbnails are kept for unlabelled "
            "predictions below the review threshold, within the retention window"
        )
    return bytes(jpeg)
