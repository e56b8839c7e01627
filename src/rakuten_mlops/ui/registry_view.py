"""What the Models page shows, read from the MLflow registry (no Streamlit here)."""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from pathlib import Path

import pandas as pd

from rakuten_mlops.config import Settings
from rakuten_mlops.lifecycle.registry import CHAMPION, VersionRow, client, get_champion, list_versions
from rakuten_mlops.ui.labels import category_with_code

PER_CLASS_METRIC = re.compile(r"^test_f1_class_(\d+)$")
CONFUSION_ARTIFACTS = ("evaluation/confusion_fusion.png", "evaluation/confusion_text.png")


def _no_registry_yet(settings: Settings) -> bool:
    uri = settings.registry_uri
    return uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file()


def champion_version(settings: Settings) -> str | None:
    """Version holding the champion alias; None when there is none or the registry does not answer."""
    if _no_registry_yet(settings):
        return None
    try:
        champion = get_champion(client(settings), settings.model_name)
    except Exception:  # an unreachable registry: the caller shows what it knows without it
        return None
    return str(champion.version) if champion is not None else None


def registry_versions(settings: Settings) -> list[VersionRow]:
    """Every registered version, newest first, the champion's `aliases` filled in.

    Raises when the registry cannot be reached. A default SQLite registry that does not exist
    yet means nothing was trained: it is not created just to be read.
    """
    if _no_registry_yet(settings):
        return []
    c = client(settings)
    rows = list_versions(c, settings.model_name)
    # Version searches do not always carry aliases: ask for the champion alias itself.
    champion = get_champion(c, settings.model_name)
    for row in rows:
        if champion is not None and row.version == str(champion.version) and CHAMPION not in row.aliases:
            row.aliases.append(CHAMPION)
    return rows


def champion_of(rows: list[VersionRow]) -> VersionRow | None:
    return next((r for r in rows if CHAMPION in r.aliases), None)


def _metric(row: VersionRow, *names: str) -> float | None:
    for name in names:
        if name in row.metrics:
            return float(row.metrics[name])
    return None


def versions_frame(rows: list[VersionRow]) -> pd.DataFrame:
    """One line per version: aliases, headline metrics, and the promotion decision with its reasons."""
    return pd.DataFrame(
        [
            {
                "version": r.version,
                "aliases": ", ".join(r.aliases),
                "created": dt.datetime.fromtimestamp(r.created / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M")
                if r.created
                else "",
                "modalities": r.tags.get("modalities", ""),
                "gold weighted F1": _metric(r, "gold_system_weighted_f1"),
                "test weighted F1": _metric(r, "test_system_weighted_f1"),
                "test macro F1": _metric(r, "test_system_macro_f1"),
                "test accuracy": _metric(r, "test_system_accuracy"),
                "decision": r.tags.get("promotion.decision", ""),
                "reasons": r.tags.get("promotion.reasons", ""),
                "replaced": r.tags.get("previous_champion", ""),
            }
            for r in rows
        ]
    )


def per_class_f1(row: VersionRow, lang: str) -> pd.DataFrame:
    """Test-set F1 of each class logged with the version's run, lowest first."""
    out = []
    for name, value in row.metrics.items():
        match = PER_CLASS_METRIC.match(name)
        if match:
            out.append({"category": category_with_code(int(match.group(1)), lang), "f1": float(value)})
    frame = pd.DataFrame(out, columns=["category", "f1"])
    return frame.sort_values("f1", kind="stable").reset_index(drop=True)


def confusion_image(settings: Settings, run_id: str) -> tuple[bytes, str] | None:
    """The confusion-matrix PNG logged with a run (the fused model's when there is one)."""
    if not run_id:
        return None
    c = client(settings)
    try:
        logged = {a.path for a in c.list_artifacts(run_id, "evaluation")}
    except Exception:  # the artifact store may be unreachable: the page says so
        return None
    for path in CONFUSION_ARTIFACTS:
        if path in logged:
            with tempfile.TemporaryDirectory(prefix="rakuten-ui-") as tmp:
                local = c.download_artifacts(run_id, path, tmp)
                return Path(local).read_bytes(), path
    return None
