"""File plumbing shared by every layer: atomic replacement, JSON and JSON-lines files, `flock` locks.

A reader (a `/metrics` scrape, another DAG run, the UI) must never see half a file, and two
processes must not interleave an update: files are written beside their target and moved over
it with `os.replace`; updates that read then write take an exclusive lock file. Nothing here
knows about the project: it imports only the standard library.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def replacing(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside `path` to write; it replaces `path` when the block succeeds.

    The temporary name is unique (concurrent writers do not share it) and ends in `suffix`
    (`np.save` needs ``.npy``). On an exception the temporary file is removed and `path` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, data: Any, *, sort_keys: bool = True) -> Path:
    """Write `data` as indented JSON (non-JSON values as `str`) so no reader sees half a file."""
    with replacing(path) as tmp:
        text = json.dumps(data, indent=2, sort_keys=sort_keys, default=str) + "\n"
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def read_json_or_none(path: Path) -> Any:
    """The JSON in `path`, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one record as a JSON line, flushed to disk before returning."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True, default=str) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSON-lines file; a torn last line (crash mid-write) is ignored."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def lock_handle(handle: IO[Any], *, wait: bool = True) -> bool:
    """Take an exclusive `flock` on an open file; False when `wait` is off and another holds it.

    The lock lasts until it is released or the file is closed.
    """
    try:
        fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        if wait:
            raise
        return False
    return True


@contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive `flock` on `lock_path` (created if needed) for the block."""
    with open(lock_path, "w") as handle:
        lock_handle(handle)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run: text starting like a formula gets a leading `'`.

    Only text changes (`=1+1` becomes `'=1+1`); numbers, including negative ones, stay numbers.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
