"""Recording champion changes made through the API (who, when, from → to, why) in the app database."""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from rakuten_mlops.appdb import record_promotion
from rakuten_mlops.serving.deps import ServingState

log = logging.getLogger(__name__)


async def record_change(
    state: ServingState, username: str, action: str, from_version: str | None, to_version: str, reasons: str
) -> None:
    """Append a champion change; the change itself is done, so a database failure is logged, not raised."""
    try:
        await run_in_threadpool(
            record_promotion, state.sessions, username=username, action=action,
            model_name=state.settings.model_name, from_version=from_version, to_version=to_version,
            reasons=reasons,
        )  # fmt: skip
    except SQLAlchemyError as exc:
        log.warning("promotion history: %s v%s not recorded (%s)", action, to_version, exc.__class__.__name__)
