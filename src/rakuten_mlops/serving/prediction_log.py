"""Prediction log: records queued by requests, written in batches by a background thread.

Requests only append to an in-memory queue. A writer thread inserts batches (idempotently:
a retried batch never duplicates a row). While the database is down the queue grows; past
`max_buffer` records, the oldest spill to a disk spool replayed when the database answers
again. On close, the queue is flushed; what the database cannot take in time is spooled.

A served prediction less confident than `review_below` that came with an image also queues the
image: the writer thread stores a small JPEG thumbnail of it for the review queue (`review_images`,
one row per image SHA-256). Pending images are bounded in bytes and never spooled: past the bound,
or when the database is down at shutdown, the listing is reviewed without its image.
Thumbnails no unlabelled low-confidence prediction of the last `review_image_days` uses are
deleted by the hourly purge.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Table, and_, delete, exists, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from rakuten_mlops.appdb import FeedbackRecord, PredictionRecord, ReviewImage, create_schema, utcnow
from rakuten_mlops.serving.spool import Record, Spool
from rakuten_mlops.serving.thumbnails import make_thumbnail

log = logging.getLogger(__name__)
TABLES: dict[str, Table] = {
    "predictions": PredictionRecord.__table__,  # type: ignore[dict-item]
    "feedback": FeedbackRecord.__table__,  # type: ignore[dict-item]
}
REVIEW_IMAGES: Table = ReviewImage.__table__  # type: ignore[assignment]
MAX_BACKOFF_S = 5.0
PURGE_EVERY_S = 3600.0
PENDING_IMAGE_BYTES = 32 * 1024 * 1024  # images waiting for their thumbnail, at most
THUMBNAIL_GRACE = timedelta(hours=1)  # a thumbnail may be written before its prediction row


class AlreadyLabelled(Exception):
    """The prediction already has its label; only an admin may correct it."""


def _insert_ignoring_duplicates(engine: Engine, table: Table, key: str = "id") -> Any:
    """An INSERT that skips rows whose primary key already exists (retries are idempotent)."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=[key])
    if engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing(index_elements=[key])
    return insert(table)


class PredictionLog:
    """Batched, outage-tolerant writer of prediction and feedback records."""

    def __init__(
        self,
        engine: Engine,
        spool_dir: Path,
        *,
        flush_s: float = 0.5,
        batch_rows: int = 500,
        max_buffer: int = 50_000,
        recent_ids: int = 100_000,
        retention_days: int = 0,
        spool_max_bytes: int | None = None,
        review_below: float = 0.0,
        review_image_days: int = 30,
    ) -> None:
        self.engine = engine
        self.spool = Spool(spool_dir, spool_max_bytes)
        self.retention_days = retention_days
        self._next_purge = 0.0
        self.flush_s = flush_s
        self.batch_rows = batch_rows
        self.max_buffer = max_buffer
        self._queue: deque[Record] = deque()
        self._recent: OrderedDict[str, str] = OrderedDict()  # prediction id -> username
        self._recent_max = recent_ids
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._statements = {name: _insert_ignoring_duplicates(engine, t) for name, t in TABLES.items()}
        self.schema_ready = False
        self.spilled = 0  # records moved to the disk spool
        self.db_ok = True
        self.review_below = review_below  # 0: no thumbnails
        self.review_image_days = review_image_days
        self._images: OrderedDict[str, bytes] = OrderedDict()  # image SHA-256 -> image, to thumbnail
        self._image_bytes = 0
        self._stored: OrderedDict[str, None] = OrderedDict()  # SHA-256s whose thumbnail is stored
        self._image_lock = threading.Lock()
        self._insert_image = _insert_ignoring_duplicates(engine, REVIEW_IMAGES, "sha256")
        self.images_dropped = 0  # thumbnails not made: pending bound reached or database down at close

    def pending(self) -> int:
        """Records waiting in memory."""
        return len(self._queue)

    def add(self, table: str, row: dict[str, Any], image: bytes | None = None) -> None:
        """Queue one record (never blocks, never raises on database trouble).

        `image`: the image a served prediction came with; kept as a review thumbnail when the
        prediction is below `review_below` (the work is done by the writer thread).
        """
        if table == "predictions" and not row.get("shadow"):  # nobody gives feedback on a shadow id
            self._recent[row["id"]] = row["username"]
            if len(self._recent) > self._recent_max:
                self._recent.popitem(last=False)
            if image is not None and row.get("image_sha256") and row["probability"] < self.review_below:
                self._queue_image(row["image_sha256"], image)
        self._queue.append((table, row))
        if len(self._queue) >= self.batch_rows and not self._wake.is_set():  # once per backlog
            self._wake.set()

    def _queue_image(self, sha256: str, image: bytes) -> None:
        with self._image_lock:
            if sha256 in self._stored or sha256 in self._images:
                return
            if self._image_bytes + len(image) > PENDING_IMAGE_BYTES:
                self.images_dropped += 1
                return
            self._images[sha256] = image
            self._image_bytes += len(image)

    def pending_images(self) -> int:
        """Images waiting for their review thumbnail."""
        return len(self._images)

    def was_recently_logged(self, prediction_id: str) -> bool:
        """True when this process issued `prediction_id` recently (it may not be written yet)."""
        return prediction_id in self._recent

    def owner_of(self, prediction_id: str) -> str | None:
        """Who made `prediction_id` (None: no such prediction); raises SQLAlchemyError when the DB is down."""
        recent = self._recent.get(prediction_id)
        if recent is not None:
            return recent
        table = TABLES["predictions"]
        with self.engine.connect() as conn:
            query = select(table.c.username).where(table.c.id == prediction_id, table.c.shadow.is_(False))
            row = conn.execute(query).first()
        return None if row is None else str(row[0])

    def add_feedback(self, row: dict[str, Any], correction: bool) -> None:
        """Store a label now (not batched): the first label of a prediction, or an admin's correction.

        Raises `AlreadyLabelled` when the prediction has a label and this is no correction (a
        unique index on first labels makes the check atomic across workers), SQLAlchemyError
        when the database is down.
        """
        table = TABLES["feedback"]
        row = {**row, "kind": "correction" if correction else "label"}
        with self.engine.begin() as conn:
            if not correction:
                first = select(table.c.id).where(
                    table.c.prediction_id == row["prediction_id"], table.c.kind == "label"
                )
                if conn.execute(first).first() is not None:
                    raise AlreadyLabelled(row["prediction_id"])
            try:
                conn.execute(insert(table), [row])
            except IntegrityError:
                raise AlreadyLabelled(row["prediction_id"]) from None

    def purge_expired(self) -> int:
        """Delete predictions and feedback older than `retention_days` (0: keep); rows deleted."""
        if self.retention_days <= 0:
            return 0
        cutoff = utcnow() - timedelta(days=self.retention_days)
        deleted = 0
        with self.engine.begin() as conn:
            for table in TABLES.values():
                deleted += conn.execute(delete(table).where(table.c.created_at < cutoff)).rowcount or 0
        if deleted:
            log.info("prediction log: deleted %d rows older than %d days", deleted, self.retention_days)
        return deleted

    def purge_review_images(self) -> int:
        """Delete the thumbnails no review-queue prediction needs any more; thumbnails deleted.

        A thumbnail stays while an unlabelled served prediction of the last `review_image_days`,
        less confident than `review_below`, came with its image (thumbnails younger than an hour
        stay too: their prediction row may not be written yet).
        """
        p, f, images = TABLES["predictions"], TABLES["feedback"], REVIEW_IMAGES
        now = utcnow()
        needed = exists().where(
            and_(
                p.c.image_sha256 == images.c.sha256,
                p.c.shadow.is_(False),
                p.c.probability < self.review_below,
                p.c.created_at >= now - timedelta(days=self.review_image_days),
                ~exists().where(f.c.prediction_id == p.c.id),
            )
        )
        query = delete(images).where(images.c.created_at < now - THUMBNAIL_GRACE, ~needed)
        with self.engine.begin() as conn:
            deleted = conn.execute(query).rowcount or 0
        if deleted:
            log.info("prediction log: deleted %d review thumbnails no longer in the queue", deleted)
            with self._image_lock:
                self._stored.clear()  # a purged image sent again must be stored again
        return deleted

    def _maybe_purge(self) -> None:
        if time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + PURGE_EVERY_S
        try:
            self.purge_expired()
            self.purge_review_images()
        except SQLAlchemyError as exc:
            log.warning("prediction log: retention purge failed (%s)", exc.__class__.__name__)

    def prediction_exists(self, prediction_id: str) -> bool | None:
        """Whether the database holds `prediction_id`; None when the database does not answer."""
        table = TABLES["predictions"]
        try:
            with self.engine.connect() as conn:
                return conn.execute(select(table.c.id).where(table.c.id == prediction_id)).first() is not None
        except SQLAlchemyError:
            return None

    def start(self) -> None:
        """Start the writer thread."""
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the writer, flush the queue, and spool whatever the database did not take in time."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        deadline = time.monotonic() + timeout_s
        while self._queue and time.monotonic() < deadline:
            if not self._flush_batch():
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        if self._queue:
            n = self._spill(len(self._queue))
            log.warning("database unavailable at shutdown: %d prediction-log records spooled to disk", n)
        elif self._images:
            self._store_thumbnails(deadline)
        if self._images:  # never spooled: these listings are reviewed without their image
            self.images_dropped += len(self._images)
            self._images.clear()

    def _run(self) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            self._wake.wait(backoff or self.flush_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            ok = self._replay_spool() and self._drain()
            if ok and self._images:
                ok = self._store_thumbnails()
            if ok and self.schema_ready:
                self._maybe_purge()
            backoff = 0.0 if ok else min(MAX_BACKOFF_S, max(0.1, backoff * 2))
            if not ok and len(self._queue) > self.max_buffer:
                self._spill(len(self._queue) - self.max_buffer)

    def _drain(self) -> bool:
        while self._queue:
            if not self._flush_batch():
                return False
            if self._stop.is_set():
                return True
        return True

    def _flush_batch(self) -> bool:
        """Write up to `batch_rows` queued records in one transaction; on failure put them back."""
        batch: list[Record] = []
        while self._queue and len(batch) < self.batch_rows:
            batch.append(self._queue.popleft())
        if not batch:
            return True
        if self._write(batch):
            return True
        self._queue.extendleft(reversed(batch))
        return False

    def _write(self, records: list[Record]) -> bool:
        grouped: dict[str, list[dict[str, Any]]] = {}
        for table, row in records:
            if table == "predictions":  # one shape per batch (spooled records may predate the columns)
                row = {"shadow": False, "shadow_of": None, **row}
            grouped.setdefault(table, []).append(row)
        try:
            if not self.schema_ready:  # the database may have been down when the app started
                create_schema(self.engine)
                self.schema_ready = True
            with self.engine.begin() as conn:
                for table in TABLES:  # predictions before their feedback
                    if grouped.get(table):
                        conn.execute(self._statements[table], grouped[table])
        except SQLAlchemyError as exc:
            if self.db_ok:
                log.warning("prediction log: database write failed, buffering (%s)", exc.__class__.__name__)
            self.db_ok = False
            return False
        if not self.db_ok:
            log.info("prediction log: database is back")
        self.db_ok = True
        return True

    def _store_thumbnails(self, deadline: float | None = None) -> bool:
        """Make and store the thumbnails of the pending images; False when the database refused them.

        Stops early at `deadline` (monotonic) or, without one, when the writer is asked to stop.
        """
        while self._images:
            if self._stop.is_set() if deadline is None else time.monotonic() >= deadline:
                return True
            with self._image_lock:
                sha256, image = next(iter(self._images.items()))
            thumbnail = make_thumbnail(image)  # outside the lock: requests keep queueing
            if thumbnail is not None:
                row = {
                    "sha256": sha256, "created_at": utcnow(), "jpeg": thumbnail.jpeg,
                    "width": thumbnail.width, "height": thumbnail.height,
                }  # fmt: skip
                try:
                    with self.engine.begin() as conn:
                        conn.execute(self._insert_image, [row])
                except SQLAlchemyError as exc:
                    log.warning("prediction log: review thumbnail not stored (%s)", exc.__class__.__name__)
                    return False
            with self._image_lock:
                del self._images[sha256]
                self._image_bytes -= len(image)
                if thumbnail is not None:
                    self._stored[sha256] = None
                    if len(self._stored) > self._recent_max:
                        self._stored.popitem(last=False)
        return True

    def _spill(self, n: int) -> int:
        batch = [self._queue.popleft() for _ in range(min(n, len(self._queue)))]
        try:
            written = self.spool.write(batch)
        except OSError:
            log.exception("prediction log: could not spool %d records to disk", len(batch))
            self._queue.extendleft(reversed(batch))
            return 0
        self.spilled += written
        return written

    def _replay_spool(self) -> bool:
        for path in self.spool.files():
            try:
                with self.spool.replaying(path) as records:
                    if records is None:
                        continue
                    for i in range(0, len(records), self.batch_rows):
                        if not self._write(records[i : i + self.batch_rows]):
                            raise _ReplayFailed
            except _ReplayFailed:
                return False
        return True


class _ReplayFailed(Exception):
    """The database refused a spooled batch: keep the file for the next attempt."""
