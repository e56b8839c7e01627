"""Steps of the safe rollout: read shadow pairs from the app database, compare, promote from shadow.

Every decision of `promote_challenger` is recorded like the offline gate's: as the version's
`promotion.decision` and `promotion.reasons` tags (plus `shadow.comparison`), and as one line of
``<home>/monitoring/shadow/decisions.jsonl``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd

from rakuten_mlops.config import Params, Settings
from rakuten_mlops.errors import RakutenError
from rakuten_mlops.infra import append_jsonl, read_jsonl
from rakuten_mlops.lifecycle import challenger as challenger_alias
from rakuten_mlops.lifecycle.registry import (
    RegistryError,
    client,
    configure_mlflow,
    get_champion,
    registry_missing,
    set_champion,
)
from rakuten_mlops.monitoring.shadow import PAIR_COLUMNS, compare_shadow
from rakuten_mlops.pipelines.monitoring_live import has_shadow_column, no_database_yet
from rakuten_mlops.pipelines.monitoring_store import MonitoringDir

MAX_PAIRS = 50_000


class ShadowLogUnavailable(RakutenError, ConnectionError):
    """The prediction log cannot be read: no decision is taken without the comparison."""


def decisions_log(settings: Settings) -> Path:
    return MonitoringDir.of_home(settings.home).root / "shadow" / "decisions.jsonl"


def read_shadow_pairs(database_url: str, since: dt.datetime, limit: int = MAX_PAIRS) -> pd.DataFrame:
    """Shadow predictions since `since` with the champion's prediction of the same listing and its label."""
    if no_database_yet(database_url):
        return pd.DataFrame(columns=list(PAIR_COLUMNS))
    from sqlalchemy import and_, exists, inspect, select
    from sqlalchemy.exc import SQLAlchemyError

    from rakuten_mlops.appdb import FeedbackRecord, PredictionRecord, make_engine

    engine = make_engine(database_url)
    try:
        tables = set(inspect(engine).get_table_names())
        if not {"feedback", "predictions"} <= tables or not has_shadow_column(engine):
            return pd.DataFrame(columns=list(PAIR_COLUMNS))
        p = PredictionRecord.__table__
        s, c = p.alias("s"), p.alias("c")
        f, newer = FeedbackRecord.__table__.alias("f"), FeedbackRecord.__table__.alias("newer")
        # One label per prediction: an admin's correction supersedes the earlier label.
        superseded = exists().where(
            newer.c.prediction_id == f.c.prediction_id, newer.c.created_at > f.c.created_at
        )
        query = (
            select(
                s.c.id,
                s.c.created_at,
                s.c.model_version,
                s.c.prdtypecode,
                s.c.probability,
                c.c.model_version,
                c.c.prdtypecode,
                c.c.probability,
                f.c.true_code,
            )
            .join(c, c.c.id == s.c.shadow_of)
            .outerjoin(f, and_(f.c.prediction_id == s.c.shadow_of, ~superseded))
            .where(s.c.shadow.is_(True), s.c.created_at >= since)
            .order_by(s.c.created_at.desc())
            .limit(limit)
        )
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    except SQLAlchemyError as exc:
        raise ConnectionError(f"cannot read shadow predictions from the app database: {exc}") from exc
    finally:
        engine.dispose()
    frame = pd.DataFrame(rows, columns=list(PAIR_COLUMNS))
    frame["true_code"] = frame["true_code"].astype("Int64")
    return frame


def shadow_comparison(settings: Settings, params: Params, days: float | None = None) -> dict[str, Any]:
    """Each challenger version against the champion it ran beside, over the live window (or `days`)."""
    window = params.monitoring.live.window_days if days is None else days
    now = dt.datetime.now(dt.UTC)
    versions = _aliases(settings)
    try:
        pairs = read_shadow_pairs(settings.app_database_url, now - dt.timedelta(days=window))
        comparisons, error = compare_shadow(pairs), None
    except ConnectionError as exc:
        comparisons, error = [], str(exc)
    return {
        "computed_at": now.isoformat(timespec="seconds"),
        "window_days": window,
        **versions,
        "comparisons": comparisons,
        "error": error,
        "rule": {
            "shadow_min_feedback": params.promotion.shadow_min_feedback,
            "shadow_f1_tolerance": params.promotion.shadow_f1_tolerance,
        },
    }


def _aliases(settings: Settings) -> dict[str, str | None]:
    if registry_missing(settings):
        return {"champion_version": None, "challenger_version": None}
    try:
        c = client(settings)
        champ = get_champion(c, settings.model_name)
        chal = challenger_alias.get_challenger(c, settings.model_name)
    except Exception:  # an unreachable registry: the comparison still shows what the log holds
        return {"champion_version": None, "challenger_version": None}
    return {
        "champion_version": str(champ.version) if champ else None,
        "challenger_version": str(chal.version) if chal else None,
    }


def current_comparison(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The comparison of the current challenger against the current champion, if it has one."""
    for comparison in summary["comparisons"]:
        if (
            comparison["challenger_version"] == summary["challenger_version"]
            and comparison["champion_version"] == summary["champion_version"]
        ):
            return dict(comparison)
    return None


def challenge(settings: Settings, version: str, who: str = "by hand") -> str | None:
    """Put `version` in shadow (the `challenger` alias); returns the version that held it before."""
    configure_mlflow(settings)
    reasons = [f"put in shadow {who}"]
    return challenger_alias.set_challenger(
        client(settings), settings.model_name, version, reasons, "challenger"
    )


def clear_challenge(settings: Settings) -> str | None:
    """Take the `challenger` alias away; returns the version that held it (None: none did)."""
    configure_mlflow(settings)
    return challenger_alias.clear_challenger(client(settings), settings.model_name)


def promote_challenger(settings: Settings, params: Params) -> dict[str, Any]:
    """Promote the challenger to champion when the live rule holds; record the decision either way."""
    configure_mlflow(settings)
    c = client(settings)
    name = settings.model_name
    challenger = challenger_alias.get_challenger(c, name)
    if challenger is None:
        raise RegistryError(
            f"model {name!r} has no challenger: put a version in shadow first "
            "(`rakuten-mlops models challenge VERSION`)"
        )
    summary = shadow_comparison(settings, params)
    if summary["error"]:
        raise ShadowLogUnavailable(summary["error"])
    comparison = current_comparison(summary)
    decision = challenger_alias.decide_from_shadow(comparison, params.promotion)
    version = str(challenger.version)
    record: dict[str, Any] = {
        "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "version": version,
        "champion_before": summary["champion_version"],
        **decision.as_dict(),
        "rule": summary["rule"],
        "comparison": comparison,
    }
    if decision.promote:
        set_champion(c, name, version, decision.reasons, "promoted from shadow")
        challenger_alias.clear_challenger(c, name)
    else:
        c.set_model_version_tag(name, version, "promotion.decision", "kept in shadow")
        c.set_model_version_tag(name, version, "promotion.reasons", "; ".join(decision.reasons)[:4900])
    c.set_model_version_tag(name, version, "shadow.comparison", json.dumps(comparison)[:4900])
    append_jsonl(decisions_log(settings), record)
    return record


def shadow_decisions(settings: Settings, limit: int = 20) -> list[dict[str, Any]]:
    """The latest decisions of `promote_challenger`, newest first."""
    return list(reversed(read_jsonl(decisions_log(settings))))[:limit]
