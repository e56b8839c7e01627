"""The app database: users, prediction log and feedback (SQLAlchemy 2; SQLite or PostgreSQL)."""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    create_engine,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

log = logging.getLogger(__name__)
ROLES = ("predictor", "admin")


def utcnow() -> datetime:
    """Timezone-aware now, in UTC."""
    return datetime.now(UTC)


class RandomPool:
    """Bytes from `os.urandom`, read `size` at a time and handed out in slices.

    One `os.urandom` call per id released the interpreter lock for a system call on every
    prediction; under load the thread then waited to take the lock back from the predict thread
    (about 15 us an id in a profile of 32-row batches, a tenth of the request's own work). The
    pool reads the same source once per `size` bytes. A forked child starts with an empty pool,
    so it never repeats its parent's bytes.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._buffer = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._buffer, self._at = b"", 0

    def take(self, n: int) -> bytes:
        """`n` fresh random bytes (never handed out before in this process)."""
        with self._lock:
            if self._at + n > len(self._buffer):
                self._buffer, self._at = os.urandom(max(self.size, n)), 0
            start = self._at
            self._at += n
            return self._buffer[start : self._at]


_RANDOM = RandomPool()


def record_id(now_ns: int | None = None) -> str:
    """A new record id: a UUID version 7 (RFC 9562), 48 bits of Unix milliseconds then 74 random.

    Ids sort by creation time (to the millisecond), so the primary-key index of the prediction log
    takes each batch of inserts at its end. Random (version 4) ids land on random pages of that
    index, which grows without bound: with SQLite, a 500-row batch of the writer took 10 ms in a
    new table and 29 ms (22 ms of CPU) past 480k rows; with time-ordered ids 9-10 ms throughout
    (`benchmarks/prediction_log_writes.py`). The 74 random bits keep ids unguessable; an id is only
    a handle anyway (feedback is accepted from the prediction's owner only).
    """
    ms = (time.time_ns() if now_ns is None else now_ns) // 1_000_000
    rand = int.from_bytes(_RANDOM.take(10), "big")  # 80 random bits, 74 of them used
    rand_a, rand_b = (rand >> 62) & 0xFFF, rand & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="predictor")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped when the user is disabled, changes role or password: older tokens stop working.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PredictionRecord(Base):
    """One served prediction: inputs (text and image hash), output and timing."""

    __tablename__ = "predictions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    model_name: Mapped[str] = mapped_column(String(255))
    model_version: Mapped[str] = mapped_column(String(64), index=True)
    designation: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    image_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    prdtypecode: Mapped[int] = mapped_column(Integer, index=True)
    probability: Mapped[float] = mapped_column(Float)
    top_k: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    modalities: Mapped[str] = mapped_column(String(16))
    latency_ms: Mapped[float] = mapped_column(Float)
    # A challenger's prediction scored in shadow: never answered; `shadow_of` is the id of the
    # champion's prediction of the same request (its feedback is the shadow row's feedback too).
    shadow: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"), index=True)
    shadow_of: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)


class ReviewImage(Base):
    """A small JPEG thumbnail of an image sent with a low-confidence served prediction (review queue).

    Keyed by the original image's SHA-256 (`predictions.image_sha256`): an image sent many times is
    kept once. Deleted once no unlabelled low-confidence prediction of the retention window uses it.
    """

    __tablename__ = "review_images"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    jpeg: Mapped[bytes] = mapped_column(LargeBinary)


class FeedbackRecord(Base):
    """The true product type of a served prediction (no foreign key: both are written in batches)."""

    __tablename__ = "feedback"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    prediction_id: Mapped[str] = mapped_column(String(36), index=True)
    true_code: Mapped[int] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(64))
    # "label": the first label of a prediction (one per prediction); "correction": an admin's
    # later label, kept next to the first one (the newest row of a prediction is its label).
    kind: Mapped[str] = mapped_column(String(16), default="label", server_default="label")

    __table_args__ = (
        Index(
            "uq_feedback_first_label", "prediction_id", unique=True,
            sqlite_where=text("kind = 'label'"), postgresql_where=text("kind = 'label'"),
        ),
    )  # fmt: skip


class PromotionEvent(Base):
    """One change of champion (gate promotion, manual promotion, rollback): who, when, from → to, why.

    Kept here rather than in registry tags, which the next promotion or rollback overwrites.
    """

    __tablename__ = "promotion_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True, default=utcnow)
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    model_name: Mapped[str] = mapped_column(String(255))
    from_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    to_version: Mapped[str] = mapped_column(String(64))
    reasons: Mapped[str] = mapped_column(Text, default="")


def record_promotion(
    factory: sessionmaker[Session],
    *,
    username: str,
    action: str,
    model_name: str,
    from_version: str | None,
    to_version: str,
    reasons: str,
) -> None:
    """Append one champion change to the promotion history."""
    with session_scope(factory) as session:
        session.add(
            PromotionEvent(
                username=username, action=action, model_name=model_name, from_version=from_version,
                to_version=to_version, reasons=reasons[:4900], created_at=utcnow(),
            )
        )  # fmt: skip


def promotion_history(
    factory: sessionmaker[Session], model_name: str, limit: int = 50
) -> list[dict[str, Any]]:
    """The latest champion changes of `model_name`, newest first."""
    query = (
        select(PromotionEvent)
        .where(PromotionEvent.model_name == model_name)
        .order_by(PromotionEvent.created_at.desc(), PromotionEvent.id.desc())
        .limit(limit)
    )
    with session_scope(factory) as session:
        rows = session.scalars(query).all()
        return [
            {
                "at": r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=UTC),
                "username": r.username, "action": r.action, "from_version": r.from_version,
                "to_version": r.to_version, "reasons": r.reasons,
            }
            for r in rows
        ]  # fmt: skip


def make_engine(url: str) -> Engine:
    """Engine for `url`; creates the folder of a SQLite file and turns on WAL for concurrent readers."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    connect_args = {"connect_timeout": 5} if parsed.get_backend_name() == "postgresql" else {}
    return create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=5, pool_timeout=5, connect_args=connect_args
    )


# Columns added after the first release: created on tables that lack them (no migration tool).
ADDED_COLUMNS = {
    "users": {"token_version": "INTEGER NOT NULL DEFAULT 0"},
    "feedback": {"kind": "VARCHAR(16) NOT NULL DEFAULT 'label'"},
    "predictions": {"shadow": "BOOLEAN NOT NULL DEFAULT FALSE", "shadow_of": "VARCHAR(36)"},
}


def create_schema(engine: Engine) -> None:
    """Create the tables that do not exist yet, and the columns added since they were created."""
    Base.metadata.create_all(engine)
    inspector = inspect(engine)
    with engine.begin() as conn:
        for table, columns in ADDED_COLUMNS.items():
            present = {c["name"] for c in inspector.get_columns(table)}
            for name, ddl in columns.items():
                if name not in present:
                    conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}"))
    try:  # a table from before the index may hold several labels of one prediction
        for index in FeedbackRecord.__table__.indexes:  # type: ignore[attr-defined]
            index.create(engine, checkfirst=True)
    except SQLAlchemyError as exc:
        log.warning("feedback: unique first-label index not created (%s)", exc.__class__.__name__)
    for index in PredictionRecord.__table__.indexes:  # type: ignore[attr-defined]
        index.create(engine, checkfirst=True)  # those of columns added since the table was created


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session committed on success and rolled back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to `engine` that keep loaded attributes after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)
