"""Model-quality routes (read-only): what a version measured, on how many rows, and who changed the champion.

`GET /v1/models/versions/{v}/evaluation` gives per-class test scores with their row counts, the
test-set confusion counts (with example titles), and the promotion gate's comparison of this
version with the champion of the time on the same gold rows. `GET /v1/models/versions/{v}/compare`
scores any version and today's champion now, on that version's logged gold rows (cached per pair).
`GET /v1/models/history` lists the champion changes (gate promotions, manual promotions, rollbacks)
recorded in the app database.
"""

from __future__ import annotations

import logging
import threading
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from rakuten_mlops.appdb import promotion_history
from rakuten_mlops.config import Settings
from rakuten_mlops.errors import RakutenError
from rakuten_mlops.lifecycle import registry
from rakuten_mlops.pipelines.compare import NotComparable, UnknownVersion, compare_with_champion
from rakuten_mlops.serving.deps import CurrentUser, SettingsDep, StateDep
from rakuten_mlops.serving.errors import error_responses
from rakuten_mlops.serving.quality_schemas import (
    ClassScore,
    CompareOut,
    ConfusionOut,
    EvaluationOut,
    GateOut,
    HistoryOut,
    PromotionEventOut,
)
from rakuten_mlops.serving.routes.registry import VersionPath

router = APIRouter(prefix="/models", tags=["registry"])
log = logging.getLogger(__name__)


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


_compared: dict[tuple[str, str, str, str], dict[str, Any]] = {}  # (registry, model, version, champion)
_compared_lock = threading.Lock()
COMPARE_CACHE_SIZE = 64


def _compare(settings: Settings, version: str) -> CompareOut:
    """Score `version` and the champion on `version`'s gold rows, once per (version, champion) pair."""
    try:
        champion = registry.champion_version(settings)
        key = (settings.registry_uri, settings.model_name, version, champion or "")
        with _compared_lock:
            cached = _compared.get(key)
        if cached is None:
            cached = compare_with_champion(settings, settings.resolve_params(), version)
            with _compared_lock:
                if len(_compared) >= COMPARE_CACHE_SIZE:
                    _compared.clear()
                _compared[(key[0], key[1], version, cached["champion_version"])] = cached
    except UnknownVersion as exc:
        raise HTTPException(404, str(exc)) from None
    except NotComparable as exc:
        raise HTTPException(409, str(exc)) from None
    except RakutenError as exc:  # params.yaml that does not validate, a model that does not load
        raise HTTPException(503, f"the comparison cannot be made: {exc}") from None
    except Exception as exc:  # MLflow raises many kinds when its store does not answer
        log.exception("comparing version %s with the champion failed", version)
        raise HTTPException(
            503, f"the comparison cannot be made ({exc.__class__.__name__}); retry later"
        ) from None
    return CompareOut(**cached)


@router.get(
    "/versions/{version}/compare",
    response_model=CompareOut,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="This version against the current champion, both scored on its gold rows (as the gate does)",
)
async def get_compare(version: VersionPath, _: CurrentUser, settings: SettingsDep) -> CompareOut:
    return await run_in_threadpool(_compare, settings, version)


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
