"""Champion changes made outside the API (the pipeline's gate, the CLI) in the promotion history.

The API records its own changes (`serving/promotion_history.py`); both write the app database's
`promotion_history` table, which `GET /v1/models/history` reads.
"""

from __future__ import annotations

import getpass
import logging

from sqlalchemy.exc import SQLAlchemyError

from rakuten_mlops.appdb import create_schema, make_engine, record_promotion, session_factory
from rakuten_mlops.config import Settings

log = logging.getLogger(__name__)


def local_user(prefix: str = "cli") -> str:
    """Who runs a command on this machine, as the history names them (``cli:alice``)."""
    try:
        return f"{prefix}:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers)
        return prefix


def record_history(
    settings: Settings, *, username: str, action: str, from_version: str | None, to_version: str, reasons: str
) -> None:
    """Append a champion change (best effort: the alias moved already; a failure is logged)."""
    engine = make_engine(settings.app_database_url)
    try:
        create_schema(engine)
        record_promotion(
            session_factory(engine), username=username, action=action, model_name=settings.model_name,
            from_version=from_version, to_version=to_version, reasons=reasons,
        )  # fmt: skip
    except SQLAlchemyError as exc:
        log.warning(
            "promotion history: %s to v%s not recorded (%s)", action, to_version, exc.__class__.__name__
        )
    finally:
        engine.dispose()
