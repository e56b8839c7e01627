"""Atomic JSON files, JSON lines and `flock` locks shared by every layer."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest

from rakuten_mlops.infra import (
    append_jsonl,
    exclusive_lock,
    lock_handle,
    read_json_or_none,
    read_jsonl,
    replacing,
    write_json_atomic,
)


def test_write_json_atomic_writes_sorted_indented_json_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "state.json"
    write_json_atomic(path, {"b": 1, "a": Path("x")})
    assert path.read_text(encoding="utf-8") == '{\n  "a": "x",\n  "b": 1\n}\n'
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]


def test_write_json_atomic_can_keep_key_order(tmp_path: Path) -> None:
    path = write_json_atomic(tmp_path / "r.json", {"b": 1, "a": 2}, sort_keys=False)
    assert list(json.loads(path.read_text())) == ["b", "a"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary_one(tmp_path: Path) -> None:
    path = write_json_atomic(tmp_path / "state.json", {"version": 1})
    with pytest.raises(RuntimeError), replacing(path) as tmp:
        tmp.write_text("half a fi", encoding="utf-8")
        raise RuntimeError("crash mid-write")
    assert json.loads(path.read_text()) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_replacing_keeps_the_suffix_a_writer_needs(tmp_path: Path) -> None:
    with replacing(tmp_path / "v.npy", suffix=".tmp.npy") as tmp:
        assert tmp.name.endswith(".tmp.npy") and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "v.npy").read_bytes() == b"x"


def test_read_json_or_none_on_missing_and_broken_files(tmp_path: Path) -> None:
    assert read_json_or_none(tmp_path / "missing.json") is None
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    assert read_json_or_none(tmp_path / "broken.json") is None


def test_jsonl_round_trip_ignores_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "log" / "decisions.jsonl"
    assert read_jsonl(path) == []
    append_jsonl(path, {"id": 1, "decision": "skip"})
    append_jsonl(path, {"id": 2, "decision": "retrain"})
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"id": 3, "deci')
    assert read_jsonl(path) == [{"decision": "skip", "id": 1}, {"decision": "retrain", "id": 2}]


def _hold_lock(lock_path: str, ready: Any, seconds: float) -> None:
    with exclusive_lock(Path(lock_path)):
        ready.set()
        time.sleep(seconds)


def test_exclusive_lock_excludes_another_process_until_released(tmp_path: Path) -> None:
    lock_path = tmp_path / ".lock"
    ready = multiprocessing.get_context("fork").Event()
    holder = multiprocessing.get_context("fork").Process(target=_hold_lock, args=(str(lock_path), ready, 1.0))
    holder.start()
    try:
        assert ready.wait(10)
        with lock_path.open("a") as handle:
            assert lock_handle(handle, wait=False) is False
    finally:
        holder.join(10)
    with lock_path.open("a") as handle:
        assert lock_handle(handle, wait=False) is True
