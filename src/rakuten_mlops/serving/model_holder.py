"""Holds the champion model: loads it, keeps a local copy, polls the alias and swaps atomically."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from rakuten_mlops.appdb import utcnow
from rakuten_mlops.config import Settings
from rakuten_mlops.infra import write_json_atomic
from rakuten_mlops.lifecycle import signing
from rakuten_mlops.serving.batcher import MicroBatcher, Row
from rakuten_mlops.serving.metrics import ServingMetrics
from rakuten_mlops.serving.predictor import predict_rows

log = logging.getLogger(__name__)
ALIAS = "champion"
KEEP_VERSIONS = 3
FAILURE_REASONS = ("unsigned", "bad_signature", "load_error", "timeout", "registry_error")


class ModelLoadError(Exception):
    """A downloaded version does not load or fails its smoke prediction."""


def _failure_reason(exc: BaseException) -> str:
    """The `reason` label of a failed champion check."""
    if isinstance(exc, signing.SignatureError):
        return exc.reason if exc.reason in FAILURE_REASONS else "bad_signature"
    if isinstance(exc, ModelLoadError):
        return "load_error"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return "registry_error"


@dataclass(frozen=True)
class LoadedModel:
    """A loaded pyfunc model and where it came from."""

    model: Any
    name: str
    version: str
    run_id: str
    source: str  # "registry" or "local-copy"
    loaded_at: datetime


@dataclass(frozen=True)
class ReloadResult:
    changed: bool
    version: str | None
    message: str


class ModelHolder:
    """The model being served, swapped in one assignment so no request sees a half-loaded model."""

    def __init__(self, settings: Settings, metrics: ServingMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.name = settings.model_name
        self.copies_dir = settings.serving_dir / "models" / re.sub(r"[^A-Za-z0-9_.-]", "_", self.name)
        self.current: LoadedModel | None = None
        self.last_check_at: datetime | None = None
        self.last_error: str | None = None
        self.batcher: MicroBatcher[LoadedModel] = MicroBatcher(
            lambda: self.current,
            lambda m, rows: predict_rows(m.model, rows),
            max_rows=settings.micro_batch_max_rows,
            wait_ms=settings.micro_batch_wait_ms,
            parallel=settings.micro_batch_parallel,
        )
        self._lock = asyncio.Lock()
        self._poll_task: asyncio.Task[None] | None = None
        key = settings.model_signing_key
        self.signing_key = key.get_secret_value() if key is not None else None
        self._refused: dict[tuple[str, str | None], str] = {}  # (version, signature) -> why
        self.reload_failures = Counter(
            "rakuten_model_reload_failures",
            "Champion checks that did not swap in a new model, by reason (the last good model stays)",
            ["reason"],
            registry=metrics.registry,
        )
        for reason in FAILURE_REASONS:
            self.reload_failures.labels(reason=reason)

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Load the champion (registry first, else the local copy) and start polling and batching."""
        await self.batcher.start()
        if self.signing_key is None:
            log.warning("RAKUTEN_MODEL_SIGNING_KEY is not set: model signatures are not checked")
        result = await self.reload()
        if self.current is None:
            loaded = await asyncio.to_thread(self._load_local_copy)
            if loaded is not None:
                self._swap(loaded)
                log.warning(
                    "registry unavailable (%s): serving local copy of version %s",
                    result.message,
                    loaded.version,
                )
            else:
                log.error("no model to serve yet (%s); polling the registry", result.message)
        if self.settings.model_poll_seconds > 0:
            self._poll_task = asyncio.create_task(self._poll(), name="champion-poll")

    async def stop(self) -> None:
        """Stop polling and batching."""
        if self._poll_task is not None:
            self._poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll_task
        await self.batcher.stop()

    async def predict(self, rows: list[Row]) -> tuple[LoadedModel, list[Row]]:
        """Predict rows through the micro-batcher."""
        return await self.batcher.submit(rows)

    # -- reload ----------------------------------------------------------------------------
    async def reload(self) -> ReloadResult:
        """Ask the registry for the champion and swap it in when its version changed."""
        async with self._lock:
            self.last_check_at = utcnow()
            try:
                loaded = await asyncio.wait_for(
                    asyncio.to_thread(self._fetch_champion), self.settings.registry_timeout_seconds
                )
            except Exception as exc:
                reason = _failure_reason(exc)
                self.last_error = f"{reason}: {exc.__class__.__name__}: {exc}"[:500]
                self.metrics.model_reloads.labels(result="failure").inc()
                self.reload_failures.labels(reason=reason).inc()
                log.warning(
                    "champion check failed (%s); keeping the model served: %s", reason, self.last_error
                )
                return ReloadResult(False, self.current.version if self.current else None, self.last_error)
            self.last_error = None
            if loaded is None:
                return ReloadResult(False, self.current.version if self.current else None, "unchanged")
            self._swap(loaded)
            self.metrics.model_reloads.labels(result="success").inc()
            return ReloadResult(True, loaded.version, f"now serving version {loaded.version}")

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.model_poll_seconds)
            await self.reload()

    def _swap(self, loaded: LoadedModel) -> None:
        self.current = loaded  # one reference assignment: atomic for every reader
        self.metrics.set_model(loaded.name, loaded.version, loaded.run_id)
        log.info("serving %s version %s (%s)", loaded.name, loaded.version, loaded.source)

    def _client(self) -> Any:
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.settings.tracking_uri, registry_uri=self.settings.registry_uri)

    def _fetch_champion(self) -> LoadedModel | None:
        """The champion when it differs from the current model (downloaded once to a local copy)."""
        client = self._client()
        mv = client.get_model_version_by_alias(self.name, ALIAS)
        version, run_id = str(mv.version), str(mv.run_id or "")
        if self.current is not None and self.current.version == version:
            return None
        signature = (mv.tags or {}).get(signing.SIGNATURE_TAG)
        refused = self._refused.get((version, signature))
        if refused is not None:  # the same version and tag as last time: no new download
            raise signing.SignatureError(refused, f"version {version} was refused: {refused}")
        target = self.copies_dir / f"v{version}"
        if not (target / "MLmodel").is_file():
            self._download(client, version, target)
        self._check_signature(target, version, signature)  # before loading: loading runs its code
        try:
            loaded = self._load(target, version, run_id, "registry")
        except Exception as exc:
            raise ModelLoadError(f"version {version} does not load or predict: {exc}") from exc
        self._write_pointer(version, run_id, signature)
        self._prune(keep=version)
        return loaded

    def _check_signature(self, target: Path, version: str, signature: str | None) -> None:
        """Refuse (and delete the copy of) a version whose signature does not verify."""
        if self.signing_key is None:
            return  # development without a key: signatures are not checked (logged at start)
        try:
            signing.verify(target, self.signing_key, signature)
        except signing.SignatureError as exc:
            shutil.rmtree(target, ignore_errors=True)
            if len(self._refused) > 100:
                self._refused.clear()
            self._refused[(version, signature)] = exc.reason
            log.error("refusing champion version %s: %s", version, exc)
            raise signing.SignatureError(exc.reason, f"version {version} refused: {exc}") from None

    def _download(self, client: Any, version: str, target: Path) -> None:
        import mlflow.artifacts

        uri = client.get_model_version_download_uri(self.name, version)
        tmp = self.copies_dir / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir(parents=True)
        try:
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=str(tmp), tracking_uri=self.settings.tracking_uri
            )
            shutil.rmtree(target, ignore_errors=True)
            Path(path).rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _load(self, path: Path, version: str, run_id: str, source: str) -> LoadedModel:
        import mlflow.pyfunc
        import pandas as pd

        model = mlflow.pyfunc.load_model(str(path))
        # A model that loads but cannot predict (e.g. pickled against older code) must never be
        # swapped in: the smoke prediction makes the load fail and the last good model stays.
        model.predict(pd.DataFrame({"designation": ["smoke test"], "description": [""], "image": [None]}))
        return LoadedModel(model, self.name, version, run_id, source, utcnow())

    def _write_pointer(self, version: str, run_id: str, signature: str | None) -> None:
        pointer = {"name": self.name, "version": version, "run_id": run_id, "signature": signature}
        write_json_atomic(self.copies_dir / "champion.json", pointer)

    def _load_local_copy(self) -> LoadedModel | None:
        pointer = self.copies_dir / "champion.json"
        try:
            meta = json.loads(pointer.read_text())
            path = self.copies_dir / f"v{meta['version']}"
            if self.signing_key is not None:
                signing.verify(path, self.signing_key, meta.get("signature"))
            return self._load(
                self.copies_dir / f"v{meta['version']}", str(meta["version"]), meta["run_id"], "local-copy"
            )
        except Exception as exc:
            log.warning("no usable local copy of the champion in %s: %s", self.copies_dir, exc)
            return None

    def _prune(self, keep: str) -> None:
        copies = sorted(
            (p for p in self.copies_dir.glob("v*") if p.is_dir()),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for old in copies[KEEP_VERSIONS:]:
            if old.name != f"v{keep}" and (self.current is None or old.name != f"v{self.current.version}"):
                shutil.rmtree(old, ignore_errors=True)
