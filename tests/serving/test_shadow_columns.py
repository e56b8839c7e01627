"""An app database from before shadow predictions gets the `shadow` and `shadow_of` columns in place."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from rakuten_mlops.appdb import create_schema, make_engine
from rakuten_mlops.serving.prediction_log import PredictionLog

OLD_PREDICTIONS = """
CREATE TABLE predictions (
    id VARCHAR(36) PRIMARY KEY, created_at DATETIME, username VARCHAR(64), model_name VARCHAR(255),
    model_version VARCHAR(64), designation TEXT, description TEXT, image_sha256 VARCHAR(64),
    prdtypecode INTEGER, probability FLOAT, top_k JSON, modalities VARCHAR(16), latency_ms FLOAT
)"""


def test_old_prediction_log_gains_the_shadow_columns(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'app.db'}")
    with engine.begin() as conn:
        conn.execute(text(OLD_PREDICTIONS))
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
        assert conn.execute(text("SELECT shadow, shadow_of FROM predictions")).one() == (0, None)
    plog = PredictionLog(engine, tmp_path / "spool")
    assert plog.owner_of("p1") == "alice"  # an old row is a served prediction
    create_schema(engine)  # a second start changes nothing
    engine.dispose()
