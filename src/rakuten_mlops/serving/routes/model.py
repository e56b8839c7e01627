"""Model routes: what is served, and reloading the champion on demand."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool

from rakuten_mlops.lifecycle import registry
from rakuten_mlops.serving.deps import AdminUser, CurrentUser, HolderDep, SettingsDep, StateDep
from rakuten_mlops.serving.errors import error_responses
from rakuten_mlops.serving.model_holder import ALIAS
from rakuten_mlops.serving.promotion_history import record_change
from rakuten_mlops.serving.schemas import ChampionChangeOut, ModelOut, PromoteIn, ReloadOut, RollbackIn

router = APIRouter(prefix="/model", tags=["model"])


@router.get(
    "", response_model=ModelOut, responses=error_responses(401, 403), summary="The model being served"
)
async def get_model(_: CurrentUser, holder: HolderDep) -> ModelOut:
    m = holder.current
    return ModelOut(
        name=holder.name,
        alias=ALIAS,
        version=m.version if m else None,
        run_id=m.run_id if m else None,
        source=m.source if m else None,
        loaded_at=m.loaded_at if m else None,
        last_check_at=holder.last_check_at,
        last_error=holder.last_error,
        ready=m is not None,
    )


@router.post(
    "/reload",
    response_model=ReloadOut,
    responses=error_responses(401, 403),
    summary="Check the champion alias now and swap in a new version (admin)",
)
async def reload_model(_: AdminUser, holder: HolderDep) -> ReloadOut:
    result = await holder.reload()
    return ReloadOut(changed=result.changed, version=result.version, message=result.message)


@router.post(
    "/promote",
    response_model=ChampionChangeOut,
    responses=error_responses(401, 403, 404, 422),
    summary="Give the champion alias to a registered version by hand, then serve it (admin)",
)
async def promote_version(
    body: PromoteIn, user: AdminUser, holder: HolderDep, settings: SettingsDep, state: StateDep
) -> ChampionChangeOut:
    reasons = [
        f"manual promotion by {user.username} through the API",
        *([body.reason] if body.reason else []),
    ]

    def _promote() -> str | None:
        return registry.set_champion(
            registry.client(settings), settings.model_name, body.version, reasons, "manual"
        )

    try:
        previous = await run_in_threadpool(_promote)
    except registry.RegistryError as exc:
        raise HTTPException(404, str(exc)) from None
    await record_change(state, user.username, "manual promotion", previous, body.version, "; ".join(reasons))
    result = await holder.reload()
    return ChampionChangeOut(champion=body.version, previous=previous, serving=result.version)


@router.post(
    "/rollback",
    response_model=ChampionChangeOut,
    responses=error_responses(401, 403, 409),
    summary="Give the champion alias back to the version the current champion replaced (admin)",
)
async def rollback_champion(
    user: AdminUser,
    holder: HolderDep,
    settings: SettingsDep,
    state: StateDep,
    body: RollbackIn | None = None,
) -> ChampionChangeOut:
    try:
        old, new = await run_in_threadpool(registry.rollback, registry.client(settings), settings.model_name)
    except registry.RegistryError as exc:
        raise HTTPException(409, str(exc)) from None
    why = f"rollback by {user.username} through the API" + (
        f"; {body.reason}" if body and body.reason else ""
    )
    await record_change(state, user.username, "rollback", old, new, why)
    result = await holder.reload()
    return ChampionChangeOut(champion=new, previous=old, serving=result.version)
