"""Live quality from feedback: weighted F1 and accuracy per model version over a sliding window."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import f1_score

from rakuten_mlops.config import Params
from rakuten_mlops.monitoring.live import live_metrics
from rakuten_mlops.pipelines.monitoring import live_performance
from rakuten_mlops.pipelines.monitoring_live import (
    class_share_over_time,
    live_f1_over_time,
    read_feedback,
)
from tests.helpers import make_settings

NOW = dt.datetime(2024, 3, 10, 12, 0, tzinfo=dt.UTC)


def _feedback(rows: list[tuple[str, str, int, int, float]]) -> pd.DataFrame:
    """(prediction_id, version, predicted, true, hours ago)."""
    return pd.DataFrame(
        [(pid, v, p, t, NOW - dt.timedelta(hours=h)) for pid, v, p, t, h in rows],
        columns=["prediction_id", "model_version", "predicted_code", "true_code", "time"],
    )


def test_known_feedback_gives_known_scores() -> None:
    rows = [
        ("a", "1", 10, 10, 1), ("b", "1", 10, 40, 1), ("c", "1", 40, 40, 2), ("d", "1", 2583, 2583, 3),
        ("e", "2", 10, 10, 1), ("f", "2", 40, 40, 1),
    ]  # fmt: skip
    live = live_metrics(_feedback(rows), now=NOW, window_days=7)
    v1 = live["versions"]["1"]
    assert v1["n"] == 4
    assert v1["accuracy"] == pytest.approx(0.75)
    # By hand: class 10 F1 = 2/3 (1 of 1 true, 1 of 2 predicted), class 40 F1 = 2/3, class 2583 F1 = 1;
    # supports 1, 2, 1 → (2/3 + 2 * 2/3 + 1) / 4 = 0.75.
    assert v1["weighted_f1"] == pytest.approx(0.75)
    assert v1["weighted_f1"] == pytest.approx(
        f1_score([10, 40, 40, 2583], [10, 10, 40, 2583], average="weighted")
    )
    assert live["versions"]["2"] == pytest.approx(
        {**live["versions"]["2"], "n": 2, "accuracy": 1.0, "weighted_f1": 1.0}
    )
    assert live["overall"]["n"] == 6


def test_window_and_corrections() -> None:
    rows = [
        ("a", "1", 10, 40, 1),  # corrected below: the last feedback on a prediction wins
        ("a", "1", 10, 10, 0.5),
        ("old", "1", 10, 40, 24 * 8),  # outside the 7-day window
        ("future", "1", 10, 40, -1),  # after `now`: ignored
    ]
    live = live_metrics(_feedback(rows), now=NOW, window_days=7)
    assert live["versions"]["1"]["n"] == 1
    assert live["versions"]["1"]["accuracy"] == 1.0
    assert live_metrics(_feedback(rows[:2]), now=NOW, window_days=7, max_feedback=1)["overall"]["n"] == 1


def test_no_feedback() -> None:
    live = live_metrics(_feedback([]), now=NOW)
    assert live["versions"] == {} and live["overall"]["n"] == 0 and live["overall"]["weighted_f1"] is None


def test_reads_the_serving_database(tmp_path: Path, params: Params) -> None:
    from rakuten_mlops.appdb import (
        FeedbackRecord,
        PredictionRecord,
        create_schema,
        make_engine,
        session_factory,
        session_scope,
    )

    url = f"sqlite:///{tmp_path / 'app.db'}"
    settings = make_settings(tmp_path / "home", database_url=url)
    assert live_performance(settings, params)["overall"]["n"] == 0  # no tables yet: no error
    engine = make_engine(url)
    create_schema(engine)
    now = dt.datetime.now(dt.UTC)
    with session_scope(session_factory(engine)) as session:
        for i, (pred, true, version) in enumerate(
            [(10, 10, "3"), (40, 10, "3"), (40, 40, "3"), (50, 50, "4")]
        ):
            pid = str(uuid.uuid4())
            session.add(
                PredictionRecord(
                    id=pid,
                    created_at=now - dt.timedelta(minutes=10),
                    username="u",
                    model_name="m",
                    model_version=version,
                    designation=f"t{i}",
                    description="",
                    image_sha256=None,
                    prdtypecode=pred,
                    probability=0.9,
                    top_k=[],
                    modalities="text",
                    latency_ms=1.0,
                )
            )
            session.add(
                FeedbackRecord(
                    id=str(uuid.uuid4()), created_at=now, prediction_id=pid, true_code=true, username="u"
                )
            )
    engine.dispose()
    frame = read_feedback(url, now - dt.timedelta(days=1), 100)
    assert len(frame) == 4 and set(frame["model_version"]) == {"3", "4"}
    live = live_performance(settings, params)
    assert live["versions"]["3"]["n"] == 3
    assert live["versions"]["3"]["accuracy"] == pytest.approx(2 / 3)
    assert live["versions"]["4"]["weighted_f1"] == 1.0
    assert (settings.home / "monitoring" / "live" / "latest.json").is_file()


def test_live_f1_and_class_share_are_bucketed_by_hour_over_short_spans():
    t0 = pd.Timestamp("2025-03-01 10:05", tz="UTC")
    feedback = pd.DataFrame(
        {
            "prediction_id": ["a", "b", "c", "a"],
            "model_version": ["1", "1", "1", "1"],
            "predicted_code": [10, 40, 10, 10],
            "true_code": [40, 40, 10, 10],  # the later feedback on "a" corrects the first one
            "time": [t0, t0, t0 + pd.Timedelta(hours=1), t0 + pd.Timedelta(minutes=5)],
        }
    )
    live = live_f1_over_time(feedback)
    assert list(live["n"]) == [2, 1]
    assert list(live["weighted_f1"]) == [1.0, 1.0]
    predictions = pd.DataFrame({"predicted_code": [10, 10, 40], "time": [t0, t0, t0 + pd.Timedelta(hours=1)]})
    share = class_share_over_time(predictions)
    assert share.to_dict("list")["share"] == [1.0, 1.0]
    assert list(share["code"]) == [10, 40]
    assert live_f1_over_time(feedback.iloc[0:0]).empty and class_share_over_time(predictions.iloc[0:0]).empty
