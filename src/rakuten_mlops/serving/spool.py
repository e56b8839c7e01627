"""Disk spool for prediction-log records the database could not take (outage, or shutdown during one)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from rakuten_mlops.infra import lock_handle

Record = tuple[str, dict[str, Any]]  # (table name, row)


def _encode(record: Record) -> str:
    table, row = record
    row = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
    return json.dumps({"table": table, "row": row}, ensure_ascii=False)


def _decode(line: str) -> Record:
    obj = json.loads(line)
    row = obj["row"]
    row["created_at"] = datetime.fromisoformat(row["created_at"])
    return obj["table"], row


class Spool:
    """Append-only JSONL files under `spool_dir`, one per process, guarded by `flock`.

    Any process may replay any spool file: it takes the file's lock without waiting, reads it,
    and deletes it only after the records reached the database.
    """

    def __init__(self, spool_dir: Path, max_bytes: int | None = None) -> None:
        self.spool_dir = spool_dir
        self.max_bytes = max_bytes
        self.path = spool_dir / f"spool-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self.dropped = 0  # records refused because the spool was full

    def size(self) -> int:
        """Bytes held by every spool file in the folder (all processes)."""
        total = 0
        for path in self.files():
            try:
                total += path.stat().st_size
            except FileNotFoundError:
                continue
        return total

    def write(self, records: Iterable[Record]) -> int:
        """Append records durably; returns how many were written.

        With `max_bytes`, records that would take the folder past it are dropped (counted in
        `dropped`): a long outage cannot fill the disk.
        """
        lines = [_encode(r) for r in records]
        if not lines:
            return 0
        if self.max_bytes is not None:
            room = self.max_bytes - self.size()
            kept: list[str] = []
            for line in lines:
                room -= len(line.encode("utf-8")) + 1
                if room < 0:
                    break
                kept.append(line)
            self.dropped += len(lines) - len(kept)
            lines = kept
            if not lines:
                return 0
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        while True:
            with self.path.open("a", encoding="utf-8") as fh:
                lock_handle(fh)
                if os.fstat(fh.fileno()).st_nlink == 0:  # replayed and deleted while we waited
                    continue
                fh.write("\n".join(lines) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
                return len(lines)

    def files(self) -> list[Path]:
        """Spool files waiting to be replayed, oldest first."""
        if not self.spool_dir.is_dir():
            return []
        return sorted(self.spool_dir.glob("spool-*.jsonl"), key=lambda p: p.stat().st_mtime)

    @contextmanager
    def replaying(self, path: Path) -> Iterator[list[Record] | None]:
        """Records of `path` under its lock (None when another process holds it or it is gone).

        The file is deleted when the block exits without an exception.
        """
        try:
            fh = path.open("r+", encoding="utf-8")
        except FileNotFoundError:
            yield None
            return
        with fh:
            if not lock_handle(fh, wait=False):
                yield None
                return
            if os.fstat(fh.fileno()).st_nlink == 0:
                yield None
                return
            records = []
            for line in fh.read().splitlines():
                try:
                    records.append(_decode(line))
                except (ValueError, KeyError, TypeError):  # a torn last line after a crash
                    continue
            yield records
            path.unlink()
