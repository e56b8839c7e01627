"""The new SQL of the safe rollout on both databases: the shadow columns added in place to an old
prediction log, the review queue and the shadow pairs read back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import insert, inspect, text

from rakuten_mlops.appdb import FeedbackRecord, PredictionRecord, create_schema, make_engine
from rakuten_mlops.pipelines.monitoring_shadow import read_shadow_pairs
from rakuten_mlops.serving.prediction_log import PredictionLog
from rakuten_mlops.serving.review import review_queue

OLD_PREDICTIONS = """
CREATE TABLE predictions (
    id VARCHAR(36) PRIMARY KEY, created_at {time}, username VARCHAR(64), model_name VARCHAR(255),
    model_version VARCHAR(64), designation TEXT, description TEXT, image_sha256 VARCHAR(64),
    prdtypecode INTEGER, probability FLOAT, top_k JSON, modalities VARCHAR(16), latency_ms FLOAT
)"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path: Path, kit) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'app.db'}"
    return str(kit.pg_url(request.getfixturevalue("pg_schema")))


def _row(pid: str, probability: float, version: str = "1", shadow_of: str | None = None) -> dict:
    return {
        "id": pid, "created_at": dt.datetime.now(dt.UTC), "username": "alice", "model_name": "m",
        "model_version": version, "designation": f"listing {pid}", "description": "", "image_sha256": None,
        "prdtypecode": 2583, "probability": probability, "top_k": [], "modalities": "text", "latency_ms": 1.0,
        "shadow": shadow_of is not None, "shadow_of": shadow_of,
    }  # fmt: skip


def test_old_prediction_log_gains_the_shadow_columns(database_url: str) -> None:
    engine = make_engine(database_url)
    timestamp = "TIMESTAMP WITH TIME ZONE" if engine.dialect.name == "postgresql" else "DATETIME"
    with engine.begin() as conn:
        conn.execute(text(OLD_PREDICTIONS.format(time=timestamp)))
        conn.execute(
            text(
                "INSERT INTO predictions VALUES ('p1', '2026-01-01 00:00:00', 'alice', 'm', '1', "
                "'Piscine', '', NULL, 2583, 0.9, '[]', 'text', 1.0)"
            )
        )
    create_schema(engine)
    columns = {c["name"] for c in inspect(engine).get_columns("predictions")}
    assert {"shadow", "shadow_of"} <= columns
    indexed = {tuple(i["column_names"]) for i in inspect(engine).get_indexes("predictions")}
    assert ("shadow",) in indexed and ("shadow_of",) in indexed
    with engine.connect() as conn:
        shadow, shadow_of = conn.execute(text("SELECT shadow, shadow_of FROM predictions")).one()
    assert not shadow and shadow_of is None
    assert PredictionLog(engine, Path("/nonexistent-spool")).owner_of("p1") == "alice"  # a served prediction
    create_schema(engine)  # a second start changes nothing
    engine.dispose()


def test_review_queue_and_shadow_pairs(database_url: str) -> None:
    engine = make_engine(database_url)
    create_schema(engine)
    rows = [
        _row("low-unlabelled", 0.2), _row("low-labelled", 0.3), _row("confident", 0.9),
        _row("shadow-of-low", 0.1, version="2", shadow_of="low-unlabelled"),
        _row("shadow-of-labelled", 0.8, version="2", shadow_of="low-labelled"),
    ]  # fmt: skip
    label = {"id": "f1", "created_at": dt.datetime.now(dt.UTC), "prediction_id": "low-labelled",
             "true_code": 10, "username": "root", "kind": "label"}  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(PredictionRecord.__table__), rows)
        conn.execute(insert(FeedbackRecord.__table__), [label])
    total, items = review_queue(engine, threshold=0.5, days=1, limit=10, offset=0)
    assert total == 1 and [i["prediction_id"] for i in items] == ["low-unlabelled"]
    assert PredictionLog(engine, Path("/nonexistent-spool")).owner_of("shadow-of-low") is None
    engine.dispose()
    pairs = read_shadow_pairs(database_url, dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    by_id = pairs.set_index("shadow_id")
    assert set(by_id.index) == {"shadow-of-low", "shadow-of-labelled"}
    assert by_id.loc["shadow-of-labelled", "true_code"] == 10  # the label of the champion's prediction
    assert pd.isna(by_id.loc["shadow-of-low", "true_code"])
    assert set(by_id["champion_version"]) == {"1"} and set(by_id["challenger_version"]) == {"2"}
