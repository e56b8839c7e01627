"""What the Monitoring page shows, built from the API's monitoring routes (no Streamlit here)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd


def drift_columns(summary: dict[str, Any]) -> pd.DataFrame:
    """One row per monitored column: its test, score, threshold and whether it drifted."""
    rows = [
        {
            "column": column,
            "description": info.get("description", ""),
            "test": info.get("test"),
            "score": info.get("score"),
            "threshold": info.get("threshold"),
            "drifted": bool(info.get("drifted")),
        }
        for column, info in summary.get("columns", {}).items()
    ]
    return pd.DataFrame(rows, columns=["column", "description", "test", "score", "threshold", "drifted"])


def drift_history(reports: list[dict[str, Any]]) -> pd.DataFrame:
    """Drift share of each report over time (oldest first)."""
    rows = [
        {
            "time": pd.Timestamp(r["created_at"]),
            "drift_share": float(r.get("drift_share", 0.0)),
            "drifted": ", ".join(r.get("drifted_columns", [])),
            "current": (r.get("current") or {}).get("label", ""),
        }
        for r in reports
        if r.get("created_at")
    ]
    return pd.DataFrame(rows, columns=["time", "drift_share", "drifted", "current"]).sort_values("time")


def series(points: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    """A time series from the API (ISO times) as a frame with UTC timestamps."""
    frame = pd.DataFrame(points, columns=columns)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame


P_VALUE_TESTS = {
    "ks", "chisquare", "chisquare_homogeneity", "z", "fisher_exact", "g_test", "t_test", "cramer_von_mises",
}  # fmt: skip
DISTANCE_TESTS = {
    "wasserstein", "psi", "jensenshannon", "kl_div", "hellinger", "energy_dist", "empirical_mmd",
}  # fmt: skip
TEST_NAMES = {
    "ks": "Kolmogorov–Smirnov test",
    "chisquare": "chi-square test",
    "chisquare_homogeneity": "chi-square test of homogeneity",
    "text_domain_auc": "text domain classifier",
}


def readable(value: object, digits: int = 3) -> str:
    """A score for people: ``0.866``, ``< 0.001 (2.2e-16)``, ``–`` when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    x = float(value)  # type: ignore[arg-type]
    if x == 0:
        return "0"
    if abs(x) < 10**-digits:
        return f"< {10**-digits:.{digits}f} ({x:.1e})"
    if abs(x) >= 10**6:
        return f"{x:.2e}"
    return f"{x:.{digits}f}"


def rule_in_words(test: object, threshold: object) -> str:
    """What a column's drift test measures and when it says "drifted", in plain words."""
    name = str(test or "")
    t = readable(threshold)
    if name == "text_domain_auc":
        level = float(threshold) if isinstance(threshold, int | float) else 0.0
        return (
            "A classifier tries to tell reference texts from current ones; the score is its ROC AUC "
            "(0.5: it cannot tell them apart). Drifted when the AUC is above what chance gives "
            f"{level:.0%} of the time for these sample sizes: {t} is a quantile of "
            "chance, not an AUC, so a score below it can still be drift."
        )
    if name in P_VALUE_TESTS:
        return (
            f"{TEST_NAMES.get(name, name)}: the score is a p-value, the chance of a difference this large "
            f"between reference and current if nothing changed. Drifted when it is below {t}."
        )
    if name in DISTANCE_TESTS:
        return f"{name} distance between reference and current: drifted when it is at least {t}."
    return f"{name}: drifted when its test fails at threshold {t}."


def short_rule(test: object, threshold: object) -> str:
    """A column's drift rule in a few words, for a table cell (`rule_in_words` says it in full)."""
    name, t = str(test or ""), readable(threshold)
    if name == "text_domain_auc":
        level = float(threshold) if isinstance(threshold, int | float) else 0.0
        return f"drift if the ROC AUC beats chance's {level:.0%} quantile"
    if name in P_VALUE_TESTS:
        return f"drift if p-value < {t}"
    if name in DISTANCE_TESTS:
        return f"drift if distance ≥ {t}"
    return f"drift if the test fails at {t}"


def drift_table(summary: dict[str, Any]) -> pd.DataFrame:
    """`drift_columns` for people: readable scores and each test's rule in short words."""
    frame = drift_columns(summary)
    frame["score"] = [readable(v) for v in frame["score"]]
    frame["rule"] = [short_rule(t, h) for t, h in zip(frame["test"], frame["threshold"], strict=True)]
    frame["threshold"] = [readable(v) for v in frame["threshold"]]
    return frame[["column", "drifted", "score", "rule", "threshold", "test", "description"]]


def rules_in_words(summary: dict[str, Any]) -> list[str]:
    """Each test used in a report, said once in full (what its score is and when it means drift)."""
    seen: dict[tuple[str, str], str] = {}
    for info in (summary.get("columns") or {}).values():
        key = (str(info.get("test")), str(info.get("threshold")))
        seen.setdefault(key, rule_in_words(info.get("test"), info.get("threshold")))
    return list(seen.values())


def drift_heatmap(reports: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (report, column): whether it drifted and its score, for a heatmap over time."""
    rows = []
    for r in reports:
        if not r.get("created_at"):
            continue
        when = pd.Timestamp(r["created_at"])
        batch = f"{when:%Y-%m-%d %H:%M} · {(r.get('current') or {}).get('label', '')}"
        for column, info in (r.get("columns") or {}).items():
            rows.append(
                {
                    "time": when,
                    "batch": batch,
                    "column": column,
                    "drifted": "drifted" if info.get("drifted") else "stable",
                    "score": readable(info.get("score")),
                    "rule": rule_in_words(info.get("test"), info.get("threshold")),
                }
            )
    frame = pd.DataFrame(rows, columns=["time", "batch", "column", "drifted", "score", "rule"])
    return frame.sort_values("time")


def reference_warning(summary: dict[str, Any], champion: str | None) -> str | None:
    """Why the drift reference may not be the serving champion's training data; None when it is."""
    ref = summary.get("reference") or {}
    if ref.get("warning"):
        return f"The drift reference is NOT the champion's training data: {ref['warning']}."
    if ref and ref.get("is_champion") is False:
        return f"The drift reference is NOT the champion's training data ({ref.get('source', 'unknown')})."
    version = ref.get("champion_version")
    if champion is not None and version is not None and str(version) != str(champion):
        return (
            f"The drift reference is the training data of version {version}, but version {champion} "
            "is champion now: run a new drift check to compare with the champion's own data."
        )
    if not ref:
        return "This report does not say what its reference data was."
    return None


def live_headline(f1_over_time: pd.DataFrame, champion: str | None) -> dict[str, Any] | None:
    """Latest live weighted F1 of the champion (else of the newest version), its rows and trend."""
    if f1_over_time.empty:
        return None
    frame = f1_over_time.sort_values("time")
    version = champion if champion in set(frame["model_version"]) else str(frame["model_version"].iloc[-1])
    mine = frame[frame["model_version"] == version]
    last = mine.iloc[-1]
    trend = float(last["weighted_f1"] - mine.iloc[-2]["weighted_f1"]) if len(mine) > 1 else None
    return {
        "version": version,
        "f1": float(last["weighted_f1"]),
        "n": int(last["n"]),
        "total": int(mine["n"].sum()),
        "trend": trend,
        "time": last["time"],
    }


# 27 distinct colours (Tableau 20 and 7 more), one per product type in code order: a class keeps
# its colour in every chart.
PALETTE = [
    "#4e79a7", "#a0cbe8", "#f28e2b", "#ffbe7d", "#59a14f", "#8cd17d", "#b6992d", "#f1ce63", "#499894",
    "#86bcb6", "#e15759", "#ff9d9a", "#79706e", "#bab0ac", "#d37295", "#fabfd2", "#b07aa1", "#d4a6c8",
    "#9d7660", "#d7b5a6", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#17becf",
]  # fmt: skip
