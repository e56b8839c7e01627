"""Prometheus export of monitoring results: drift share and flags, live F1/accuracy, retrain
decisions, and the API reloads the DAGs could not make after a promotion.

`MonitoringCollector` is a custom collector: each scrape, `collect()` reads the latest recorded
files under ``<home>/monitoring`` and builds the metric families from them. It runs no step,
writes nothing and keeps nothing between scrapes (the decision counter is the number of lines in
the decision log, and the reload-failure counter the number of failed attempts in the reload log:
both files only grow). The API registers it on its registry; `rakuten-mlops monitor
export` serves it alone.

Live quality is recorded by steps, not by a scrape: `monitor live`, `monitor check`, the stream
DAG, and `LiveRefresher`, which the API and `monitor export` run every
`monitoring.live.refresh_seconds`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from rakuten_mlops.config import Settings
from rakuten_mlops.infra import read_json_or_none, read_jsonl
from rakuten_mlops.pipelines.monitoring_store import MonitoringDir

log = logging.getLogger(__name__)
DECISIONS = ("retrain", "skip")


def reload_failures(records: list[dict[str, Any]]) -> int:
    """Reload attempts after a promotion that did not reload the API (`reloaded` false)."""
    return sum(1 for record in records if record.get("reloaded") is False)


def decision_counts(records: list[dict[str, Any]]) -> dict[str, int]:
    """Recorded decisions per kind (`retrain`, `skip`, and any other kind found)."""
    counts = dict.fromkeys(DECISIONS, 0)
    for record in records:
        kind = str(record.get("decision", "skip"))
        counts[kind] = counts.get(kind, 0) + 1
    return counts


class MonitoringCollector(Collector):
    """The monitoring metrics of the contract, read from the monitoring folder on every scrape.

    `home` holds the monitoring runs (drift, decisions, live quality). `live_home`, when given, is
    where this process records live quality itself (the API's `LiveRefresher` writes to its own
    home, which may not be the runs' home): its latest live file wins once it exists.
    """

    def __init__(self, home: Path, live_home: Path | None = None) -> None:
        self.monitoring = MonitoringDir.of_home(home)
        self.live_files = [self.monitoring.latest_live]
        if live_home is not None and live_home != home:
            self.live_files.insert(0, MonitoringDir.of_home(live_home).latest_live)

    def describe(self) -> Iterator[Metric]:
        """Names and types only, so that registering reads no file."""
        return self._families(None, None, {}, 0)

    def collect(self) -> Iterator[Metric]:
        """The latest drift summary, live performance and decision counts; never raises."""
        drift = self._read("drift summary", lambda: read_json_or_none(self.monitoring.latest_drift))
        live = self._read("live performance", self._latest_live)
        records = self._read("decision log", lambda: read_jsonl(self.monitoring.decisions_log)) or []
        reloads = self._read("reload log", lambda: read_jsonl(self.monitoring.reloads_log)) or []
        failures = reload_failures(reloads)
        try:
            return iter(list(self._families(drift, live, decision_counts(records), failures)))
        except Exception as exc:  # a file of an unexpected shape: the series are left out instead
            log.warning("monitoring results not exported: %s", exc)
            return self._families(None, None, decision_counts([]), failures)

    def _latest_live(self) -> Any:
        for path in self.live_files:
            live = read_json_or_none(path)
            if live is not None:
                return live
        return None

    @staticmethod
    def _read(what: str, read: Any) -> Any:
        try:
            return read()
        except Exception as exc:  # a scrape must not fail: the series are left out instead
            log.warning("monitoring %s not exported: %s", what, exc)
            return None

    @staticmethod
    def _families(
        drift: dict[str, Any] | None,
        live: dict[str, Any] | None,
        counts: dict[str, int],
        failed_reloads: int,
    ) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "rakuten_drift_share",
            "Share of drifted columns",
            value=float((drift or {}).get("drift_share", 0.0)),
        )
        columns = GaugeMetricFamily(
            "rakuten_drift_column_drifted", "1 when the column drifted", labels=["column"]
        )
        for column, info in (drift or {}).get("columns", {}).items():
            columns.add_metric([str(column)], 1.0 if info.get("drifted") else 0.0)
        yield columns
        f1 = GaugeMetricFamily("rakuten_live_f1", "Weighted F1 on feedback", labels=["model_version"])
        accuracy = GaugeMetricFamily(
            "rakuten_live_accuracy", "Accuracy on feedback", labels=["model_version"]
        )
        for version, scores in (live or {}).get("versions", {}).items():
            if scores.get("weighted_f1") is not None:  # no feedback, no value
                f1.add_metric([str(version)], float(scores["weighted_f1"]))
            if scores.get("accuracy") is not None:
                accuracy.add_metric([str(version)], float(scores["accuracy"]))
        yield f1
        yield accuracy
        yield from _shadow_families((live or {}).get("shadow") or {})
        decisions = CounterMetricFamily("rakuten_retrain_decisions", "Retrain decisions", labels=["decision"])
        for kind, total in counts.items():
            decisions.add_metric([kind], float(total))
        yield decisions
        yield CounterMetricFamily(
            "rakuten_pipeline_reload_failures",
            "API reloads a DAG could not make after promoting a champion (monitoring/reloads.jsonl)",
            value=float(failed_reloads),
        )


def _shadow_families(shadow: dict[str, Any]) -> Iterator[Metric]:
    """Challenger against champion on the same listings, as recorded with live quality (all replicas)."""
    pair = ["challenger_version", "champion_version"]
    agreement = GaugeMetricFamily(
        "rakuten_shadow_agreement",
        "Share of shadow listings where both models predicted the same code",
        labels=pair,
    )
    feedback = GaugeMetricFamily(
        "rakuten_shadow_feedback", "Shadow listings whose champion prediction got feedback", labels=pair
    )
    f1 = GaugeMetricFamily(
        "rakuten_shadow_live_f1", "Weighted F1 of each model on the same shadow listings with feedback",
        labels=[*pair, "role"],
    )  # fmt: skip
    for c in shadow.get("comparisons") or []:
        versions = [str(c["challenger_version"]), str(c["champion_version"])]
        agreement.add_metric(versions, float(c["agreement"]))
        feedback.add_metric(versions, float(c["feedback"]))
        for role in ("challenger", "champion"):
            if c.get(f"{role}_f1") is not None:  # no feedback, no value
                f1.add_metric([*versions, role], float(c[f"{role}_f1"]))
    yield agreement
    yield feedback
    yield f1


def refresh_live(settings: Settings) -> None:
    """Recompute live quality from the app database and record it (a failure is recorded too)."""
    from rakuten_mlops.pipelines.monitoring import live_performance

    live_performance(settings, settings.resolve_params())


class LiveRefresher:
    """Records live quality every `interval_s` seconds in the background (0: never)."""

    def __init__(self, settings: Settings, interval_s: float) -> None:
        self.settings = settings
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_params(cls, settings: Settings) -> LiveRefresher:
        """The interval from `monitoring.live.refresh_seconds`; never refreshes when params are invalid."""
        try:
            interval = settings.resolve_params().monitoring.live.refresh_seconds
        except Exception as exc:  # the API still serves predictions with a broken params.yaml
            log.warning("live quality will not be refreshed: %s", exc)
            interval = 0.0
        return cls(settings, interval)

    def start(self) -> None:
        if self.interval_s > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await run_in_threadpool(refresh_live, self.settings)
            except Exception as exc:  # the database may be down: try again next time
                log.warning("live quality not refreshed: %s", exc)
