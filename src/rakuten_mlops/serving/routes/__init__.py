"""All routers: the versioned API under /v1, probes and metrics at the root."""

from fastapi import APIRouter

from rakuten_mlops.serving.routes import (
    auth,
    data,
    health,
    limits,
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
modules = (auth, predict, model, limits, users, registry, quality, monitoring, data, shadow, review)
for module in modules:
    api_router.include_router(module.router)

root_router = health.router

__all__ = ["api_router", "root_router"]
