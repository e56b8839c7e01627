"""Record ids of the prediction log: UUID version 7, ordered by creation time, unique."""

from __future__ import annotations

import time
import uuid

from rakuten_mlops.appdb import record_id


def test_record_ids_are_rfc_9562_version_7_uuids_carrying_their_millisecond() -> None:
    now_ns = 1_780_000_000_123_456_789
    ident = uuid.UUID(record_id(now_ns))
    assert ident.version == 7 and ident.variant == uuid.RFC_4122
    assert ident.int >> 80 == now_ns // 1_000_000
    before = time.time_ns() // 1_000_000
    current = uuid.UUID(record_id()).int >> 80
    assert before <= current <= time.time_ns() // 1_000_000  # without a time: now


def test_record_ids_sort_by_creation_time_as_strings_and_never_repeat() -> None:
    start = 1_780_000_000_000_000_000
    ids = [record_id(start + ms * 1_000_000) for ms in range(0, 5000, 7)]
    assert ids == sorted(ids)  # the string order is the time order (what the index sees)
    same_ms = {record_id(start) for _ in range(10_000)}
    assert len(same_ms) == 10_000  # 74 random bits: no collision within one millisecond
    assert len({i[:13] for i in same_ms}) == 1  # and they share their time prefix
