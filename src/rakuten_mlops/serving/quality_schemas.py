"""Response bodies of the model-quality routes: what a version measured, the gate's comparison, history."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class ClassScore(BaseModel):
    code: int
    f1: float
    precision: float
    recall: float
    support: int = Field(description="test rows of this class")


class ConfusionOut(BaseModel):
    labels: list[int]
    counts: list[list[int]] = Field(description="rows: true class, columns: predicted class")
    rows: int
    examples: dict[str, list[str]] = Field(description='"true->predicted": up to 2 listing titles')
    artifact: str


class GateOut(BaseModel):
    """The promotion gate's comparison, both scores measured on the same gold rows at gate time."""

    verdict: str = Field(description="passed or rejected")
    challenger_f1: float | None = Field(description="this version's gold weighted F1")
    champion_f1: float | None = Field(description="the champion's, on the same gold rows (None: no champion)")
    champion_version: str | None
    gold_rows: int | None
    gain_low: float | None = Field(description="bootstrap interval of the gain, low end")
    gain_high: float | None
    level: float | None
    reasons: str
    decided_at: str | None


class EvaluationOut(BaseModel):
    version: str
    test_rows: int | None
    gold_rows: int | None
    per_class: list[ClassScore] = Field(description="test-set scores, lowest F1 first")
    confusion: ConfusionOut | None = Field(description="test-set confusion counts (None for older runs)")
    gate: GateOut | None = Field(description="None: the version never met the promotion gate")


class PromotionEventOut(BaseModel):
    at: dt.datetime
    username: str
    action: str
    from_version: str | None
    to_version: str
    reasons: str


class HistoryOut(BaseModel):
    model_name: str
    events: list[PromotionEventOut]


class IntervalOut(BaseModel):
    of: str
    level: float
    low: float
    high: float
    resamples: int
    rows: int


class ClassDrop(BaseModel):
    code: int
    drop: float = Field(description="champion's F1 minus this version's F1 on the class (negative: a gain)")
    rows: int = Field(description="gold rows of the class")
    judged: bool = Field(
        description="the gate's class-drop rule judges it (promotion.min_class_support rows)"
    )


class CompareOut(BaseModel):
    """This version against the current champion, both scored now on this version's gold rows."""

    version: str
    champion_version: str
    gold_of_version: str = Field(description="the version whose logged gold rows were scored")
    rows: int
    version_f1: float = Field(description="this version's gold weighted F1")
    champion_f1: float = Field(description="the champion's gold weighted F1 on the same rows")
    difference: float = Field(description="version_f1 - champion_f1")
    interval: IntervalOut = Field(description="paired bootstrap interval of the difference")
    worst_class_drop: ClassDrop | None = Field(
        description="the class with the largest gold F1 drop (None: no class in common)"
    )
    would_pass_gate: bool = Field(description="what the promotion gate would decide on these numbers")
    reasons: list[str]
    inputs: str = Field(description="text, or text+image when the gold rows' images were reachable")
    images_note: str
