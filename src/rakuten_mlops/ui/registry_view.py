"""What the Models page shows, built from the API's registry routes (no Streamlit here)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from rakuten_mlops.ui.labels import category_with_code

CHAMPION = "champion"


def champion_of(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((r for r in rows if CHAMPION in r["aliases"]), None)


def _metric(row: dict[str, Any], *names: str) -> float | None:
    for name in names:
        if name in row["metrics"]:
            return float(row["metrics"][name])
    return None


def _created(value: str | None) -> str:
    if not value:
        return ""
    return dt.datetime.fromisoformat(value).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")


def versions_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One line per version: aliases, headline metrics, and the promotion decision with its reasons."""
    return pd.DataFrame(
        [
            {
                "version": r["version"],
                "aliases": ", ".join(r["aliases"]),
                "created": _created(r.get("created_at")),
                "modalities": r["tags"].get("modalities", ""),
                "gold weighted F1": _metric(r, "gold_system_weighted_f1"),
                "test weighted F1": _metric(r, "test_system_weighted_f1"),
                "test macro F1": _metric(r, "test_system_macro_f1"),
                "test accuracy": _metric(r, "test_system_accuracy"),
                "decision": r["tags"].get("promotion.decision", ""),
                "reasons": r["tags"].get("promotion.reasons", ""),
                "replaced": r["tags"].get("previous_champion", ""),
            }
            for r in rows
        ]
    )


def per_class_f1(detail: dict[str, Any], lang: str) -> pd.DataFrame:
    """Test-set F1 of each class (as the API lists them, lowest first), category names in `lang`."""
    out = [
        {"category": category_with_code(c["code"], lang), "f1": float(c["f1"])}
        for c in detail["per_class_f1"]
    ]
    return pd.DataFrame(out, columns=["category", "f1"])
