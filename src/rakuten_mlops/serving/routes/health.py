"""Probes and metrics: public, outside /v1."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rakuten_mlops.serving.deps import HolderDep, StateDep
from rakuten_mlops.serving.schemas import ErrorOut, Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: {"model": ErrorOut, "description": "no model loaded yet"}},
    summary="A model is loaded and predictions can be served",
)
async def readyz(holder: HolderDep) -> Health | JSONResponse:
    if holder.current is None:
        return JSONResponse({"detail": "no model loaded yet"}, status_code=503, headers={"Retry-After": "5"})
    return Health(status="ready")


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(state: StateDep) -> Response:
    # Drift share, live F1 and retrain decisions are read from the monitoring files by the
    # registry's MonitoringCollector, which never raises: a scrape never fails on them.
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
