"""Validated views of the `streams:` and `monitoring:` sections of ``params.yaml``.

`rakuten_mlops.config.Params` keeps both sections as plain dicts; the models here give them
types, defaults and bounds. Unknown keys are errors, as everywhere else in ``params.yaml``.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rakuten_mlops.config import ConfigError, Params


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InjectedDriftParams(_Strict):
    """How strong each kind of injected drift is when a spec names it without a value."""

    class_mix_codes: list[int] = Field(
        default_factory=lambda: [2582, 2583, 2585],
        min_length=1,
        description="codes whose share rises in a class-mix shift (default: a garden-season surge)",
    )
    class_mix_share: float = Field(0.6, gt=0, lt=1, description="share of the batch taken by those codes")
    empty_description_share: float = Field(0.9, gt=0, le=1, description="rows whose description is emptied")
    language_share: float = Field(0.7, gt=0, le=1, description="rows rewritten in another language")
    language: Literal["en", "de"] = "en"
    dark_images_factor: float = Field(0.35, gt=0, lt=1, description="brightness multiplier")
    small_images_factor: float = Field(0.3, gt=0, lt=1, description="side multiplier")


class StreamsParams(_Strict):
    initial_fraction: float = Field(0.5, gt=0, lt=1, description="share of the data kept as the first pool")
    start_date: dt.date = dt.date(2024, 1, 1)
    batch_days: int = Field(1, ge=1, description="days between two batches (metadata only)")
    default_drift: list[str] = Field(
        default_factory=lambda: ["class_mix", "empty_description", "language"],
        description="kinds injected when a drift spec names only batch numbers",
    )
    drift: InjectedDriftParams = InjectedDriftParams()
    dvc: Literal["auto", "never"] = Field(
        "auto", description="auto: `dvc add` the pool when the streams folder is inside a DVC repository"
    )


class DriftParams(_Strict):
    reference_max_rows: int = Field(5000, ge=50, description="reference rows sampled (seeded)")
    current_max_rows: int = Field(5000, ge=50, description="current rows sampled (seeded)")
    prediction_window: int = Field(1000, ge=10, description="rows when current = the last logged predictions")
    # Tests that account for the sampling noise of both sides: two-sample KS for numbers, a
    # chi-square test of homogeneity for categories (calibrated even for sparse classes), and
    # Evidently's domain-classifier text drift judged against the analytic ROC AUC null
    # (`perc_text_content_drift` also works: same classifier, seconds slower per report).
    num_method: str = "ks"
    num_threshold: float = Field(0.01, gt=0, lt=1)
    cat_method: str = "chisquare_homogeneity"
    cat_threshold: float = Field(0.01, gt=0, lt=1)
    text_method: str = "text_domain_auc"
    text_threshold: float = Field(0.99, gt=0, lt=1, description="percentile of a random classifier's ROC AUC")
    text_max_chars: int = Field(500, ge=20)
    drift_share: float = Field(0.3, gt=0, le=1, description="dataset drift when this share of columns drift")
    predictions: bool = Field(True, description="score reference and current with the champion")
    log_to_mlflow: bool = True


class LiveParams(_Strict):
    window_days: float = Field(7.0, gt=0, description="feedback older than this is ignored")
    max_feedback: int = Field(5000, ge=1, description="at most the latest N feedback records")
    refresh_seconds: float = Field(
        60.0, ge=0, description="/metrics recomputes live F1 from the DB when older (0: never)"
    )


class DecisionParams(_Strict):
    max_drift_share: float = Field(0.3, gt=0, le=1, description="retrain when the drift share reaches this")
    critical_columns: list[str] = Field(
        default_factory=list, description="any of these drifting is a reason on its own"
    )
    min_live_f1: float = Field(0.6, ge=0, le=1, description="retrain when the champion's live F1 is below")
    min_feedback: int = Field(50, ge=1, description="live F1 counts only with this much feedback")
    min_new_labelled_rows: int = Field(100, ge=0, description="no retrain without this much new data")
    refresh_fraction: float | None = Field(
        1.0, gt=0, description="retrain anyway when new labelled rows reach this share of the training data"
    )


class MonitoringParams(_Strict):
    drift: DriftParams = DriftParams()
    live: LiveParams = LiveParams()
    decision: DecisionParams = DecisionParams()


def _validate(model: type[_Strict], raw: dict, section: str) -> _Strict:
    try:
        return model.model_validate(raw or {})
    except ValidationError as exc:
        lines = [f"{section}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid params.yaml:\n  " + "\n  ".join(lines)) from exc


def streams_params(params: Params) -> StreamsParams:
    """The validated `streams:` section (ConfigError when invalid)."""
    return _validate(StreamsParams, params.streams, "streams")  # type: ignore[return-value]


def monitoring_params(params: Params) -> MonitoringParams:
    """The validated `monitoring:` section (ConfigError when invalid)."""
    return _validate(MonitoringParams, params.monitoring, "monitoring")  # type: ignore[return-value]
