"""Serving components on their own: login limiter, micro-batcher, image checks, spool, passwords."""

from __future__ import annotations

import asyncio
import base64
import io
import threading
from datetime import UTC, datetime

import pytest
from PIL import Image

from rakuten_mlops.serving.batcher import MicroBatcher, NoModelError
from rakuten_mlops.serving.images import ImageRejected, check_image, decode_base64
from rakuten_mlops.serving.login_limiter import (
    LoginLimiter,
    MemoryWindows,
    Quota,
    client_address,
    login_key,
    parse_networks,
)
from rakuten_mlops.serving.security import hash_password, verify_password
from rakuten_mlops.serving.spool import Spool
from rakuten_mlops.serving.spool import _encode as encode_record


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _limiter(clock, per_account=3, per_address=100, global_limit=1000, max_keys=100_000):
    windows = MemoryWindows(max_keys=max_keys, clock=clock)
    return LoginLimiter(
        windows, per_account=per_account, per_address=per_address, global_limit=global_limit, window_s=60
    )


def test_limiter_blocks_after_max_failures_until_the_window_passes():
    clock = FakeClock()
    limiter = _limiter(clock)
    assert login_key("Alice ", "10.0.0.1") == login_key("alice", "10.0.0.1")
    for _ in range(3):
        assert limiter.reserve("alice", "10.0.0.1").allowed  # a failure: the reservation stays
        clock.now += 1
    refused = limiter.reserve("Alice", "10.0.0.1")
    assert not refused.allowed and refused.retry_after == 57  # the oldest (t=1000) leaves at 1060
    assert limiter.reserve("alice", "10.0.0.2").allowed  # the account is not locked: the address is
    clock.now += 57
    ok = limiter.reserve("alice", "10.0.0.1")
    assert ok.allowed
    limiter.succeeded(ok, "alice", "10.0.0.1")  # a correct password clears the account+address window
    for _ in range(3):
        assert limiter.reserve("alice", "10.0.0.1").allowed


def test_a_cancelled_reservation_is_no_failure():
    limiter = _limiter(FakeClock(), per_account=1)
    reservation = limiter.reserve("alice", "10.0.0.1")
    assert not limiter.reserve("alice", "10.0.0.1").allowed
    limiter.cancel(reservation)
    assert limiter.reserve("alice", "10.0.0.1").allowed


def test_limiter_reservations_are_atomic_across_threads():
    limiter = _limiter(FakeClock(), per_account=5)
    results: list[bool] = []
    barrier = threading.Barrier(20)

    def attempt():
        barrier.wait()
        results.append(limiter.reserve("root", "10.0.0.9").allowed)

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 5 and results.count(False) == 15


def test_limiter_budgets_per_address_and_globally():
    clock = FakeClock()
    limiter = _limiter(clock, per_account=100, per_address=4, global_limit=6)
    for i in range(4):
        assert limiter.reserve(f"random{i}", "10.0.0.1").allowed
    assert not limiter.reserve("random-new", "10.0.0.1").allowed  # one address, many names
    assert limiter.reserve("x1", "10.0.0.2").allowed  # global: 5 failures
    assert limiter.reserve("x2", "10.0.0.3").allowed  # global: 6 failures, the budget is spent
    assert not limiter.reserve("x3", "10.0.0.2").allowed  # an address with failures is refused
    assert limiter.reserve("admin", "10.0.0.50").allowed  # an address without failures is not


def test_limiter_tracks_a_bounded_number_of_keys():
    windows = MemoryWindows(max_keys=10, clock=FakeClock())
    limiter = LoginLimiter(windows, per_account=1, per_address=1000, global_limit=10**6, window_s=60)
    for i in range(100):
        limiter.reserve(f"user{i}", "ip")
    assert len(windows._windows) == 10


def test_quota_refuses_past_the_limit_until_the_window_passes():
    clock = FakeClock()
    quota = Quota(MemoryWindows(clock=clock), limit=10, window_s=60)
    assert quota.take("alice", 8) == 0
    assert quota.take("alice", 3) == 60  # over: nothing spent
    assert quota.take("alice", 2) == 0
    assert quota.take("alice") == 60
    assert quota.take("bob", 10) == 0  # per user
    clock.now += 60
    assert quota.take("alice", 10) == 0
    assert Quota(MemoryWindows(clock=clock), limit=0, window_s=60).take("alice", 10**6) == 0  # off


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.7", None, "203.0.113.7"),
        ("203.0.113.7", "1.2.3.4", "203.0.113.7"),  # not a trusted proxy: the header is ignored
        ("10.1.0.5", "198.51.100.9", "198.51.100.9"),
        ("10.1.0.5", "6.6.6.6, 198.51.100.9", "198.51.100.9"),  # the client's own entries are ignored
        ("10.1.0.5", "198.51.100.9, 10.1.0.4", "198.51.100.9"),  # chained trusted proxies
        ("10.1.0.5", "not-an-ip", "10.1.0.5"),
        ("10.1.0.5", None, "10.1.0.5"),
    ],
)
def test_client_address_believes_forwarded_for_only_from_trusted_proxies(peer, forwarded, expected):
    assert client_address(peer, forwarded, parse_networks(["10.1.0.0/16"])) == expected


def _batcher(calls: list[int], fail_on: str | None = None, model: object = "m"):
    gate = threading.Event()

    def predict(m, rows):
        gate.wait(5)  # hold the first batch so that the others queue up behind it
        calls.append(len(rows))
        if fail_on and any(r["designation"] == fail_on for r in rows):
            raise ValueError("bad row")
        return [{"echo": r["designation"]} for r in rows]

    return MicroBatcher(lambda: model, predict, max_rows=64), gate


def test_concurrent_requests_share_predict_calls_and_get_their_own_rows():
    calls: list[int] = []

    async def scenario():
        batcher, gate = _batcher(calls)
        await batcher.start()
        tasks = [asyncio.create_task(batcher.submit([{"designation": f"p{i}"}])) for i in range(20)]
        await asyncio.sleep(0.05)
        gate.set()
        results = await asyncio.gather(*tasks)
        await batcher.stop()
        return results

    results = asyncio.run(scenario())
    assert [rows[0]["echo"] for _, rows in results] == [f"p{i}" for i in range(20)]
    assert sum(calls) == 20 and len(calls) < 20  # batched: fewer predict calls than requests


def test_one_bad_request_does_not_fail_its_batch_neighbours():
    calls: list[int] = []

    async def scenario():
        batcher, gate = _batcher(calls, fail_on="bad")
        await batcher.start()
        names = ["a", "b", "bad", "c"]
        tasks = [asyncio.create_task(batcher.submit([{"designation": n}])) for n in names]
        await asyncio.sleep(0.05)
        gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await batcher.stop()
        return results

    results = asyncio.run(scenario())
    assert isinstance(results[2], ValueError)
    assert [r[1][0]["echo"] for i, r in enumerate(results) if i != 2] == ["a", "b", "c"]


def test_no_model_fails_fast():
    async def scenario():
        batcher = MicroBatcher(lambda: None, lambda m, rows: rows)
        await batcher.start()
        try:
            with pytest.raises(NoModelError):
                await batcher.submit([{"designation": "x"}])
        finally:
            await batcher.stop()

    asyncio.run(scenario())


def _encode(fmt: str, size=(20, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_allowed_formats_are_accepted(fmt):
    checked = check_image(_encode(fmt), max_bytes=100_000, max_pixels=1000)
    assert (checked.format, checked.width, checked.height) == (fmt, 20, 10)
    assert len(checked.sha256) == 64


def test_image_limits_and_formats():
    with pytest.raises(ImageRejected, match="pixels") as info:
        check_image(_encode("PNG", (100, 100)), max_bytes=100_000, max_pixels=9_999)
    assert info.value.status_code == 413
    with pytest.raises(ImageRejected, match="allowed formats: JPEG, PNG, WEBP"):
        check_image(_encode("TIFF"), max_bytes=100_000, max_pixels=1000)
    with pytest.raises(ImageRejected, match="empty"):
        check_image(b"", max_bytes=10, max_pixels=10)
    assert decode_base64("data:image/png;base64,aGVsbG8=", 100) == b"hello"
    assert decode_base64("-_8=", 100) == base64.urlsafe_b64decode("-_8=")  # URL-safe alphabet too


def test_spool_round_trip_skips_a_torn_line(tmp_path):
    spool = Spool(tmp_path)
    row = {"id": "1", "created_at": datetime(2025, 1, 2, tzinfo=UTC), "designation": "é"}
    assert spool.write([("predictions", row), ("feedback", {**row, "id": "2"})]) == 2
    with spool.path.open("a") as fh:
        fh.write('{"table": "predictions", "row": {"id": "3"')  # a crash mid-write
    [path] = spool.files()
    with spool.replaying(path) as records:
        assert records == [("predictions", row), ("feedback", {**row, "id": "2"})]
    assert spool.files() == []


def test_passwords_are_argon2_and_unknown_users_still_verify():
    hashed = hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert verify_password("correct horse battery", hashed)
    assert not verify_password("wrong", hashed)
    assert not verify_password("anything", None)  # verified against the dummy hash
    assert not verify_password("anything", "not-a-hash")


def test_signatures_cover_every_file_and_the_key(tmp_path):
    from rakuten_mlops.lifecycle import signing

    (tmp_path / "artifacts").mkdir()
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    (tmp_path / "artifacts" / "model.joblib").write_bytes(b"\x00weights")
    key = "k" * 32
    signature = signing.sign(tmp_path, key)
    signing.verify(tmp_path, key, signature)
    for bad_key, sig, reason in (
        (key, None, "unsigned"),
        ("other-key-" + "x" * 32, signature, "bad_signature"),
        (key, "md5:abc", "bad_signature"),
    ):
        with pytest.raises(signing.SignatureError) as err:
            signing.verify(tmp_path, bad_key, sig)
        assert err.value.reason == reason
    (tmp_path / "artifacts" / "model.joblib").write_bytes(b"\x00weightz")
    with pytest.raises(signing.SignatureError, match="does not match"):
        signing.verify(tmp_path, key, signature)
    (tmp_path / "artifacts" / "model.joblib").write_bytes(b"\x00weights")
    (tmp_path / "artifacts" / "extra.py").write_text("import os\n")  # an added file counts too
    with pytest.raises(signing.SignatureError):
        signing.verify(tmp_path, key, signature)


def test_spool_drops_what_would_pass_its_byte_bound(tmp_path):
    row = {"id": "x", "created_at": datetime(2026, 1, 1, tzinfo=UTC), "designation": "a" * 400}
    line = len(encode_record(("predictions", row)).encode()) + 1
    spool = Spool(tmp_path, max_bytes=3 * line + line // 2)
    assert spool.write([("predictions", row)] * 10) == 3
    assert spool.dropped == 7 and spool.size() == 3 * line
    assert spool.write([("predictions", row)]) == 0 and spool.dropped == 8


def test_retention_deletes_predictions_and_feedback_older_than_the_limit(tmp_path):
    from datetime import timedelta

    from sqlalchemy import func, select

    from rakuten_mlops.appdb import FeedbackRecord, PredictionRecord, create_schema, make_engine
    from rakuten_mlops.serving.prediction_log import PredictionLog

    engine = make_engine(f"sqlite:///{tmp_path / 'app.db'}")
    create_schema(engine)
    now = datetime.now(UTC)
    plog = PredictionLog(engine, tmp_path / "spool", retention_days=30)
    for i, age in enumerate((40, 31, 29, 1)):
        row = {
            "id": f"p{i}", "created_at": now - timedelta(days=age), "username": "alice", "model_name": "m",
            "model_version": "1", "designation": "x", "description": "", "image_sha256": None,
            "prdtypecode": 10, "probability": 0.5, "top_k": [], "modalities": "text", "latency_ms": 1.0,
        }  # fmt: skip
        plog.add("predictions", row)
        plog.add_feedback(
            {"id": f"f{i}", "created_at": row["created_at"], "prediction_id": f"p{i}", "true_code": 10,
             "username": "alice"},
            correction=False,
        )  # fmt: skip
    assert plog._flush_batch()
    assert plog.purge_expired() == 4
    with engine.connect() as conn:
        for table in (PredictionRecord, FeedbackRecord):
            assert conn.execute(select(func.count()).select_from(table)).scalar() == 2
    assert PredictionLog(engine, tmp_path / "spool", retention_days=0).purge_expired() == 0  # 0: keep
