"""The promotion gate: better on gold and no class collapses, or no promotion."""

from __future__ import annotations

from rakuten_mlops.config import PromotionParams
from rakuten_mlops.lifecycle.promotion import decide_promotion


def metrics(wf1: float, per_class: dict[str, float]) -> dict[str, object]:
    return {"weighted_f1": wf1, "per_class": {k: {"f1": v, "support": 10} for k, v in per_class.items()}}


P = PromotionParams(min_f1=0.5, min_gain=0.01, max_class_drop=0.05, min_class_support=5)


def test_first_model_needs_min_f1() -> None:
    assert decide_promotion(metrics(0.6, {"10": 0.6}), None, P).promote
    d = decide_promotion(metrics(0.4, {"10": 0.4}), None, P)
    assert not d.promote and "min_f1" in d.reasons[0]


def test_better_challenger_takes_champion() -> None:
    d = decide_promotion(metrics(0.82, {"10": 0.8, "40": 0.84}), metrics(0.80, {"10": 0.8, "40": 0.8}), P)
    assert d.promote and d.champion_f1 == 0.80


def test_worse_or_not_enough_gain_keeps_champion() -> None:
    assert not decide_promotion(metrics(0.79, {"10": 0.8}), metrics(0.80, {"10": 0.8}), P).promote
    d = decide_promotion(metrics(0.805, {"10": 0.8}), metrics(0.80, {"10": 0.8}), P)
    assert not d.promote and "min_gain" in d.reasons[0]


def test_class_collapse_blocks_promotion_despite_gain() -> None:
    d = decide_promotion(metrics(0.9, {"10": 0.95, "40": 0.6}), metrics(0.8, {"10": 0.8, "40": 0.7}), P)
    assert not d.promote
    assert d.worst_class_drop is not None and d.worst_class_drop[0] == "40"
    assert "max_class_drop" in d.reasons[-1]


def test_classes_with_too_few_gold_rows_are_not_judged() -> None:
    challenger = metrics(0.9, {"10": 0.95, "40": 0.0})
    challenger["per_class"]["40"]["support"] = 2  # type: ignore[index]
    d = decide_promotion(challenger, metrics(0.8, {"10": 0.8, "40": 1.0}), P)
    assert d.promote
    assert "1 classes with fewer than 5 gold rows" in d.reasons[-1]
