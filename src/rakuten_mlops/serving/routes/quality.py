"""Model-quality routes (read-only): what a version measured, on how many rows, and who changed the champion.

`GET /v1/models/versions/{v}/evaluation` gives per-class test scores with their row counts, the
test-set confusion counts (with example titles), and the promotion gate's comparison of this
version with the champion of the time on the same gold rows. `GET /v1/models/history` lists the
champion changes (gate promotions, manual promotions, rollbacks) recorded in the app database.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from rakuten_mlops.appdb import promotion_history
from rakuten_mlops.config import Settings
from rakuten_mlops.lifecycle import registry
from rakuten_mlops.serving.deps import CurrentUser, SettingsDep, StateDep
from rakuten_mlops.serving.errors import error_responses
from rakuten_mlops.serving.quality_schemas import (
    ClassScore,
    ConfusionOut,
    EvaluationOut,
    GateOut,
    HistoryOut,
    PromotionEventOut,
)
from rakuten_mlops.serving.routes.registry import VersionPath

router = APIRouter(prefix="/models", tags=["registry"])


def _evaluation(settings: Settings, version: str) -> EvaluationOut:
    try:
        row = next((r for r in registry.versions_with_champion(settings) if r.version == version), None)
    except Exception as exc:  # MLflow raises many kinds when its store does not answer
        raise HTTPException(
            503, f"the model registry cannot be read ({exc.__class__.__name__}); retry later"
        ) from None
    if row is None:
        raise HTTPException(404, f"model {settings.model_name!r} has no version {version}")
    measured = registry.evaluation_of(settings, row.run_id)
    test = measured["test"] or {}
    per_class = [
        ClassScore(code=int(code), **{k: s[k] for k in ("f1", "precision", "recall", "support")})
        for code, s in test.get("per_class", {}).items()
    ]
    gate = registry.gate_of(row.tags)
    return EvaluationOut(
        version=version,
        test_rows=test.get("n"),
        gold_rows=measured["gold_rows"],
        per_class=sorted(per_class, key=lambda c: c.f1),
        confusion=ConfusionOut(**measured["confusion"]) if measured["confusion"] else None,
        gate=GateOut(**gate) if gate else None,
    )


@router.get(
    "/versions/{version}/evaluation",
    response_model=EvaluationOut,
    responses=error_responses(401, 403, 404, 422, 503),
    summary="Per-class test scores with row counts, confusion counts, the gate's same-gold-rows comparison",
)
async def get_evaluation(version: VersionPath, _: CurrentUser, settings: SettingsDep) -> EvaluationOut:
    return await run_in_threadpool(_evaluation, settings, version)


@router.get(
    "/history",
    response_model=HistoryOut,
    responses=error_responses(401, 403, 422, 503),
    summary="Champion changes, newest first: who, when, from which version to which, and why",
)
async def get_history(
    _: CurrentUser, state: StateDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> HistoryOut:
    name = state.settings.model_name
    try:
        events = await run_in_threadpool(promotion_history, state.sessions, name, limit)
    except SQLAlchemyError as exc:
        raise HTTPException(503, f"the app database does not answer ({exc.__class__.__name__})") from None
    return HistoryOut(model_name=name, events=[PromotionEventOut(**e) for e in events])
