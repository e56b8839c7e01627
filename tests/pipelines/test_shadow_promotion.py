"""Promotion from shadow: the live rule on constructed shadow predictions and feedback, both outcomes,
and the comparison it judges (agreement, confidence, class mix, live F1 of both on the same listings)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.metrics import f1_score
from sqlalchemy import insert
from typer.testing import CliRunner

from rakuten_mlops.appdb import FeedbackRecord, PredictionRecord, create_schema, make_engine
from rakuten_mlops.cli import app
from rakuten_mlops.config import Params, PromotionParams, Settings
from rakuten_mlops.infra import read_jsonl
from rakuten_mlops.lifecycle.challenger import decide_from_shadow
from rakuten_mlops.monitoring.shadow import compare_shadow
from rakuten_mlops.pipelines.monitoring_shadow import (
    challenge,
    decisions_log,
    promote_challenger,
    shadow_comparison,
)
from tests.helpers import make_settings

CODES = (10, 40, 50, 60)


def _registry(settings: Settings, tmp_path: Path) -> MlflowClient:
    """Versions 1 (champion) and 2 of the model; the rule never loads them."""
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)
    client.create_registered_model(settings.model_name)
    for v in ("1", "2"):
        (tmp_path / f"m{v}").mkdir()
        client.create_model_version(settings.model_name, str(tmp_path / f"m{v}"))
    client.set_registered_model_alias(settings.model_name, "champion", "1")
    return client


def _log(settings: Settings, n: int, champion_right: int, challenger_right: int, labelled: int) -> list[int]:
    """`n` served listings with a shadow prediction each; the first `labelled` got their true code.

    The champion is right on its first `champion_right` listings, the challenger on its first
    `challenger_right`; a wrong answer is code 2583. Returns the true codes of the labelled rows.
    """
    engine = make_engine(settings.app_database_url)
    create_schema(engine)
    now = dt.datetime.now(dt.UTC)
    served, shadow, feedback, truths = [], [], [], []
    for i in range(n):
        true = CODES[i % len(CODES)]
        sid = str(uuid.uuid4())
        base = {
            "created_at": now - dt.timedelta(minutes=n - i), "username": "alice", "model_name": "m",
            "designation": f"listing {i}", "description": "", "image_sha256": None, "top_k": [],
            "modalities": "text", "latency_ms": 1.0,
        }  # fmt: skip
        champion_code = true if i < champion_right else 2583
        challenger_code = true if i < challenger_right else 2583
        served.append({**base, "id": sid, "model_version": "1", "prdtypecode": champion_code,
                       "probability": 0.8, "shadow": False, "shadow_of": None})  # fmt: skip
        shadow.append({**base, "id": str(uuid.uuid4()), "model_version": "2", "probability": 0.6,
                       "prdtypecode": challenger_code, "shadow": True, "shadow_of": sid})  # fmt: skip
        if i < labelled:
            truths.append(true)
            feedback.append({"id": str(uuid.uuid4()), "created_at": now, "prediction_id": sid,
                             "true_code": true, "username": "root", "kind": "label"})  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(PredictionRecord.__table__), served + shadow)
        if feedback:
            conn.execute(insert(FeedbackRecord.__table__), feedback)
    engine.dispose()
    return truths


@pytest.fixture
def rollout(home: Path, tmp_path: Path) -> tuple[Settings, MlflowClient]:
    settings = make_settings(home)
    client = _registry(settings, tmp_path)
    challenge(settings, "2")
    return settings, client


def test_the_challenger_is_promoted_when_the_live_rule_holds(rollout) -> None:
    settings, client = rollout
    truths = _log(settings, n=60, champion_right=40, challenger_right=60, labelled=60)
    record = promote_challenger(settings, Params())
    assert record["promote"] is True, record["reasons"]
    champion_f1 = f1_score(truths, [t if i < 40 else 2583 for i, t in enumerate(truths)], average="weighted")
    comparison = record["comparison"]
    assert comparison["feedback"] == 60 and comparison["challenger_f1"] == 1.0
    assert comparison["champion_f1"] == pytest.approx(champion_f1, abs=1e-4)
    assert comparison["agreement"] == pytest.approx(40 / 60, abs=1e-4)
    assert any("60 shadow predictions with feedback ≥ shadow_min_feedback 50" in r for r in record["reasons"])
    name = settings.model_name
    assert str(client.get_model_version_by_alias(name, "champion").version) == "2"
    aliases = client.get_registered_model(name).aliases
    assert "challenger" not in aliases
    tags = client.get_model_version(name, "2").tags
    assert tags["promotion.decision"] == "promoted from shadow" and tags["previous_champion"] == "1"
    assert json.loads(tags["shadow.comparison"])["feedback"] == 60
    (logged,) = read_jsonl(decisions_log(settings))
    assert logged["promote"] is True and logged["version"] == "2" and logged["champion_before"] == "1"


def test_a_worse_challenger_stays_in_shadow_and_the_cli_says_why(rollout) -> None:
    settings, client = rollout
    _log(settings, n=60, champion_right=55, challenger_right=30, labelled=60)
    result = CliRunner().invoke(app, ["models", "promote", "--challenger"])
    assert result.exit_code == 1, result.output
    assert "challenger version 2 stays in shadow" in result.output
    assert "live weighted F1" in result.output and " < champion " in result.output
    name = settings.model_name
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    assert str(client.get_model_version_by_alias(name, "challenger").version) == "2"
    tags = client.get_model_version(name, "2").tags
    assert tags["promotion.decision"] == "kept in shadow" and " < champion " in tags["promotion.reasons"]
    (logged,) = read_jsonl(decisions_log(settings))
    assert logged["promote"] is False


def test_too_little_feedback_keeps_the_challenger_in_shadow(rollout) -> None:
    settings, client = rollout
    _log(settings, n=60, champion_right=0, challenger_right=60, labelled=10)
    record = promote_challenger(settings, Params())
    assert record["promote"] is False
    assert "10 shadow predictions with feedback < shadow_min_feedback 50" in record["reasons"]
    assert str(client.get_model_version_by_alias(settings.model_name, "champion").version) == "1"


def test_promoting_without_a_challenger_is_a_clear_error(home: Path, tmp_path: Path) -> None:
    _registry(make_settings(home), tmp_path)
    result = CliRunner().invoke(app, ["models", "promote", "--challenger"])
    assert result.exit_code == 2
    assert "has no challenger" in result.output and "models challenge VERSION" in result.output
    assert "Traceback" not in result.output


def test_the_champion_cannot_be_its_own_challenger(home: Path, tmp_path: Path) -> None:
    _registry(make_settings(home), tmp_path)
    result = CliRunner().invoke(app, ["models", "challenge", "1"])
    assert result.exit_code == 2 and "is the champion" in result.output
    assert CliRunner().invoke(app, ["models", "challenge", "2"]).exit_code == 0
    cleared = CliRunner().invoke(app, ["models", "challenge", "--clear"])
    assert cleared.exit_code == 0 and "was version 2" in cleared.output


def test_live_comparison_is_recorded_with_live_quality(rollout) -> None:
    from rakuten_mlops.pipelines.monitoring import live_performance

    settings, _ = rollout
    _log(settings, n=8, champion_right=8, challenger_right=4, labelled=8)
    live = live_performance(settings, Params())
    shadow = live["shadow"]
    assert shadow["challenger_version"] == "2" and shadow["champion_version"] == "1"
    (comparison,) = shadow["comparisons"]
    assert comparison["predictions"] == 8 and comparison["agreement"] == 0.5
    assert comparison["champion_f1"] == 1.0 and comparison["challenger_f1"] < 1.0
    # The served predictions alone make the champion's live F1; shadow rows are not counted there.
    assert live["versions"]["1"]["n"] == 8 and "2" not in live["versions"]
    assert shadow_comparison(settings, Params())["comparisons"][0]["feedback"] == 8


@pytest.mark.parametrize(
    ("challenger_f1", "feedback", "promote"),
    [(0.79, 50, True), (0.7899, 50, False), (0.95, 49, False), (0.95, 50, True)],
)
def test_the_rule_at_its_boundaries(challenger_f1: float, feedback: int, promote: bool) -> None:
    params = PromotionParams(shadow_min_feedback=50, shadow_f1_tolerance=0.01)
    comparison = {
        "predictions": 100, "agreement": 0.9, "feedback": feedback,
        "challenger_f1": challenger_f1, "champion_f1": 0.80,
    }  # fmt: skip
    assert decide_from_shadow(comparison, params).promote is promote
    assert decide_from_shadow(None, params).reasons == ["no shadow prediction of the challenger yet"]


def test_comparison_of_constructed_pairs() -> None:
    now = pd.Timestamp.now(tz="UTC")
    pairs = pd.DataFrame(
        {
            "shadow_id": ["a", "b", "c", "d"], "time": [now] * 4,
            "challenger_version": ["2"] * 4, "challenger_code": [10, 10, 40, 50],
            "challenger_probability": [0.5, 0.7, 0.9, 0.3], "champion_version": ["1"] * 4,
            "champion_code": [10, 40, 40, 40], "champion_probability": [0.9, 0.9, 0.9, 0.9],
            "true_code": pd.array([10, 10, None, None], dtype="Int64"),
        }
    )  # fmt: skip
    (c,) = compare_shadow(pairs)
    assert c["predictions"] == 4 and c["agreement"] == 0.5
    assert c["challenger_confidence"] == 0.6 and c["champion_confidence"] == 0.9
    assert c["challenger_class_mix"] == {"10": 0.5, "40": 0.25, "50": 0.25}
    assert c["champion_class_mix"] == {"10": 0.25, "40": 0.75}
    assert (
        c["feedback"] == 2
        and c["challenger_f1"] == 1.0
        and c["champion_f1"] == pytest.approx(2 / 3, abs=1e-4)
    )


def test_shadow_rows_stay_out_of_the_served_predictions(rollout) -> None:
    from rakuten_mlops.pipelines.monitoring_live import recent_predictions

    settings, _ = rollout
    _log(settings, n=6, champion_right=6, challenger_right=0, labelled=0)
    recent = recent_predictions(settings.app_database_url)
    assert len(recent) == 6 and set(recent["model_version"]) == {"1"}


def test_monitor_live_prints_the_comparison_and_the_rule(rollout) -> None:
    settings, _ = rollout
    _log(settings, n=8, champion_right=8, challenger_right=4, labelled=8)
    result = CliRunner().invoke(app, ["monitor", "live"])
    assert result.exit_code == 0, result.output
    assert "challenger in shadow (current: 2)" in result.output
    assert "0.500" in result.output and "1.000" in result.output  # agreement; champion's live wF1
    assert "promotion rule: ≥ 50 listings with feedback" in result.output
