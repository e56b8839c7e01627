"""The promotion gate: a challenger takes `champion` only when it is better on the gold set.

"Better" is strict: the challenger's gold weighted F1 must exceed the champion's plus
`min_gain`; an equal score never replaces the champion (no churn between equivalent models).
The decision also states a paired bootstrap interval of the F1 difference on the gold rows,
so a reader sees how much of the gain is noise of the gold sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rakuten_mlops.config import PromotionParams

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_LEVEL = 0.95


def weighted_f1_resampled(
    y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray, idx: np.ndarray
) -> np.ndarray:
    """Weighted F1 of each resample (rows `idx[r]`), as sklearn's ``f1_score(average="weighted")``."""
    k = len(labels)
    code = {c: i for i, c in enumerate(labels)}
    t = np.array([code.get(v, -1) for v in y_true])
    p = np.array([code.get(v, -1) for v in y_pred])
    out = np.empty(len(idx))
    for r, rows in enumerate(idx):
        tr, pr = t[rows], p[rows]
        support = np.bincount(tr[tr >= 0], minlength=k)
        predicted = np.bincount(pr[pr >= 0], minlength=k)
        hit = tr == pr
        tp = np.bincount(tr[hit & (tr >= 0)], minlength=k)
        denom = support + predicted
        f1 = np.divide(2 * tp, denom, out=np.zeros(k), where=denom > 0)
        out[r] = float((f1 * support).sum() / support.sum()) if support.sum() else 0.0
    return out


def bootstrap_gain_interval(
    y_true: np.ndarray,
    challenger_pred: np.ndarray,
    champion_pred: np.ndarray | None,
    labels: np.ndarray,
    seed: int,
    resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = BOOTSTRAP_LEVEL,
) -> dict[str, Any]:
    """Percentile bootstrap interval of the gold weighted F1 (or of challenger − champion, paired).

    Both models are scored on the same resampled rows, so the interval of the difference
    leaves out the variation that the two share.
    """
    y_true = np.asarray(y_true)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y_true), size=(resamples, len(y_true)))
    values = weighted_f1_resampled(y_true, np.asarray(challenger_pred), labels, idx)
    what = "challenger gold weighted F1"
    if champion_pred is not None:
        values = values - weighted_f1_resampled(y_true, np.asarray(champion_pred), labels, idx)
        what = "gold weighted F1 gain over the champion"
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return {
        "of": what,
        "level": level,
        "low": round(float(low), 4),
        "high": round(float(high), 4),
        "resamples": resamples,
        "rows": len(y_true),
    }


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: list[str] = field(default_factory=list)
    challenger_f1: float = 0.0
    champion_f1: float | None = None
    worst_class_drop: tuple[str, float] | None = None
    interval: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "reasons": self.reasons,
            "challenger_gold_weighted_f1": self.challenger_f1,
            "champion_gold_weighted_f1": self.champion_f1,
            "worst_class_drop": list(self.worst_class_drop) if self.worst_class_drop else None,
            "interval": self.interval,
        }


def _interval_reason(interval: dict[str, Any]) -> str:
    return (
        f"{interval['level']:.0%} bootstrap interval of the {interval['of']}: "
        f"[{interval['low']:+.4f}, {interval['high']:+.4f}] ({interval['rows']} gold rows, "
        f"{interval['resamples']} resamples)"
    )


def decide_promotion(
    challenger: dict[str, Any],
    champion: dict[str, Any] | None,
    params: PromotionParams,
    interval: dict[str, Any] | None = None,
) -> Decision:
    """Compare gold-set metrics (`weighted_f1` and `per_class`) of challenger and champion.

    Args:
        challenger: metrics of the new model on the gold set.
        champion: metrics of the current champion on the same gold set, or None if there is none.
        interval: the bootstrap interval (:func:`bootstrap_gain_interval`), stated in the reasons.
    """
    f1 = float(challenger["weighted_f1"])
    stated = [_interval_reason(interval)] if interval else []
    if champion is None:
        if f1 >= params.min_f1:
            return Decision(
                True,
                [f"no champion yet and gold weighted F1 {f1:.4f} ≥ min_f1 {params.min_f1}", *stated],
                f1,
                interval=interval,
            )
        return Decision(
            False,
            [f"no champion yet but gold weighted F1 {f1:.4f} < min_f1 {params.min_f1}", *stated],
            f1,
            interval=interval,
        )

    champ_f1 = float(champion["weighted_f1"])
    reasons: list[str] = []
    needed = champ_f1 + params.min_gain
    gain_ok = f1 > needed  # strict: an equal score keeps the champion
    sign = ">" if gain_ok else "≤"
    reasons.append(f"gold weighted F1 {f1:.4f} {sign} champion {champ_f1:.4f} + min_gain {params.min_gain}")
    reasons.extend(stated)
    judged = {
        code: scores
        for code, scores in challenger["per_class"].items()
        if code in champion["per_class"] and int(scores.get("support", 0)) >= params.min_class_support
    }
    drops = {code: float(champion["per_class"][code]["f1"]) - float(s["f1"]) for code, s in judged.items()}
    worst = max(drops.items(), key=lambda kv: kv[1]) if drops else None
    drop_ok = worst is None or worst[1] <= params.max_class_drop
    if worst is not None:
        sign = "≤" if drop_ok else ">"
        reasons.append(
            f"largest per-class F1 drop {worst[1]:+.4f} (class {worst[0]}) {sign} max_class_drop "
            f"{params.max_class_drop}"
        )
    skipped = len(challenger["per_class"]) - len(judged)
    if skipped:
        reasons.append(
            f"{skipped} classes with fewer than {params.min_class_support} gold rows "
            "not judged by the class-drop rule"
        )
    return Decision(gain_ok and drop_ok, reasons, f1, champ_f1, worst, interval)
