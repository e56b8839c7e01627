"""MLflow tracking and registry operations: experiment, versions, the `champion` alias."""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from rakuten_mlops.config import Settings
from rakuten_mlops.errors import RakutenError
from rakuten_mlops.lifecycle.model_card import CARD_DIR, CARD_FILES

CHAMPION = "champion"


class RegistryError(RakutenError, RuntimeError):
    """A registry operation cannot be done (unknown version, nothing to roll back to, ...)."""


def configure_mlflow(settings: Settings) -> str:
    """Point MLflow at the configured tracking/registry URIs; return the experiment id."""
    settings.home.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.registry_uri)
    exp = mlflow.get_experiment_by_name(settings.experiment_name)
    if exp is not None:
        return str(exp.experiment_id)
    return str(
        mlflow.create_experiment(settings.experiment_name, artifact_location=settings.artifact_location)
    )


def client(settings: Settings) -> MlflowClient:
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)


def get_alias(c: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version holding `alias`, or None."""
    try:
        return c.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def get_champion(c: MlflowClient, name: str) -> ModelVersion | None:
    """The version holding the `champion` alias, or None."""
    return get_alias(c, name, CHAMPION)


def find_version_by_tag(c: MlflowClient, name: str, key: str, value: str) -> ModelVersion | None:
    """A version of `name` whose tag `key` equals `value` (idempotent registration)."""
    try:
        versions = c.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return None
    for v in versions:
        if v.tags.get(key) == value:
            return v
    return None


def set_champion(c: MlflowClient, name: str, version: str, reasons: list[str], how: str) -> str | None:
    """Move the alias to `version`; record the previous champion on it for rollback."""
    try:
        c.get_model_version(name, version)
    except MlflowException as exc:
        raise RegistryError(f"model {name!r} has no version {version}") from exc
    previous = get_champion(c, name)
    c.set_registered_model_alias(name, CHAMPION, version)
    if previous is not None and str(previous.version) != str(version):
        c.set_model_version_tag(name, version, "previous_champion", str(previous.version))
    c.set_model_version_tag(name, version, "promotion.decision", how)
    c.set_model_version_tag(name, version, "promotion.reasons", "; ".join(reasons)[:4900])
    return str(previous.version) if previous is not None else None


GATE_PREFIX = "gate."


def record_gate(c: MlflowClient, name: str, version: str, result: dict[str, Any]) -> None:
    """Keep the promotion gate's comparison on the version as `gate.*` tags.

    Unlike ``promotion.decision``/``promotion.reasons`` (which a manual promotion or a rollback
    overwrites), these stay: both F1 scores were measured on the same gold rows at gate time.
    """
    interval = result.get("interval") or {}
    tags = {
        "verdict": "passed" if result.get("promote") or result.get("challenger") else "rejected",
        "challenger_f1": result.get("challenger_gold_weighted_f1"),
        "champion_f1": result.get("champion_gold_weighted_f1"),
        "champion_version": result.get("champion_before"),
        "gold_rows": interval.get("rows"),
        "gain_low": interval.get("low") if result.get("champion_before") else None,
        "gain_high": interval.get("high") if result.get("champion_before") else None,
        "level": interval.get("level"),
        "reasons": "; ".join(result.get("reasons") or [])[:4900],
        "decided_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    for key, value in tags.items():
        if value is not None and value != "":
            c.set_model_version_tag(name, version, GATE_PREFIX + key, str(value))


def gate_of(tags: dict[str, str]) -> dict[str, Any] | None:
    """The gate's comparison recorded on a version (see `record_gate`); None when it never met the gate."""
    raw = {k.removeprefix(GATE_PREFIX): v for k, v in tags.items() if k.startswith(GATE_PREFIX)}
    if "challenger_f1" not in raw:
        return None

    def number(key: str) -> float | None:
        try:
            return float(raw[key]) if key in raw else None
        except ValueError:
            return None

    rows = number("gold_rows")
    return {
        "verdict": raw.get("verdict", ""),
        "challenger_f1": number("challenger_f1"),
        "champion_f1": number("champion_f1"),
        "champion_version": raw.get("champion_version"),
        "gold_rows": int(rows) if rows is not None else None,
        "gain_low": number("gain_low"),
        "gain_high": number("gain_high"),
        "level": number("level"),
        "reasons": raw.get("reasons", ""),
        "decided_at": raw.get("decided_at"),
    }


def rollback(c: MlflowClient, name: str) -> tuple[str, str]:
    """Give `champion` back to the version it replaced; returns (from, to)."""
    current = get_champion(c, name)
    if current is None:
        raise RegistryError(f"model {name!r} has no champion to roll back from")
    target = current.tags.get("previous_champion")
    if not target:
        raise RegistryError(f"version {current.version} did not replace a champion: nothing to roll back to")
    c.set_registered_model_alias(name, CHAMPION, target)
    c.set_model_version_tag(name, str(current.version), "promotion.decision", f"rolled back to v{target}")
    return str(current.version), str(target)


@dataclass(frozen=True)
class VersionRow:
    version: str
    aliases: list[str]
    created: int
    run_id: str
    tags: dict[str, str]
    metrics: dict[str, float]


def list_versions(c: MlflowClient, name: str) -> list[VersionRow]:
    """All versions, newest first, with their run's headline metrics."""
    try:
        versions = c.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return []
    # search_model_versions does not fill `aliases`; the registered model knows them.
    aliases: dict[str, list[str]] = {}
    try:
        for alias, version in (c.get_registered_model(name).aliases or {}).items():
            aliases.setdefault(str(version), []).append(alias)
    except MlflowException:
        pass
    rows = []
    for v in sorted(versions, key=lambda v: int(v.version), reverse=True):
        metrics: dict[str, Any] = {}
        if v.run_id:
            try:
                metrics = c.get_run(v.run_id).data.metrics
            except MlflowException:
                metrics = {}
        rows.append(
            VersionRow(
                str(v.version),
                sorted(set(v.aliases or []) | set(aliases.get(str(v.version), []))),
                v.creation_timestamp,
                v.run_id or "",
                dict(v.tags),
                metrics,
            )
        )
    return rows


PER_CLASS_METRIC = re.compile(r"^test_f1_class_(\d+)$")
CONFUSION_ARTIFACTS = ("evaluation/confusion_fusion.png", "evaluation/confusion_text.png")


def registry_missing(settings: Settings) -> bool:
    """A default SQLite registry that does not exist yet: nothing was trained (reading must not create it)."""
    uri = settings.registry_uri
    return uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file()


def versions_with_champion(settings: Settings) -> list[VersionRow]:
    """Every registered version, newest first, the champion's `aliases` filled in.

    Raises MlflowException (or a connection error) when the registry cannot be reached.
    """
    if registry_missing(settings):
        return []
    c = client(settings)
    rows = list_versions(c, settings.model_name)
    # Version searches do not always carry aliases: ask for the champion alias itself.
    champion = get_champion(c, settings.model_name)
    for row in rows:
        if champion is not None and row.version == str(champion.version) and CHAMPION not in row.aliases:
            row.aliases.append(CHAMPION)
    return rows


def per_class_f1(row: VersionRow) -> list[tuple[int, float]]:
    """Test-set F1 of each class logged with the version's run, lowest first: (code, f1)."""
    out = []
    for name, value in row.metrics.items():
        match = PER_CLASS_METRIC.match(name)
        if match:
            out.append((int(match.group(1)), float(value)))
    return sorted(out, key=lambda item: item[1])


def confusion_artifact(settings: Settings, run_id: str) -> str | None:
    """Artifact path of the confusion-matrix PNG logged with a run (the fused model's when there is one)."""
    if not run_id:
        return None
    try:
        logged = {a.path for a in client(settings).list_artifacts(run_id, "evaluation")}
    except Exception:  # an artifact store that does not answer: the image is simply not available
        return None
    return next((path for path in CONFUSION_ARTIFACTS if path in logged), None)


def confusion_image(settings: Settings, run_id: str) -> tuple[bytes, str] | None:
    """The confusion-matrix PNG logged with a run and its artifact path; None when there is none."""
    path = confusion_artifact(settings, run_id)
    if path is None:
        return None
    with tempfile.TemporaryDirectory(prefix="rakuten-registry-") as tmp:
        local = client(settings).download_artifacts(run_id, path, tmp)
        return Path(local).read_bytes(), path


CONFUSION_COUNTS = ("evaluation/confusion_fusion.json", "evaluation/confusion_text.json")
EVALUATION_REPORT = "evaluation/metrics.json"


def _run_json(settings: Settings, run_id: str, paths: tuple[str, ...]) -> tuple[dict[str, Any], str] | None:
    """The first of `paths` logged with the run, parsed; None when none is (or the store does not answer)."""
    if not run_id:
        return None
    c = client(settings)
    try:
        logged = {a.path for a in c.list_artifacts(run_id, "evaluation")}
    except Exception:  # an artifact store that does not answer: the data is simply not available
        return None
    path = next((p for p in paths if p in logged), None)
    if path is None:
        return None
    with tempfile.TemporaryDirectory(prefix="rakuten-registry-") as tmp:
        return json.loads(Path(c.download_artifacts(run_id, path, tmp)).read_text(encoding="utf-8")), path


def evaluation_of(settings: Settings, run_id: str) -> dict[str, Any]:
    """What a version's run measured: per-class test scores with row counts, and confusion counts.

    Returns ``{"test": metrics or None, "gold_rows": int or None, "confusion": counts or None}``;
    runs logged before these files existed give None parts.
    """
    report = _run_json(settings, run_id, (EVALUATION_REPORT,))
    confusion = _run_json(settings, run_id, CONFUSION_COUNTS)
    test = gold = None
    if report is not None:
        test = report[0].get("test", {}).get("system")
        gold = report[0].get("gold", {}).get("system")
    return {
        "test": test,
        "gold_rows": int(gold["n"]) if gold and "n" in gold else None,
        "confusion": {**confusion[0], "artifact": confusion[1]} if confusion else None,
    }


class CardMissing(RegistryError):
    """The version exists but no model card was logged with it."""


def model_card(settings: Settings, version: str, kind: str = "markdown") -> str:
    """The model card (``markdown`` or ``html``) logged with `version`'s run.

    Raises RegistryError for an unknown version, CardMissing for a version without a card.
    """
    if kind not in ("markdown", "html"):
        raise RegistryError(f"unknown card format {kind!r}; use markdown or html")
    if registry_missing(settings):
        raise RegistryError(
            f"model {settings.model_name!r} has no version {version}: nothing is registered yet"
        )
    c = client(settings)
    try:
        mv = c.get_model_version(settings.model_name, version)
    except MlflowException as exc:
        raise RegistryError(f"model {settings.model_name!r} has no version {version}") from exc
    path = f"{CARD_DIR}/{CARD_FILES[kind]}"
    logged = {a.path for a in c.list_artifacts(mv.run_id, CARD_DIR)} if mv.run_id else set()
    if path not in logged:
        raise CardMissing(
            f"version {version} has no model card: it was registered before model cards existed "
            "(or by hand); a version registered by `rakuten-mlops pipeline run` gets one"
        )
    with tempfile.TemporaryDirectory(prefix="rakuten-card-") as tmp:
        text = Path(c.download_artifacts(str(mv.run_id), path, tmp)).read_text(encoding="utf-8")
    # A version created by hand from another version's run would show that version's card.
    named = re.search(r"version (\d+)", text)
    if named is not None and named.group(1) != str(version):
        raise CardMissing(
            f"version {version} has no model card of its own: it was created from the run of "
            f"version {named.group(1)} (see `rakuten-mlops models card {named.group(1)}`)"
        )
    return text


def champion_version(settings: Settings) -> str | None:
    """Version holding the champion alias; None when there is none or the registry does not answer."""
    if registry_missing(settings):
        return None
    try:
        champion = get_champion(client(settings), settings.model_name)
    except Exception:  # an unreachable registry: callers show what they know without it
        return None
    return str(champion.version) if champion is not None else None


def redact(uri: str) -> str:
    """A URI without its password, for display."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
