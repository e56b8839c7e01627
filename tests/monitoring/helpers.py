"""Shared helpers of the monitoring tests."""

from __future__ import annotations

from rakuten_mlops.config import Params


def make_params(**monitoring: object) -> Params:
    """Params without MLflow logging nor champion predictions unless asked (fast unit tests)."""
    drift = {"log_to_mlflow": False, "predictions": False, **monitoring.pop("drift", {})}  # type: ignore[dict-item]
    return Params.model_validate({"monitoring": {"drift": drift, **monitoring}})
