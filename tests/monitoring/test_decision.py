"""Every branch of the retrain decision."""

from __future__ import annotations

import pytest

from rakuten_mlops.config import DecisionParams
from rakuten_mlops.monitoring.decision import decide_retrain

P = DecisionParams(
    max_drift_share=0.3,
    min_live_f1=0.6,
    min_feedback=50,
    min_new_labelled_rows=100,
    refresh_fraction=1.0,
    critical_columns=["predicted_code"],
)
CALM = {"drift_share": 0.1, "drifted_columns": ["title_length"]}
DRIFT = {"drift_share": 0.5, "drifted_columns": ["text", "language", "label"]}


def _decide(**kw: object):
    args = {"drift": CALM, "live_f1": 0.8, "live_n": 500, "new_labelled_rows": 300, "training_rows": 1000}
    return decide_retrain(P, **{**args, **kw})  # type: ignore[arg-type]


def test_nothing_to_do() -> None:
    d = _decide()
    assert not d.retrain and d.label == "skip"
    assert d.reasons[0].startswith("no reason to retrain")
    assert "drift share 0.10 < 0.30" in d.reasons[0]


def test_drift_share_triggers() -> None:
    d = _decide(drift=DRIFT)
    assert d.retrain
    assert d.reasons == [
        "drift share 0.50 ≥ 0.30 (drifted: text, language, label)",
        "300 new labelled rows ≥ 100",
    ]


def test_critical_column_triggers_alone() -> None:
    d = _decide(drift={"drift_share": 0.1, "drifted_columns": ["predicted_code"]})
    assert d.retrain and "critical columns drifted: predicted_code" in d.reasons


def test_low_live_f1_triggers() -> None:
    d = _decide(live_f1=0.42)
    assert d.retrain and any("live weighted F1 0.420 < 0.600 on 500 feedback rows" in r for r in d.reasons)


def test_live_f1_on_too_little_feedback_is_not_judged() -> None:
    d = _decide(live_f1=0.1, live_n=10)
    assert not d.retrain and "live F1 not judged: 10 feedback rows < 50" in d.reasons[0]


def test_much_new_data_triggers_a_refresh() -> None:
    d = _decide(new_labelled_rows=1200)
    assert d.retrain and any("120% of the training data" in r for r in d.reasons)


def test_a_trigger_without_enough_new_data_does_not_retrain() -> None:
    d = _decide(drift=DRIFT, new_labelled_rows=20)
    assert not d.retrain
    assert d.reasons[0] == "not enough new data to retrain: 20 new labelled rows < 100"
    assert d.reasons[1].startswith("would retrain: drift share 0.50")


def test_same_data_already_tried() -> None:
    d = _decide(drift=DRIFT, already_tried="data version abc gave version 2, not promoted")
    assert not d.retrain and d.reasons[0].startswith("already retrained on this data")


def test_no_drift_report_and_no_training_size() -> None:
    d = _decide(drift=None, training_rows=None)
    assert not d.retrain
    names = [c.name for c in d.checks]
    assert "new_data_fraction" not in names
    assert d.as_dict()["checks"][0] == {
        "name": "drift_share",
        "value": None,
        "threshold": 0.3,
        "triggered": False,
        "detail": "no drift report",
    }


@pytest.mark.parametrize("share", [0.3, 0.31])
def test_threshold_is_inclusive(share: float) -> None:
    assert _decide(drift={"drift_share": share, "drifted_columns": []}).retrain
