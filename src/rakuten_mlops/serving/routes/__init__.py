"""All routers: the versioned API under /v1, probes and metrics at the root."""

from fastapi import APIRouter

from rakuten_mlops.serving.routes import (
    auth,
    data,
    health,
    model,
    monitoring,
    predict,
    quality,
    registry,
    review,
    shadow,
    users,
)

api_router = APIRouter(prefix="/v1")
for module in (auth, predict, model, users, registry, quality, monitoring, data, shadow, review):
    api_router.include_router(module.router)

root_router = health.router

__all__ = ["api_router", "root_router"]
