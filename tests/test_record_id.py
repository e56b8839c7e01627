"""Record ids of the prediction log: UUID version 7, ordered by creation time, unique."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from rakuten_mlops.appdb import RandomPool, record_id


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


def test_the_random_pool_hands_out_each_byte_of_its_source_once(monkeypatch) -> None:
    reads = []

    def counting(n: int) -> bytes:  # a source whose bytes say where they came from
        reads.append(n)
        return bytes((len(reads) * 16 + i) % 256 for i in range(n))

    monkeypatch.setattr(os, "urandom", counting)
    pool = RandomPool(size=32)
    taken = [pool.take(10) for _ in range(7)]
    assert reads == [32, 32, 32]  # 3 slices of 10 a read; the last 2 bytes of each read unused
    assert taken[:3] == [bytes(range(16 + i, 26 + i)) for i in (0, 10, 20)]
    assert taken[3] == bytes(range(32, 42))  # the next read starts afresh
    assert len(set(taken)) == 7
    assert len(pool.take(100)) == 100 and reads[-1] == 100  # more than a pool's worth at once


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork: POSIX only")
def test_a_forked_child_never_repeats_its_parents_random_bytes() -> None:
    pool = RandomPool()
    pool.take(10)  # the parent's pool holds bytes it has not handed out yet
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next bytes, to the parent
        os.write(write_end, pool.take(10))
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    child = os.read(read_end, 100)
    os.close(read_end)
    assert len(child) == 10 and child != pool.take(10)  # without the reset: one buffer's same slice
