"""The `challenger` alias beside `champion`, and the live rule that promotes it from shadow.

A challenger answers nobody: the API scores a share of the live requests with it in the
background and logs those predictions as shadow. The live rule (:func:`decide_from_shadow`)
holds when

1. at least ``promotion.shadow_min_feedback`` of its shadow predictions were made on requests
   whose champion prediction got feedback (the true code), and
2. its weighted F1 on those requests is not below the champion's weighted F1 on the very same
   requests by more than ``promotion.shadow_f1_tolerance``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from rakuten_mlops.config import PromotionParams
from rakuten_mlops.lifecycle.registry import RegistryError, get_alias, get_champion

CHALLENGER = "challenger"


def get_challenger(c: MlflowClient, name: str) -> ModelVersion | None:
    """The version holding the `challenger` alias, or None."""
    return get_alias(c, name, CHALLENGER)


def set_challenger(c: MlflowClient, name: str, version: str, reasons: list[str], how: str) -> str | None:
    """Give `challenger` to `version` (never the champion); returns the version that held it before."""
    try:
        c.get_model_version(name, version)
    except MlflowException as exc:
        raise RegistryError(f"model {name!r} has no version {version}") from exc
    champion = get_champion(c, name)
    if champion is not None and str(champion.version) == str(version):
        raise RegistryError(f"version {version} is the champion: a challenger must be another version")
    previous = get_challenger(c, name)
    c.set_registered_model_alias(name, CHALLENGER, version)
    c.set_model_version_tag(name, version, "promotion.decision", how)
    c.set_model_version_tag(name, version, "promotion.reasons", "; ".join(reasons)[:4900])
    return str(previous.version) if previous is not None else None


def clear_challenger(c: MlflowClient, name: str) -> str | None:
    """Remove the `challenger` alias; returns the version that held it (None: there was none)."""
    previous = get_challenger(c, name)
    if previous is None:
        return None
    c.delete_registered_model_alias(name, CHALLENGER)
    return str(previous.version)


@dataclass(frozen=True)
class ShadowDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"promote": self.promote, "reasons": self.reasons}


def decide_from_shadow(comparison: dict[str, Any] | None, params: PromotionParams) -> ShadowDecision:
    """Apply the live rule to one challenger version's comparison (`rakuten_mlops.monitoring.shadow`).

    Args:
        comparison: ``feedback`` (paired rows with a label), ``challenger_f1`` and
            ``champion_f1`` (weighted F1 of each on those rows), or None when the version has
            no shadow prediction yet.
    """
    need = params.shadow_min_feedback
    if not comparison or not comparison.get("predictions"):
        return ShadowDecision(False, ["no shadow prediction of the challenger yet"])
    n = int(comparison.get("feedback") or 0)
    reasons = [
        f"{comparison['predictions']} shadow predictions, agreement with the champion "
        f"{comparison['agreement']:.3f}"
    ]
    if n < need:
        reasons.append(f"{n} shadow predictions with feedback < shadow_min_feedback {need}")
        return ShadowDecision(False, reasons)
    reasons.append(f"{n} shadow predictions with feedback ≥ shadow_min_feedback {need}")
    challenger_f1, champion_f1 = float(comparison["challenger_f1"]), float(comparison["champion_f1"])
    floor = champion_f1 - params.shadow_f1_tolerance
    ok = challenger_f1 >= floor
    sign = "≥" if ok else "<"
    reasons.append(
        f"live weighted F1 {challenger_f1:.4f} {sign} champion {champion_f1:.4f} − shadow_f1_tolerance "
        f"{params.shadow_f1_tolerance} on the same {n} requests"
    )
    return ShadowDecision(ok, reasons)
