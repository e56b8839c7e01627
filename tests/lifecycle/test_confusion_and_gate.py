"""Confusion counts for interactive charts, and the gate's comparison kept as version tags."""

from __future__ import annotations

import numpy as np

from rakuten_mlops.lifecycle.evaluation import confusion_counts
from rakuten_mlops.lifecycle.registry import GATE_PREFIX, gate_of


def test_confusion_counts_keep_counts_and_two_examples_per_cell():
    y_true = np.array([10, 10, 10, 40, 40])
    y_pred = np.array([10, 40, 40, 40, 40])
    titles = ["a", "b" * 100, "c", "d", "e"]
    out = confusion_counts(y_true, y_pred, np.array([10, 40, 50]), titles)
    assert out["labels"] == [10, 40, 50] and out["rows"] == 5
    assert out["counts"] == [[1, 2, 0], [0, 2, 0], [0, 0, 0]]
    assert out["examples"]["10->40"] == ["b" * 80, "c"]
    assert "50->50" not in out["examples"]


class _Recorder:
    def __init__(self) -> None:
        self.tags: dict[str, str] = {}

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self.tags[key] = value


def test_a_recorded_gate_reads_back_and_a_version_without_one_says_none():
    from rakuten_mlops.lifecycle.registry import record_gate

    c = _Recorder()
    record_gate(c, "m", "3", {  # type: ignore[arg-type]
        "promote": True, "champion_before": "2", "challenger_gold_weighted_f1": 0.81,
        "champion_gold_weighted_f1": 0.8,
        "interval": {"rows": 85, "low": -0.002, "high": 0.03, "level": 0.95},
        "reasons": ["gold weighted F1 0.8100 > champion 0.8000 + min_gain 0.0"],
    })  # fmt: skip
    assert all(k.startswith(GATE_PREFIX) for k in c.tags)
    gate = gate_of({**c.tags, "promotion.decision": "rolled back to v2"})
    assert gate is not None
    assert (gate["verdict"], gate["challenger_f1"], gate["champion_f1"]) == ("passed", 0.81, 0.8)
    assert (gate["champion_version"], gate["gold_rows"], gate["gain_low"]) == ("2", 85, -0.002)
    assert gate_of({"promotion.decision": "manual"}) is None
