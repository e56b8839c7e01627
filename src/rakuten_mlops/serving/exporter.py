"""Prometheus export of monitoring results: drift share and flags, live F1/accuracy, retrain decisions.

`update_metrics` reads the latest files under ``<home>/monitoring`` and sets them on any
object carrying the contract's metric objects (the API's `ServingMetrics`, or the standalone
`MonitoringMetrics` below); the API's ``/metrics`` calls it on scrape.
"""

from __future__ import annotations

import datetime as dt
import logging
import weakref
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from rakuten_mlops.config import Params, Settings
from rakuten_mlops.infra import read_json_or_none, read_jsonl
from rakuten_mlops.pipelines.monitoring_store import MonitoringDir

log = logging.getLogger(__name__)
DECISIONS = ("retrain", "skip")
# Decisions already added to each counter (a Counter only goes up: add the difference on scrape).
_seen: weakref.WeakKeyDictionary[Any, dict[str, int]] = weakref.WeakKeyDictionary()


class MonitoringMetricsLike(Protocol):
    drift_share: Gauge
    drift_column: Gauge
    live_f1: Gauge
    live_accuracy: Gauge
    retrain_decisions: Counter


@dataclass
class MonitoringMetrics:
    """The monitoring metrics alone, on their own registry (for the standalone exporter)."""

    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        r = self.registry
        self.drift_share = Gauge("rakuten_drift_share", "Share of drifted columns", registry=r)
        self.drift_column = Gauge(
            "rakuten_drift_column_drifted", "1 when the column drifted", ["column"], registry=r
        )
        self.live_f1 = Gauge("rakuten_live_f1", "Weighted F1 on feedback", ["model_version"], registry=r)
        self.live_accuracy = Gauge(
            "rakuten_live_accuracy", "Accuracy on feedback", ["model_version"], registry=r
        )
        self.retrain_decisions = Counter(
            "rakuten_retrain_decisions", "Retrain decisions", ["decision"], registry=r
        )


def update_metrics(
    metrics: MonitoringMetricsLike,
    settings: Settings,
    params: Params | None = None,
    *,
    refresh_live: bool = True,
) -> dict[str, Any]:
    """Set the monitoring metrics from the latest drift summary, live performance and decision log.

    Never raises (a scrape must not fail): problems are logged and returned under `errors`.

    Args:
        refresh_live: recompute live performance from the app DB when the saved one is older
            than `monitoring.live.refresh_seconds`.
    """
    mon = MonitoringDir.of_home(settings.home)
    errors: list[str] = []
    drift = read_json_or_none(mon.latest_drift)
    if drift:
        metrics.drift_share.set(float(drift.get("drift_share", 0.0)))
        metrics.drift_column.clear()
        for column, info in drift.get("columns", {}).items():
            metrics.drift_column.labels(column=column).set(1.0 if info.get("drifted") else 0.0)
    live = read_json_or_none(mon.latest_live)
    if refresh_live:
        try:
            live = _fresh_live(live, settings, params) or live
        except Exception as exc:  # the DB may be down: keep the last known values
            errors.append(f"live performance: {exc}")
            log.warning("live performance not refreshed: %s", exc)
    if live:
        for version, scores in live.get("versions", {}).items():
            if scores.get("weighted_f1") is not None:
                metrics.live_f1.labels(model_version=version).set(float(scores["weighted_f1"]))
                metrics.live_accuracy.labels(model_version=version).set(float(scores["accuracy"]))
    counts = {d: 0 for d in DECISIONS}
    for record in read_jsonl(mon.decisions_log):
        counts[str(record.get("decision", "skip"))] = counts.get(str(record.get("decision", "skip")), 0) + 1
    seen = _seen.setdefault(metrics.retrain_decisions, {})
    for decision, total in counts.items():
        child = metrics.retrain_decisions.labels(decision=decision)
        if total > seen.get(decision, 0):
            child.inc(total - seen.get(decision, 0))
            seen[decision] = total
    return {"drift": bool(drift), "live": bool(live), "decisions": counts, "errors": errors}


def _fresh_live(
    live: dict[str, Any] | None, settings: Settings, params: Params | None
) -> dict[str, Any] | None:

    params = params or settings.resolve_params()
    refresh = params.monitoring.live.refresh_seconds
    if refresh <= 0:
        return None
    if live and live.get("computed_at"):
        age = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(live["computed_at"])
        if age.total_seconds() < refresh:
            return None
    from rakuten_mlops.pipelines.monitoring import live_performance

    return live_performance(settings, params)
