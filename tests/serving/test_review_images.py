"""The review queue shows the image of a low-confidence listing: the prediction log keeps a small JPEG
thumbnail of it (once per image), the admin route serves it, and the retention purge deletes it."""

from __future__ import annotations

import io
import time
from datetime import timedelta

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import create_engine, text

from rakuten_mlops.appdb import utcnow
from rakuten_mlops.serving.app import create_app
from rakuten_mlops.serving.thumbnails import THUMBNAIL_MAX_BYTES, THUMBNAIL_SIDE

THRESHOLD = 0.5
UNSURE = ["zzq vrk plo", "qwxz", "objet", "lot divers", "article 42", "xx"]
SURE = ["Piscine tubulaire ronde 3 m", "Coussin velours 40x40 bleu", "Figurine Dragon Ball Goku"]


def _jpeg(seed: int, size: tuple[int, int] = (500, 400)) -> bytes:
    """A photo-like JPEG (noise on a gradient: hard to compress, as real photos are)."""
    rng = np.random.default_rng(seed)
    gradient = np.linspace(0, 200, size[0], dtype=np.float32)[None, :, None]
    pixels = np.clip(gradient + rng.normal(0, 40, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def _predict(client: TestClient, headers: dict[str, str], designation: str, image: bytes | None) -> dict:
    files = {"image": ("photo.jpg", image, "image/jpeg")} if image is not None else None
    r = client.post("/v1/predict", data={"designation": designation}, files=files, headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _first(
    client: TestClient, headers: dict[str, str], titles: list[str], low: bool, image: bytes | None
) -> tuple[str, dict]:
    """(title, answer) of the first listing of `titles` under the threshold (`low`) or not."""
    for title in titles:
        answer = _predict(client, headers, title, image)
        if (answer["probability"] < THRESHOLD) == low:
            return title, answer
    raise AssertionError(f"none of {titles} is {'under' if low else 'over'} {THRESHOLD}")


def _wait_for_images(client: TestClient, headers: dict[str, str], *pids: str) -> dict[str, dict]:
    """The review queue's items once `pids` are all listed with their thumbnail."""
    deadline = time.monotonic() + 30
    while True:  # the writer thread stores predictions, then thumbnails
        items = client.get("/v1/review", params={"limit": 200}, headers=headers).json()["items"]
        listed = {i["prediction_id"]: i for i in items}
        if all(pid in listed and listed[pid]["has_image"] for pid in pids):
            return listed
        assert time.monotonic() < deadline, items
        time.sleep(0.05)


def _rows(url: str, sql: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, kit) -> str | None:
    if request.param == "sqlite":
        return None  # the default: a SQLite file under the app home
    return str(kit.pg_url(request.getfixturevalue("pg_schema")))


def test_low_confidence_listing_keeps_a_thumbnail_served_to_admins_only(
    make_settings, kit, tmp_path, database_url
):
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump({"monitoring": {"review": {"confidence_below": THRESHOLD}}}))
    settings = make_settings(params_path=params_path, predict_quota_per_minute=0, database_url=database_url)
    kit.add_user(settings, "alice")
    kit.add_user(settings, "root", "admin")
    photo, other_photo = _jpeg(1), _jpeg(2)
    with TestClient(create_app(settings)) as client:
        alice = kit.bearer(kit.login(client, "alice"))
        root = kit.bearer(kit.login(client, "root"))
        _, textual = _first(client, alice, UNSURE, low=True, image=None)
        _, sure = _first(client, alice, SURE, low=False, image=other_photo)
        title, unsure = _first(client, alice, UNSURE, low=True, image=photo)
        again = _predict(client, alice, title, photo)  # the same listing and image once more

        listed = _wait_for_images(client, root, unsure["prediction_id"], again["prediction_id"])
        assert (
            listed[unsure["prediction_id"]]["image_sha256"] == listed[again["prediction_id"]]["image_sha256"]
        )
        r = client.get(f"/v1/review/{unsure['prediction_id']}/image", headers=root)
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert len(r.content) <= THUMBNAIL_MAX_BYTES and len(r.content) < len(photo)
        with Image.open(io.BytesIO(r.content)) as thumb:
            thumb.load()
            assert thumb.format == "JPEG" and thumb.size == (
                THUMBNAIL_SIDE,
                round(THUMBNAIL_SIDE * 400 / 500),
            )

        assert client.get("/v1/review", headers=root).json()["images_kept"] is True
        assert listed[textual["prediction_id"]]["has_image"] is False
        assert sure["prediction_id"] not in listed

        confident = client.get(f"/v1/review/{sure['prediction_id']}/image", headers=root)
        assert confident.status_code == 404 and "no thumbnail kept" in confident.json()["detail"]
        no_image = client.get(f"/v1/review/{textual['prediction_id']}/image", headers=root)
        assert no_image.status_code == 404 and "without an image" in no_image.json()["detail"]
        unknown = client.get("/v1/review/00000000-0000-4000-8000-000000000000/image", headers=root)
        assert unknown.status_code == 404 and "no prediction with id" in unknown.json()["detail"]
        assert client.get("/v1/review/not-a-uuid/image", headers=root).status_code == 422
        forbidden = client.get(f"/v1/review/{unsure['prediction_id']}/image", headers=alice)
        assert forbidden.status_code == 403 and "admin" in forbidden.json()["detail"]
        assert client.get(f"/v1/review/{unsure['prediction_id']}/image").status_code == 401

        plog = client.app.state.serving.prediction_log  # type: ignore[attr-defined]
        url = plog.engine.url.render_as_string(hide_password=False)
        assert _rows(url, "SELECT COUNT(*) FROM review_images") == [(1,)]  # the image is kept once

        # Retention: a thumbnail stays while an unlabelled low-confidence prediction uses it.
        old = utcnow() - timedelta(hours=2)
        with plog.engine.begin() as conn:
            conn.execute(text("UPDATE review_images SET created_at = :old"), {"old": old})
        assert plog.purge_review_images() == 0
        label = {"prediction_id": unsure["prediction_id"], "true_code": 2583}
        assert client.post("/v1/feedback", json=label, headers=root).status_code == 202
        assert plog.purge_review_images() == 0  # the same image is still listed with `again`
        label = {"prediction_id": again["prediction_id"], "true_code": 2583}
        assert client.post("/v1/feedback", json=label, headers=root).status_code == 202
        assert plog.purge_review_images() == 1  # every prediction using it is labelled
        gone = client.get(f"/v1/review/{unsure['prediction_id']}/image", headers=root)
        assert gone.status_code == 404 and "no thumbnail kept" in gone.json()["detail"]


def test_thumbnails_follow_the_queue_window(make_settings, kit, tmp_path):
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump({"monitoring": {"review": {"confidence_below": THRESHOLD}}}))
    settings = make_settings(params_path=params_path, predict_quota_per_minute=0, review_image_days=3)
    kit.add_user(settings, "alice")
    kit.add_user(settings, "root", "admin")
    with TestClient(create_app(settings)) as client:
        alice = kit.bearer(kit.login(client, "alice"))
        root = kit.bearer(kit.login(client, "root"))
        _, unsure = _first(client, alice, UNSURE, low=True, image=_jpeg(3, (120, 300)))
        _wait_for_images(client, root, unsure["prediction_id"])
        plog = client.app.state.serving.prediction_log  # type: ignore[attr-defined]
        with plog.engine.begin() as conn:
            conn.execute(
                text("UPDATE review_images SET created_at = :t"), {"t": utcnow() - timedelta(hours=2)}
            )
            conn.execute(text("UPDATE predictions SET created_at = :t"), {"t": utcnow() - timedelta(days=2)})
        assert plog.purge_review_images() == 0  # still within the 3 days
        with plog.engine.begin() as conn:
            conn.execute(text("UPDATE predictions SET created_at = :t"), {"t": utcnow() - timedelta(days=4)})
        assert plog.purge_review_images() == 1


def test_thumbnails_not_kept_are_counted_on_metrics(make_settings, kit, tmp_path, monkeypatch):
    from rakuten_mlops.serving import prediction_log

    monkeypatch.setattr(prediction_log, "PENDING_IMAGE_BYTES", 10)  # no image fits: each one is dropped
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump({"monitoring": {"review": {"confidence_below": THRESHOLD}}}))
    settings = make_settings(params_path=params_path, predict_quota_per_minute=0)
    kit.add_user(settings, "alice")
    with TestClient(create_app(settings)) as client:
        alice = kit.bearer(kit.login(client, "alice"))
        metric = "rakuten_review_images_dropped "
        before = [line for line in client.get("/metrics").text.splitlines() if line.startswith(metric)]
        assert before == [metric + "0.0"]
        _first(client, alice, UNSURE, low=True, image=_jpeg(4))
        after = [line for line in client.get("/metrics").text.splitlines() if line.startswith(metric)]
        assert after and float(after[0].split()[1]) >= 1
