"""Former home of the app database; the tables and engine now live in `rakuten_mlops.appdb`."""

from __future__ import annotations

from rakuten_mlops.appdb import (
    ROLES,
    Base,
    FeedbackRecord,
    PredictionRecord,
    User,
    create_schema,
    make_engine,
    session_factory,
    session_scope,
    utcnow,
)

__all__ = [
    "ROLES",
    "Base",
    "FeedbackRecord",
    "PredictionRecord",
    "User",
    "create_schema",
    "make_engine",
    "session_factory",
    "session_scope",
    "utcnow",
]
