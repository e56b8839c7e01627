"""The promotion gate: better on gold and no class collapses, or no promotion."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

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


def test_an_equal_score_never_replaces_the_champion() -> None:
    same = metrics(0.8498, {"10": 0.8, "40": 0.9})
    d = decide_promotion(
        same, metrics(0.8498, {"10": 0.8, "40": 0.9}), P.model_copy(update={"min_gain": 0.0})
    )
    assert not d.promote
    assert "0.8498 ≤ champion 0.8498" in d.reasons[0]


def test_the_decision_states_the_bootstrap_interval_of_the_gain() -> None:
    from rakuten_mlops.lifecycle.promotion import bootstrap_gain_interval

    rng = np.random.default_rng(0)
    labels = np.array([10, 40, 50])
    y = rng.choice(labels, size=300)
    champion = np.where(rng.random(300) < 0.7, y, rng.choice(labels, size=300))
    challenger = np.where(rng.random(300) < 0.9, y, champion)  # fixes most of the champion's errors
    interval = bootstrap_gain_interval(y, challenger, champion, labels, seed=1)
    gain = f1_score(y, challenger, average="weighted") - f1_score(y, champion, average="weighted")
    assert 0 < interval["low"] < gain < interval["high"]
    assert interval["of"] == "gold weighted F1 gain over the champion" and interval["rows"] == 300
    same = bootstrap_gain_interval(y, champion, champion, labels, seed=1)
    assert same["low"] == same["high"] == 0.0
    d = decide_promotion(metrics(0.9, {"10": 0.9}), metrics(0.8, {"10": 0.8}), P, interval)
    assert d.interval == interval and "95% bootstrap interval of the gold weighted F1 gain" in d.reasons[1]


def test_resampled_weighted_f1_matches_sklearn() -> None:
    from rakuten_mlops.lifecycle.promotion import weighted_f1_resampled

    rng = np.random.default_rng(2)
    labels = np.array([1, 2, 3, 4])
    y, pred = rng.choice(labels, size=200), rng.choice(labels, size=200)
    idx = rng.integers(0, 200, size=(5, 200))
    ours = weighted_f1_resampled(y, pred, labels, idx)
    theirs = [f1_score(y[r], pred[r], labels=labels, average="weighted", zero_division=0) for r in idx]
    assert np.allclose(ours, theirs)
