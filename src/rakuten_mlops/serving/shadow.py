"""The challenger in shadow: scores a share of live requests off the request path, answers nobody.

A request only appends its listings to a bounded in-memory queue (`offer`, no I/O, never raises,
never waits): when the queue holds `shadow_queue_rows` listings or `shadow_queue_bytes` bytes,
new ones are dropped and counted. One background thread takes the queue in batches, has them
scored by the challenger in a separate process at the lowest CPU priority (`shadow_process`: its
own interpreter lock, nice 19, so under load it gets only the CPU the champion leaves and the
queue drops listings rather than slowing answers), logs each prediction to the prediction log as
shadow (`shadow_of`: the champion's prediction of the same request) and counts agreement,
confidence and class mix per version. A challenger that fails (or whose process dies) is dropped
(not loaded again until the alias moves) and counted.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, Info

from rakuten_mlops.appdb import record_id, utcnow
from rakuten_mlops.config import Settings
from rakuten_mlops.serving.metrics import CONFIDENCE_BUCKETS, ServingMetrics
from rakuten_mlops.serving.model_loader import (
    FAILURE_REASONS,
    AliasLoader,
    LoadedModel,
    failure_reason,
)
from rakuten_mlops.serving.prediction_log import PredictionLog
from rakuten_mlops.serving.shadow_process import ShadowProcess

log = logging.getLogger(__name__)
CHALLENGER = "challenger"
BATCH_ROWS = 64
GATHER_S = 0.2  # after a wake-up, wait this long for company: fewer, larger predict calls
SHADOW_FAILURES = (*FAILURE_REASONS, "predict_error")


@dataclass(frozen=True)
class _Job:
    row: dict[str, Any]  # the model input: designation, description, image bytes or None
    logged: dict[str, Any]  # the champion's prediction-log record of the same listing
    size: int


def _size(row: dict[str, Any]) -> int:
    image = row.get("image")
    return len(row["designation"]) + len(row.get("description") or "") + (len(image) if image else 0)


def _no_alias(exc: BaseException) -> bool:
    """MLflow's answer when the model or its `challenger` alias does not exist."""
    code = getattr(exc, "error_code", "")
    return code in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST") and "not found" in str(exc)


class _ProcessLoader(AliasLoader):
    """The champion's loader (download, signature check) whose last step, loading the verified copy
    and its smoke prediction, happens in the scoring process."""

    def __init__(self, settings: Settings, alias: str, process: ShadowProcess) -> None:
        super().__init__(settings, alias)
        self.process = process

    def load(self, path: Path, version: str, run_id: str, source: str) -> LoadedModel:
        self.process.load(version, path)
        return LoadedModel(str(path), self.name, version, run_id, source, utcnow())


class ShadowMetrics:
    """The shadow series on the app's registry (per champion and challenger version)."""

    def __init__(self, metrics: ServingMetrics) -> None:
        r = metrics.registry
        labels = ["champion_version", "challenger_version"]
        self.scored = Counter(
            "rakuten_shadow_predictions", "Listings the challenger scored in shadow", labels, registry=r
        )
        self.agreed = Counter(
            "rakuten_shadow_agreements", "Shadow listings where the challenger predicted the champion's code",
            labels, registry=r,
        )  # fmt: skip
        self.confidence = Histogram(
            "rakuten_shadow_confidence", "Confidence of each model on the listings scored in shadow",
            ["role", "model_version"], buckets=CONFIDENCE_BUCKETS, registry=r,
        )  # fmt: skip
        self.classes = Counter(
            "rakuten_shadow_class_predictions", "Predicted codes of each model on shadow-scored listings",
            ["role", "model_version", "code"], registry=r,
        )  # fmt: skip
        self.failures = Counter(
            "rakuten_shadow_failures", "Challenger loads refused and challengers dropped, by reason",
            ["reason"], registry=r,
        )  # fmt: skip
        self.dropped = Counter(
            "rakuten_shadow_dropped", "Listings not scored in shadow because the queue was full", registry=r
        )
        self.queue = Gauge("rakuten_shadow_queue_size", "Listings waiting for the challenger", registry=r)
        self.loaded = Gauge("rakuten_challenger_loaded", "1 when a challenger is scored", registry=r)
        self.info = Info("rakuten_challenger", "The challenger scored in shadow", registry=r)
        for reason in SHADOW_FAILURES:
            self.failures.labels(reason=reason)
        self.loaded.set(0)


class ShadowScorer:
    """The challenger, its bounded queue and the thread that scores it."""

    def __init__(self, settings: Settings, metrics: ServingMetrics, prediction_log: PredictionLog) -> None:
        self.settings = settings
        self.process = ShadowProcess()
        self.loader: AliasLoader = _ProcessLoader(settings, CHALLENGER, self.process)
        self.prediction_log = prediction_log
        self.metrics = ShadowMetrics(metrics)
        self.current: LoadedModel | None = None
        self.last_error: str | None = None
        self.share = settings.shadow_share
        self._credit = 0.0  # deterministic sampling: every 1/share-th listing is scored
        self._jobs: deque[_Job] = deque()
        self._bytes = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._dropped_versions: dict[str, str] = {}  # version -> why it was dropped
        self.metrics.queue.set_function(lambda: len(self._jobs))

    # -- request path ----------------------------------------------------------------------
    def offer(self, row: dict[str, Any], logged: dict[str, Any]) -> bool:
        """Queue one served listing for the challenger; True when queued. Never blocks, never raises."""
        if self.current is None or self.share <= 0:
            return False
        try:
            size = _size(row)
            with self._lock:
                self._credit += self.share
                if self._credit < 1.0:
                    return False
                self._credit -= 1.0
                if (
                    len(self._jobs) >= self.settings.shadow_queue_rows
                    or self._bytes + size > self.settings.shadow_queue_bytes
                ):
                    self.metrics.dropped.inc()
                    return False
                self._jobs.append(_Job(row, logged, size))
                self._bytes += size
            self._wake.set()
            return True
        except Exception:  # the answer is already made: shadow trouble must never reach it
            log.exception("shadow: listing not queued")
            return False

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="shadow-scorer", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the thread and the scoring process; listings still waiting are not scored."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.process.stop()

    async def reload(self) -> None:
        """Follow the `challenger` alias: load a new version, or stop scoring when it is gone."""
        try:
            loaded = await asyncio.wait_for(
                asyncio.to_thread(self._fetch), self.settings.registry_timeout_seconds
            )
        except Exception as exc:
            if _no_alias(exc):
                self._set(None)
                self.last_error = None
                self.loader.pointer_path.unlink(missing_ok=True)  # its local copy may be pruned now
                await asyncio.to_thread(self.process.stop)  # its memory back until the next challenger
                return
            reason = failure_reason(exc)
            self.last_error = f"{reason}: {exc.__class__.__name__}: {exc}"[:500]
            self.metrics.failures.labels(reason=reason).inc()
            log.warning("challenger check failed (%s): %s", reason, self.last_error)
            return
        self.last_error = None
        if loaded is not None:
            self._set(loaded)

    def _fetch(self) -> LoadedModel | None:
        version = str(self.loader.alias_version().version)
        if version in self._dropped_versions:  # failed on live traffic: not loaded again
            self._set(None)
            self.process.stop()
            return None
        return self.loader.fetch(self.current.version if self.current else None)

    def _set(self, loaded: LoadedModel | None) -> None:
        self.current = loaded  # one reference assignment: atomic for the scoring thread
        if loaded is None:
            self.metrics.loaded.set(0)
            self.metrics.info.info({"version": "", "run_id": ""})
            return
        self.metrics.loaded.set(1)
        self.metrics.info.info({"version": loaded.version, "run_id": loaded.run_id or ""})
        log.info("scoring challenger %s version %s in shadow", loaded.name, loaded.version)

    def status(self) -> dict[str, Any]:
        """What the shadow scorer does now (for the admin route)."""
        return {
            "loaded_version": self.current.version if self.current else None,
            "process_pid": self.process.pid,  # the scoring process (nice 19), while one runs
            "share": self.share,
            "queued": len(self._jobs),
            "dropped_versions": dict(self._dropped_versions),
            "last_error": self.last_error,
        }

    # -- scoring thread --------------------------------------------------------------------
    def _take(self) -> list[_Job]:
        with self._lock:
            batch = [self._jobs.popleft() for _ in range(min(BATCH_ROWS, len(self._jobs)))]
            self._bytes -= sum(job.size for job in batch)
        return batch

    def _run(self) -> None:
        # This thread only moves batches and records results: the scoring is the child's, at nice 19.
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            if len(self._jobs) < BATCH_ROWS:
                self._stop.wait(GATHER_S)
            while not self._stop.is_set():
                batch = self._take()
                if not batch:
                    break
                self._score(batch)

    def _score(self, batch: list[_Job]) -> None:
        model = self.current
        if model is None:
            return  # dropped or removed since these were queued
        start = time.perf_counter()
        try:
            outputs = self.process.score(model.version, [job.row for job in batch], self._stop.is_set)
        except Exception as exc:
            if self._stop.is_set():
                return  # stopping is no failure of the challenger
            self._drop(model, exc)
            return
        ms = (time.perf_counter() - start) * 1000 / len(batch)
        for job, out in zip(batch, outputs, strict=True):
            self._record(model, job.logged, out, ms)

    def _drop(self, model: LoadedModel, exc: BaseException) -> None:
        why = f"predict_error: {exc.__class__.__name__}: {exc}"[:500]
        self._dropped_versions[model.version] = why
        self.metrics.failures.labels(reason="predict_error").inc()
        self.last_error = why
        if self.current is model:
            self._set(None)
        with self._lock:
            self._jobs.clear()
            self._bytes = 0
        self.process.stop()
        log.error("challenger version %s dropped: %s", model.version, why)

    def _record(self, model: LoadedModel, logged: dict[str, Any], out: dict[str, Any], ms: float) -> None:
        champion_version = str(logged["model_version"])
        m = self.metrics
        m.scored.labels(champion_version, model.version).inc()
        if int(out["prdtypecode"]) == int(logged["prdtypecode"]):
            m.agreed.labels(champion_version, model.version).inc()
        m.confidence.labels("champion", champion_version).observe(float(logged["probability"]))
        m.confidence.labels("challenger", model.version).observe(out["probability"])
        m.classes.labels("champion", champion_version, str(logged["prdtypecode"])).inc()
        m.classes.labels("challenger", model.version, str(out["prdtypecode"])).inc()
        self.prediction_log.add(
            "predictions",
            {
                **logged, "id": record_id(), "created_at": utcnow(),
                "model_name": model.name, "model_version": model.version,
                "prdtypecode": out["prdtypecode"], "probability": out["probability"],
                "top_k": out["top_k"], "modalities": out["modalities"], "latency_ms": ms,
                "shadow": True, "shadow_of": logged["id"],
            },
        )  # fmt: skip
