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

from rakuten_mlops.appdb import utcnow
from rakuten_mlops.config import Settings
from rakuten_mlops.infra import write_json_atomic
from rakuten_mlops.serving.batcher import MicroBatcher, Row
from rakuten_mlops.serving.metrics import ServingMetrics
from rakuten_mlops.serving.predictor import predict_rows

log = logging.getLogger(__name__)
ALIAS = "champion"
KEEP_VERSIONS = 3


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

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Load the champion (registry first, else the local copy) and start polling and batching."""
        await self.batcher.start()
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
                self.last_error = f"{exc.__class__.__name__}: {exc}"[:500] or "timeout"
                self.metrics.model_reloads.labels(result="failure").inc()
                log.warning("champion check failed: %s", self.last_error)
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
        target = self.copies_dir / f"v{version}"
        if not (target / "MLmodel").is_file():
            self._download(client, version, target)
        loaded = self._load(target, version, run_id, "registry")
        self._write_pointer(version, run_id)
        self._prune(keep=version)
        return loaded

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

    def _write_pointer(self, version: str, run_id: str) -> None:
        pointer = {"name": self.name, "version": version, "run_id": run_id}
        write_json_atomic(self.copies_dir / "champion.json", pointer)

    def _load_local_copy(self) -> LoadedModel | None:
        pointer = self.copies_dir / "champion.json"
        try:
            meta = json.loads(pointer.read_text())
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
