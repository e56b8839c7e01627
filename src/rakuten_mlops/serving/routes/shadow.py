"""Safe-rollout routes (admin): put a version in shadow, compare it with the champion, promote it.

The comparison is read from the prediction log (every replica's shadow predictions and the
feedback on them); `serving` says what this instance scores now.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from starlette.concurrency import run_in_threadpool

from rakuten_mlops.config import Params
from rakuten_mlops.errors import RakutenError
from rakuten_mlops.infra import read_jsonl
from rakuten_mlops.lifecycle.registry import RegistryError
from rakuten_mlops.pipelines import monitoring_shadow
from rakuten_mlops.serving.deps import AdminUser, HolderDep, SettingsDep, StateDep
from rakuten_mlops.serving.errors import error_responses
from rakuten_mlops.serving.promotion_history import record_change
from rakuten_mlops.serving.rollout_schemas import ChallengeIn, ChallengerOut, ShadowDecisionOut, ShadowOut

router = APIRouter(tags=["rollout"])


def _params(settings: SettingsDep) -> Params:
    try:
        return settings.resolve_params()
    except RakutenError as exc:
        raise HTTPException(503, f"params cannot be read: {exc}") from None


def _decisions(homes: set[Path], limit: int = 20) -> list[dict[str, Any]]:
    """Promotions from shadow recorded in this API's home and in the runs' home, newest first."""
    records = [r for home in homes for r in read_jsonl(home / "monitoring" / "shadow" / "decisions.jsonl")]
    return sorted(records, key=lambda r: str(r.get("recorded_at", "")), reverse=True)[:limit]


@router.get(
    "/monitoring/shadow",
    response_model=ShadowOut,
    responses=error_responses(401, 403, 422, 503),
    summary="The challenger against the champion on the same live listings (admin)",
)
def shadow(
    _: AdminUser,
    settings: SettingsDep,
    state: StateDep,
    days: Annotated[float | None, Query(gt=0, le=366)] = None,
) -> ShadowOut:
    summary = monitoring_shadow.shadow_comparison(settings, _params(settings), days)
    return ShadowOut(
        **summary,
        serving=state.shadow.status(),
        decisions=_decisions({settings.home, settings.worker_files}),
    )


@router.post(
    "/model/challenger",
    response_model=ChallengerOut,
    responses=error_responses(401, 403, 404, 422),
    summary="Give the challenger alias to a version: the API scores it in shadow (admin)",
)
async def set_challenger(
    body: ChallengeIn, user: AdminUser, holder: HolderDep, settings: SettingsDep
) -> ChallengerOut:
    try:
        previous = await run_in_threadpool(
            monitoring_shadow.challenge, settings, body.version, f"by {user.username} through the API"
        )
    except RegistryError as exc:
        raise HTTPException(404, str(exc)) from None
    await holder.reload()
    scoring = holder.shadow.current.version if holder.shadow and holder.shadow.current else None
    return ChallengerOut(challenger=body.version, previous=previous, scoring=scoring)


@router.delete(
    "/model/challenger",
    response_model=ChallengerOut,
    responses=error_responses(401, 403),
    summary="Take the challenger alias away: shadow scoring stops (admin)",
)
async def clear_challenger(_: AdminUser, holder: HolderDep, settings: SettingsDep) -> ChallengerOut:
    previous = await run_in_threadpool(monitoring_shadow.clear_challenge, settings)
    await holder.reload()
    return ChallengerOut(challenger=None, previous=previous, scoring=None)


@router.post(
    "/model/promote-challenger",
    response_model=ShadowDecisionOut,
    responses=error_responses(401, 403, 409, 503),
    summary="Promote the challenger when the live rule holds; the decision is recorded either way (admin)",
)
async def promote_challenger(
    user: AdminUser, holder: HolderDep, settings: SettingsDep, state: StateDep
) -> ShadowDecisionOut:
    params = _params(settings)
    try:
        record = await run_in_threadpool(monitoring_shadow.promote_challenger, settings, params)
    except RegistryError as exc:
        raise HTTPException(409, str(exc)) from None
    except ConnectionError as exc:
        raise HTTPException(503, str(exc)) from None
    if record.get("promote"):
        reasons = "; ".join(record.get("reasons") or [])
        before = record.get("champion_before")
        await record_change(
            state, user.username, "promotion from shadow", str(before) if before else None,
            str(record["version"]), reasons,
        )  # fmt: skip
    result = await holder.reload()
    return ShadowDecisionOut(**record, serving=result.version)
