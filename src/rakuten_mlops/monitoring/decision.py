"""The retrain decision: drift share, live F1 and new labelled data against thresholds."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rakuten_mlops.config import DecisionParams


@dataclass(frozen=True)
class Check:
    name: str
    value: float | int | None
    threshold: float | int | None
    triggered: bool
    detail: str


@dataclass(frozen=True)
class RetrainDecision:
    retrain: bool
    reasons: list[str]
    checks: list[Check] = field(default_factory=list)

    @property
    def label(self) -> str:
        return "retrain" if self.retrain else "skip"

    def as_dict(self) -> dict[str, Any]:
        return {
            "retrain": self.retrain,
            "decision": self.label,
            "reasons": self.reasons,
            "checks": [asdict(c) for c in self.checks],
        }


def decide_retrain(
    params: DecisionParams,
    *,
    drift: dict[str, Any] | None,
    live_f1: float | None,
    live_n: int,
    new_labelled_rows: int,
    training_rows: int | None,
    already_tried: str | None = None,
) -> RetrainDecision:
    """Retrain when something calls for it (drift, low live F1, much new data) and enough new data exists.

    Args:
        drift: a drift summary (`drift_share`, `drifted_columns`), or None when none was computed.
        live_f1: the champion's weighted F1 on feedback, None when unknown.
        live_n: feedback rows behind `live_f1`.
        new_labelled_rows: valid labelled rows in the pool that the champion was not trained on.
        training_rows: rows the champion was trained on (for the refresh rule), None when unknown.
        already_tried: set when a retrain on this very data version already ran and its model was
            not promoted: retraining again on the same data would give the same answer.

    Returns:
        The decision; `reasons` say why it retrains, or why it does not.
    """
    checks: list[Check] = []
    if drift is None:
        checks.append(Check("drift_share", None, params.max_drift_share, False, "no drift report"))
    else:
        checks.extend(_drift_checks(params, drift))
    checks.append(_live_check(params, live_f1, live_n))
    if params.refresh_fraction is not None and training_rows:
        ratio = new_labelled_rows / training_rows
        hit = ratio >= params.refresh_fraction
        detail = (
            f"new labelled rows are {ratio:.0%} of the training data "
            f"({'≥' if hit else '<'} {params.refresh_fraction:.0%})"
        )
        checks.append(Check("new_data_fraction", round(ratio, 4), params.refresh_fraction, hit, detail))
    enough = new_labelled_rows >= params.min_new_labelled_rows
    detail = f"{new_labelled_rows} new labelled rows {'≥' if enough else '<'} {params.min_new_labelled_rows}"
    data_check = Check("new_labelled_rows", new_labelled_rows, params.min_new_labelled_rows, enough, detail)
    checks.append(data_check)
    triggers = [c for c in checks if c.triggered and c.name != data_check.name]
    would = [f"would retrain: {c.detail}" for c in triggers]
    if triggers and enough and already_tried:
        return RetrainDecision(False, [f"already retrained on this data: {already_tried}", *would], checks)
    if triggers and enough:
        return RetrainDecision(True, [c.detail for c in triggers] + [data_check.detail], checks)
    if triggers:
        reasons = [f"not enough new data to retrain: {data_check.detail}", *would]
        return RetrainDecision(False, reasons, checks)
    calm = "; ".join(c.detail for c in checks if c.name != data_check.name)
    return RetrainDecision(False, [f"no reason to retrain: {calm}"], checks)


def _drift_checks(params: DecisionParams, drift: dict[str, Any]) -> list[Check]:
    share = float(drift.get("drift_share", 0.0))
    drifted = list(drift.get("drifted_columns", []))
    hit = share >= params.max_drift_share
    detail = (
        f"drift share {share:.2f} {'≥' if hit else '<'} {params.max_drift_share:.2f} "
        f"(drifted: {', '.join(drifted) or 'none'})"
    )
    checks = [Check("drift_share", share, params.max_drift_share, hit, detail)]
    if params.critical_columns:
        critical = [c for c in drifted if c in params.critical_columns]
        detail = (
            f"critical columns drifted: {', '.join(critical)}"
            if critical
            else f"no critical column drifted ({', '.join(params.critical_columns)})"
        )
        checks.append(Check("critical_columns", len(critical), 1, bool(critical), detail))
    return checks


def _live_check(params: DecisionParams, live_f1: float | None, live_n: int) -> Check:
    if live_f1 is None or live_n < params.min_feedback:
        detail = f"live F1 not judged: {live_n} feedback rows < {params.min_feedback}"
        return Check("live_f1", live_f1, params.min_live_f1, False, detail)
    low = live_f1 < params.min_live_f1
    sign = "<" if low else "≥"
    detail = f"live weighted F1 {live_f1:.3f} {sign} {params.min_live_f1:.3f} on {live_n} feedback rows"
    return Check("live_f1", round(live_f1, 4), params.min_live_f1, low, detail)
