"""Fetching the version behind a registry alias: download once, verify its signature, load, smoke-test.

The champion (`ModelHolder`) and the challenger (`ShadowScorer`) go through the same checks: a
version whose signature does not verify is refused before its code is loaded, and a version that
loads but cannot predict is never swapped in.
"""

from __future__ import annotations

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
from rakuten_mlops.lifecycle import signing

log = logging.getLogger(__name__)
KEEP_VERSIONS = 3
FAILURE_REASONS = ("unsigned", "bad_signature", "load_error", "timeout", "registry_error")


class ModelLoadError(Exception):
    """A downloaded version does not load or fails its smoke prediction."""


def failure_reason(exc: BaseException) -> str:
    """The `reason` label of a failed alias check."""
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


def load_checked_copy(path: Path) -> Any:
    """The pyfunc model of a local copy (its signature already checked), after one smoke prediction."""
    import mlflow.pyfunc

    from rakuten_mlops.serving.predictor import predict_rows

    model = mlflow.pyfunc.load_model(str(path))
    # A model that loads but cannot predict (e.g. pickled against older code) must never be
    # swapped in: the smoke prediction makes the load fail and the last good model stays. It
    # goes the way requests go, so what the model prepares on its first call is ready.
    predict_rows(model, [{"designation": "smoke test", "description": "", "image": None}])
    return model


class AliasLoader:
    """Loads the version an alias points at, keeping local copies under ``<serving>/models/<name>``."""

    def __init__(self, settings: Settings, alias: str) -> None:
        self.settings = settings
        self.alias = alias
        self.name = settings.model_name
        self.copies_dir = settings.serving_dir / "models" / re.sub(r"[^A-Za-z0-9_.-]", "_", self.name)
        key = settings.model_signing_key
        self.signing_key = key.get_secret_value() if key is not None else None
        self._refused: dict[tuple[str, str | None], str] = {}  # (version, signature) -> why

    @property
    def pointer_path(self) -> Path:
        return self.copies_dir / f"{self.alias}.json"

    def client(self) -> Any:
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.settings.tracking_uri, registry_uri=self.settings.registry_uri)

    def alias_version(self) -> Any:
        """The registry's model version behind the alias (MlflowException when there is none)."""
        return self.client().get_model_version_by_alias(self.name, self.alias)

    def fetch(self, current_version: str | None, refuse: dict[str, str] | None = None) -> LoadedModel | None:
        """The alias's version when it differs from `current_version` (downloaded once to a local copy).

        Args:
            refuse: versions the caller will not take again (version -> reason), e.g. a
                challenger that failed on live traffic: refused without a download.
        """
        client = self.client()
        mv = client.get_model_version_by_alias(self.name, self.alias)
        version, run_id = str(mv.version), str(mv.run_id or "")
        if current_version == version:
            return None
        if refuse and version in refuse:
            raise ModelLoadError(f"version {version} was dropped: {refuse[version]}")
        signature = (mv.tags or {}).get(signing.SIGNATURE_TAG)
        refused = self._refused.get((version, signature))
        if refused is not None:  # the same version and tag as last time: no new download
            raise signing.SignatureError(refused, f"version {version} was refused: {refused}")
        target = self.copies_dir / f"v{version}"
        if not (target / "MLmodel").is_file():
            self._download(client, version, target)
        self._check_signature(target, version, signature)  # before loading: loading runs its code
        try:
            loaded = self.load(target, version, run_id, "registry")
        except Exception as exc:
            raise ModelLoadError(f"version {version} does not load or predict: {exc}") from exc
        self._write_pointer(version, run_id, signature)
        self.prune({version} | ({current_version} if current_version else set()))
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
            log.error("refusing %s version %s: %s", self.alias, version, exc)
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

    def load(self, path: Path, version: str, run_id: str, source: str) -> LoadedModel:
        """Load a local copy and make one smoke prediction with it."""
        return LoadedModel(load_checked_copy(path), self.name, version, run_id, source, utcnow())

    def _write_pointer(self, version: str, run_id: str, signature: str | None) -> None:
        pointer = {"name": self.name, "version": version, "run_id": run_id, "signature": signature}
        write_json_atomic(self.pointer_path, pointer)

    def load_local_copy(self) -> LoadedModel | None:
        """The copy the pointer file names, when its signature (with a key) still verifies."""
        try:
            meta = json.loads(self.pointer_path.read_text())
            path = self.copies_dir / f"v{meta['version']}"
            if self.signing_key is not None:
                signing.verify(path, self.signing_key, meta.get("signature"))
            return self.load(path, str(meta["version"]), meta["run_id"], "local-copy")
        except Exception as exc:
            log.warning("no usable local copy of the %s in %s: %s", self.alias, self.copies_dir, exc)
            return None

    def _pointed_versions(self) -> set[str]:
        """Versions a pointer file (of any alias) names: their copies are kept."""
        out = set()
        for pointer in self.copies_dir.glob("*.json"):
            try:
                out.add(str(json.loads(pointer.read_text())["version"]))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return out

    def prune(self, keep: set[str]) -> None:
        """Delete old local copies beyond the newest few, never one in `keep` or named by a pointer."""
        keep = keep | self._pointed_versions()
        copies = sorted(
            (p for p in self.copies_dir.glob("v*") if p.is_dir()),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for old in copies[KEEP_VERSIONS:]:
            if old.name.removeprefix("v") not in keep:
                shutil.rmtree(old, ignore_errors=True)
