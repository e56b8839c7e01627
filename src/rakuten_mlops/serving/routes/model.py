"""Model routes: what is served, and reloading the champion on demand."""

from __future__ import annotations

from fastapi import APIRouter

from rakuten_mlops.serving.deps import AdminUser, CurrentUser, HolderDep
from rakuten_mlops.serving.errors import error_responses
from rakuten_mlops.serving.model_holder import ALIAS
from rakuten_mlops.serving.schemas import ModelOut, ReloadOut

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
