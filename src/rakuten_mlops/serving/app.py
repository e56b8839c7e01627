"""The FastAPI app: `create_app(settings)` wires state, middleware and routers; `lifespan` loads the model."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from rakuten_mlops import __version__
from rakuten_mlops.appdb import create_schema, make_engine, session_factory, session_scope
from rakuten_mlops.config import Params, Settings, get_settings
from rakuten_mlops.serving.auth import Authenticator, AuthGateMiddleware
from rakuten_mlops.serving.deps import ServingState
from rakuten_mlops.serving.errors import install_error_handlers
from rakuten_mlops.serving.exporter import LiveRefresher, MonitoringCollector
from rakuten_mlops.serving.fast_path import RouteFastPath
from rakuten_mlops.serving.login_limiter import LoginLimiter, Quota, make_backend, parse_networks
from rakuten_mlops.serving.metrics import MetricsMiddleware, ServingMetrics
from rakuten_mlops.serving.model_holder import ModelHolder
from rakuten_mlops.serving.prediction_log import PredictionLog
from rakuten_mlops.serving.request_limits import BodySizeLimitMiddleware
from rakuten_mlops.serving.routes import api_router, root_router
from rakuten_mlops.serving.schemas import BatchIn, PredictIn
from rakuten_mlops.serving.security import HashGate, check_signing_key, token_config
from rakuten_mlops.serving.shadow import ShadowScorer
from rakuten_mlops.serving.users import count_users, create_user, get_user

log = logging.getLogger(__name__)
OPEN_PATHS = ("/v1/auth/token",)  # the only /v1 route that takes no token
DESCRIPTION = (
    "Predicts the Rakuten France product type (27 codes) of a listing from its title, description "
    "and image. Get a token from `POST /v1/auth/token`, then send it as `Authorization: Bearer <token>`."
)


def _prepare_database(state: ServingState) -> None:
    """Create missing tables and the bootstrap admin; a database outage only logs a warning."""
    s = state.settings
    try:
        create_schema(state.engine)
        state.prediction_log.schema_ready = True
        if s.bootstrap_admin_user and s.bootstrap_admin_password:
            with session_scope(state.sessions) as session:
                if count_users(session) == 0:
                    create_user(
                        session,
                        s.bootstrap_admin_user,
                        s.bootstrap_admin_password.get_secret_value(),
                        "admin",
                    )
                    log.info("created bootstrap admin %r", s.bootstrap_admin_user)
        if s.service_account_user and s.service_account_password:
            with session_scope(state.sessions) as session:
                if get_user(session, s.service_account_user) is None:
                    create_user(
                        session,
                        s.service_account_user,
                        s.service_account_password.get_secret_value(),
                        "admin",
                    )
                    log.info("created service account %r", s.service_account_user)
    except SQLAlchemyError as exc:
        log.warning(
            "app database unavailable at start (%s); predictions are buffered", exc.__class__.__name__
        )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the prediction log, the model holder and the live-quality refresher; flush the log at the end."""
    state: ServingState = app.state.serving
    await run_in_threadpool(_prepare_database, state)
    state.prediction_log.start()
    state.shadow.start()
    await state.holder.start()  # loads the challenger too (state.holder.shadow)
    live = LiveRefresher.from_params(state.settings)
    live.start()
    try:
        yield
    finally:
        await live.stop()
        await state.holder.stop()
        await run_in_threadpool(state.prediction_log.close, state.settings.prediction_log_shutdown_seconds)


def review_threshold(settings: Settings) -> float:
    """`monitoring.review.confidence_below`; the default when params.yaml does not validate."""
    try:
        return settings.resolve_params().monitoring.review.confidence_below
    except Exception as exc:  # the API still serves predictions with a broken params.yaml
        default = Params().monitoring.review.confidence_below
        log.warning("review threshold: params not read (%s); using %s", exc, default)
        return default


def build_state(settings: Settings) -> ServingState:
    """Everything the app needs, built without touching the network or the database."""
    tokens = token_config(settings)  # raises outside development without a real secret
    check_signing_key(settings)
    engine = make_engine(settings.app_database_url)
    sessions = session_factory(engine)
    metrics = ServingMetrics(low_confidence_below=review_threshold(settings))
    # Drift and decisions as the monitoring runs record them (in the worker's home when the API
    # has a home of its own, as in compose); live quality as this API's refresher records it in
    # its own home, the runs' record until the first refresh.
    metrics.registry.register(MonitoringCollector(settings.worker_files, live_home=settings.home))
    plog = PredictionLog(
        engine,
        settings.serving_dir / "spool",
        flush_s=settings.prediction_log_flush_seconds,
        batch_rows=settings.prediction_log_batch_rows,
        max_buffer=settings.prediction_log_max_buffer,
        retention_days=settings.prediction_log_retention_days,
        spool_max_bytes=settings.spool_max_bytes,
        review_below=metrics.low_confidence_below,  # thumbnails of the review queue's images
        review_image_days=settings.review_image_days,
    )
    metrics.log_queue_size.set_function(lambda: plog.pending())
    metrics.review_images_dropped.set_function(lambda: plog.images_dropped)
    holder = ModelHolder(settings, metrics)
    holder.shadow = ShadowScorer(settings, metrics, plog)
    windows = make_backend(settings.redis_url)  # login limits and quotas: Redis when configured
    return ServingState(
        settings=settings,
        tokens=tokens,
        engine=engine,
        sessions=sessions,
        authenticator=Authenticator(tokens, sessions, settings.auth_cache_seconds),
        holder=holder,
        prediction_log=plog,
        metrics=metrics,
        login_limiter=LoginLimiter(
            windows,
            per_account=settings.login_max_failures,
            per_address=settings.login_max_failures_per_address,
            global_limit=settings.login_max_failures_global,
            window_s=settings.login_window_seconds,
        ),
        quota=Quota(windows, settings.predict_quota_per_minute, 60.0),
        hash_gate=HashGate(settings.login_hash_concurrency, settings.login_queue_seconds),
        trusted_proxies=parse_networks(settings.trusted_proxies.split(",")),
        shadow=holder.shadow,
    )


def _install_openapi(app: FastAPI) -> None:
    """OpenAPI with the schemas of bodies that routes read themselves (batch: size checked first)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            _, defs = models_json_schema(
                [(BatchIn, "validation"), (PredictIn, "validation")],
                ref_template="#/components/schemas/{model}",
            )
            known = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, body in defs.get("$defs", {}).items():
                known.setdefault(name, body)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The prediction API for `settings` (default: the process settings)."""
    settings = settings or get_settings()
    state = build_state(settings)
    app = FastAPI(
        title="Rakuten product type API", version=__version__, description=DESCRIPTION, lifespan=lifespan
    )
    app.state.serving = state
    _install_openapi(app)
    install_error_handlers(app)
    # Innermost: single predictions skip the router and FastAPI's request handling, not the
    # middleware below (limits, auth gate, metrics).
    app.add_middleware(RouteFastPath, method="POST", path="/v1/predict")
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    # Before the body is read: an anonymous request never costs a parse (login stays open).
    app.add_middleware(
        AuthGateMiddleware, authenticator=state.authenticator, prefix="/v1/", open_paths=OPEN_PATHS
    )
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)  # outermost: counts every answer
    app.include_router(api_router)
    app.include_router(root_router)
    return app
