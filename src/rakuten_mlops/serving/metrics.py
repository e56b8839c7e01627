"""Prometheus metrics of one app, in its own registry (the names are a contract with dashboards).

The monitoring metrics (drift, live quality, retrain decisions) are not here: the app registers
`rakuten_mlops.serving.exporter.MonitoringCollector` on the same registry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
UNMATCHED_ROUTE = "<unmatched>"


@dataclass
class ServingMetrics:
    """Every metric the API exports; one instance per app so tests can build many apps."""

    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))
    low_confidence_below: float = 0.5  # monitoring.review.confidence_below: the review queue's threshold

    def __post_init__(self) -> None:
        r = self.registry
        self.http_requests = Counter(
            "rakuten_http_requests", "HTTP requests by route template, method and status",
            ["route", "method", "status"], registry=r,
        )  # fmt: skip
        self.http_duration = Histogram(
            "rakuten_http_request_duration_seconds", "HTTP request duration by route template",
            ["route", "method"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.predictions = Counter(
            "rakuten_predictions", "Predictions by predicted product type code", ["code"], registry=r
        )
        self.confidence = Histogram(
            "rakuten_prediction_confidence", "Probability of the predicted class",
            buckets=CONFIDENCE_BUCKETS, registry=r,
        )  # fmt: skip
        self._by_code: dict[int, Any] = {}
        self.model_info = Info("rakuten_model", "The model being served", registry=r)
        self.model_loaded = Gauge("rakuten_model_loaded", "1 when a model is loaded", registry=r)
        self.model_reloads = Counter(
            "rakuten_model_reloads", "Model (re)loads by result", ["result"], registry=r
        )
        self.feedback = Counter("rakuten_feedback", "Feedback records received", registry=r)
        self.log_queue_size = Gauge(
            "rakuten_prediction_log_queue_size", "Prediction-log records waiting to be written", registry=r
        )
        self.review_images_dropped = Gauge(
            "rakuten_review_images_dropped",
            "Review-queue thumbnails not kept since start (pending-image bound reached, or the database"
            " was down at shutdown): those listings show in the queue without their image",
            registry=r,
        )
        self.low_confidence = Counter(
            "rakuten_low_confidence_predictions",
            "Served predictions less confident than the review threshold (they wait in the review queue)",
            registry=r,
        )
        self.review_threshold = Gauge(
            "rakuten_review_confidence_threshold", "Confidence below which a prediction goes to review",
            registry=r,
        )  # fmt: skip
        self.review_threshold.set(self.low_confidence_below)
        for result in ("success", "failure"):
            self.model_reloads.labels(result=result)
        self.model_loaded.set(0)

    def set_model(self, name: str, version: str, run_id: str) -> None:
        """Record the model now being served."""
        self.model_info.info({"name": name, "version": version, "run_id": run_id or ""})
        self.model_loaded.set(1)

    def observe_prediction(self, code: int, probability: float) -> None:
        """Count one prediction and its confidence."""
        counter = self._by_code.get(code)
        if counter is None:  # one series per product type code
            counter = self._by_code[code] = self.predictions.labels(code=str(code))
        counter.inc()
        self.confidence.observe(probability)
        if probability < self.low_confidence_below:
            self.low_confidence.inc()


class MetricsMiddleware:
    """Pure-ASGI middleware counting requests and timing them by route template (never raw paths)."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        self.app = app
        self.metrics = metrics
        # Each series' counter and histogram, by (route template, method, status): bounded, as
        # templates and statuses are (a raw path never becomes a label).
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED_ROUTE
            method = scope.get("method", "")
            key = (template, method, status)
            children = self._children.get(key)
            if children is None:  # `labels()` takes a lock and builds its key: once per series
                children = self._children[key] = (
                    self.metrics.http_requests.labels(route=template, method=method, status=str(status)),
                    self.metrics.http_duration.labels(route=template, method=method),
                )
            children[0].inc()
            children[1].observe(time.perf_counter() - start)
