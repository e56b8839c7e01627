"""The promotion gate: a challenger takes `champion` only when it is better on the gold set."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rakuten_mlops.config import PromotionParams


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: list[str] = field(default_factory=list)
    challenger_f1: float = 0.0
    champion_f1: float | None = None
    worst_class_drop: tuple[str, float] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "reasons": self.reasons,
            "challenger_gold_weighted_f1": self.challenger_f1,
            "champion_gold_weighted_f1": self.champion_f1,
            "worst_class_drop": list(self.worst_class_drop) if self.worst_class_drop else None,
        }


def decide_promotion(
    challenger: dict[str, Any], champion: dict[str, Any] | None, params: PromotionParams
) -> Decision:
    """Compare gold-set metrics (`weighted_f1` and `per_class`) of challenger and champion.

    Args:
        challenger: metrics of the new model on the gold set.
        champion: metrics of the current champion on the same gold set, or None if there is none.
    """
    f1 = float(challenger["weighted_f1"])
    if champion is None:
        if f1 >= params.min_f1:
            return Decision(
                True, [f"no champion yet and gold weighted F1 {f1:.4f} ≥ min_f1 {params.min_f1}"], f1
            )
        return Decision(
            False, [f"no champion yet but gold weighted F1 {f1:.4f} < min_f1 {params.min_f1}"], f1
        )

    champ_f1 = float(champion["weighted_f1"])
    reasons: list[str] = []
    needed = champ_f1 + params.min_gain
    gain_ok = f1 >= needed
    sign = "≥" if gain_ok else "<"
    reasons.append(f"gold weighted F1 {f1:.4f} {sign} champion {champ_f1:.4f} + min_gain {params.min_gain}")
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
    return Decision(gain_ok and drop_ok, reasons, f1, champ_f1, worst)
