"""Response bodies of the read-only routes the web UI uses: registry versions, monitoring, training data."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

# ------------------------------------------------------------------ registry


class ClassF1(BaseModel):
    code: int
    f1: float


class VersionOut(BaseModel):
    """One registered version: its aliases, when it was registered, its run's metrics and its tags."""

    version: str
    aliases: list[str]
    created_at: datetime | None = Field(description="registration time (UTC)")
    tags: dict[str, str] = Field(description="modalities, promotion.decision, promotion.reasons, ...")
    metrics: dict[str, float] = Field(description="the metrics logged with the version's training run")


class VersionsOut(BaseModel):
    model_name: str
    registry: str = Field(description="where the registry lives, password removed")
    total: int = Field(description="registered versions in all (the page may hold fewer)")
    champion: str | None = Field(description="the version holding the champion alias")
    versions: list[VersionOut] = Field(description="newest first")


class VersionDetailOut(VersionOut):
    per_class_f1: list[ClassF1] = Field(description="test-set F1 of each class, lowest first")
    confusion_matrix: str | None = Field(
        description="artifact path of the confusion-matrix image (GET .../confusion.png), None if not logged"
    )


# ------------------------------------------------------------------ monitoring


class DriftReportsOut(BaseModel):
    total: int = Field(description="drift report folders in all")
    reports: list[dict[str, Any]] = Field(
        description="each report's summary.json, newest first, with `id` and `has_html` added"
    )


class LiveF1Point(BaseModel):
    time: datetime
    model_version: str
    weighted_f1: float
    n: int


class ClassSharePoint(BaseModel):
    time: datetime
    code: int
    rows: int
    share: float


class LiveOut(BaseModel):
    latest: dict[str, Any] | None = Field(description="the last live-quality computation (live/latest.json)")
    window_days: float
    f1_over_time: list[LiveF1Point] = Field(
        description="weighted F1 of the feedback per time bucket and version"
    )
    feedback_rows: int
    feedback_error: str | None = Field(description="why feedback could not be read (app database down)")
    class_share: list[ClassSharePoint] = Field(description="share of each predicted code per time bucket")
    prediction_rows: int
    predictions_error: str | None


class DecisionsOut(BaseModel):
    decisions: list[dict[str, Any]] = Field(description="retrain decisions, newest first")
    retrains: list[dict[str, Any]] = Field(description="retrain runs, newest first")


# ------------------------------------------------------------------ training data


class DataSourceOut(BaseModel):
    id: str
    label: str
    kind: str = Field(description="pipeline, champion, version (another version's) or streams")
    location: str = Field(description="where the API reads it")


class DataSourcesOut(BaseModel):
    champion: str | None
    pipeline_version: str | None = Field(description="version the last pipeline run registered")
    sources: list[DataSourceOut]


class ClassCount(BaseModel):
    code: int
    rows: int
    share: float


class LengthBand(BaseModel):
    field: str
    start: int
    end: int
    listings: int


class DataSummaryOut(BaseModel):
    source: DataSourceOut
    listings: int
    classes: int
    empty_description_share: float
    median_chars: dict[str, float]
    class_counts: list[ClassCount] = Field(description="largest first")
    lengths: list[LengthBand] = Field(description="listings per band of characters, per text field")


class ExampleImage(BaseModel):
    name: str
    caption: str
    base64: str


class ExamplesOut(BaseModel):
    code: int
    rows: list[dict[str, Any]] = Field(description="designation, description, productid, imageid")
    images: list[ExampleImage]
