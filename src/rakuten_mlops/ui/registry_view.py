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


def _rows_text(rows: float | None) -> str:
    return f"{int(rows)} rows" if rows is not None else "rows unknown"


def gate_cell(tags: dict[str, str]) -> str:
    """The versions table's gate column: both scores on the same gold rows, or why there are none."""
    if "gate.challenger_f1" not in tags:
        return "not compared by the gate"
    mine = float(tags["gate.challenger_f1"])
    rows = tags.get("gate.gold_rows", "?")
    if "gate.champion_f1" not in tags:
        return f"{mine:.3f} (no champion then; {rows} gold rows)"
    theirs = float(tags["gate.champion_f1"])
    return f"{mine:.3f} vs v{tags.get('gate.champion_version', '?')} {theirs:.3f} ({rows} gold rows)"


def versions_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """`versions_frame` with the row counts behind each F1 and the gate's same-rows comparison."""
    frame = versions_frame(rows)
    frame.insert(5, "gold rows", [_metric(r, "gold_rows") for r in rows])
    frame.insert(7, "test rows", [_metric(r, "test_rows") for r in rows])
    frame.insert(frame.columns.get_loc("decision"), "gate: F1 vs champion, same gold rows", [
        gate_cell(r["tags"]) for r in rows
    ])  # fmt: skip
    return frame


def metric_with_rows(row: dict[str, Any], metric: str, rows_metric: str) -> tuple[str, str]:
    """A headline F1 and what it was measured on, for `st.metric` (value, help)."""
    value = _metric(row, metric)
    if value is None:
        return "–", "not logged"
    return f"{value:.3f}", f"measured on {_rows_text(_metric(row, rows_metric))}"


def head_to_head(gate: dict[str, Any] | None, version: str, champion: str | None) -> dict[str, Any]:
    """What the gate compared for `version`, in words and numbers (for the Models page)."""
    if gate is None:
        return {
            "version": version,
            "compared": False,
            "text": (
                f"Version {version} never met the promotion gate (registered by hand, or before the "
                "gate recorded its comparison): no comparison on the same gold rows exists for it. "
                "Its gold F1 in the table was measured on its own gold set."
            ),
        }
    against = gate.get("champion_version")
    out: dict[str, Any] = {
        "version": version,
        "compared": True,
        "verdict": gate["verdict"],
        "rows": gate.get("gold_rows"),
        "mine": gate.get("challenger_f1"),
        "theirs": gate.get("champion_f1"),
        "against": against,
        "decided_at": gate.get("decided_at"),
        "reasons": gate.get("reasons", ""),
    }
    if against is None:
        out["text"] = (
            f"When version {version} met the gate there was no champion: it was judged against "
            f"min_f1 alone ({_rows_text(out['rows'])} of gold)."
        )
        return out
    gain = (out["mine"] or 0.0) - (out["theirs"] or 0.0)
    interval = ""
    if gate.get("gain_low") is not None and gate.get("gain_high") is not None:
        level = gate.get("level") or 0.95
        interval = f", {level:.0%} interval [{gate['gain_low']:+.4f}, {gate['gain_high']:+.4f}]"
    out["gain"] = gain
    out["text"] = (
        f"Gate {gate['verdict']}: version {version} {out['mine']:.4f} vs champion v{against} "
        f"{out['theirs']:.4f} on the same {_rows_text(out['rows'])} of gold (gain {gain:+.4f}{interval})."
    )
    if champion is not None and champion not in (against, version):
        out["text"] += f" The champion is now version {champion}: this comparison is with v{against}."
    return out


def class_scores(evaluation: dict[str, Any], lang: str) -> pd.DataFrame:
    """Per-class test F1 with the number of test rows of each class, category names in `lang`."""
    rows = [
        {
            "category": f"{category_with_code(c['code'], lang)} · {c['support']} rows",
            "f1": float(c["f1"]),
            "precision": float(c["precision"]),
            "recall": float(c["recall"]),
            "rows": int(c["support"]),
        }
        for c in evaluation.get("per_class", [])
    ]
    return pd.DataFrame(rows, columns=["category", "f1", "precision", "recall", "rows"])


def confusion_cells(confusion: dict[str, Any], lang: str) -> pd.DataFrame:
    """One row per (true, predicted) cell: count, share of the true class, up to two example titles."""
    labels = confusion["labels"]
    names = [category_with_code(code, lang) for code in labels]
    out = []
    for i, row in enumerate(confusion["counts"]):
        total = sum(row)
        for j, count in enumerate(row):
            examples = confusion["examples"].get(f"{labels[i]}->{labels[j]}", [])
            out.append(
                {
                    "true": names[i],
                    "predicted": names[j],
                    "count": int(count),
                    "share of true class": count / total if total else 0.0,
                    "examples": " | ".join(examples) if count else "",
                }
            )
    return pd.DataFrame(out)


def history_frame(events: list[dict[str, Any]]) -> pd.DataFrame:
    """The promotion history as a table: when, who, what, from → to, why."""
    return pd.DataFrame(
        [
            {
                "when (UTC)": _created(e["at"]),
                "who": e["username"],
                "action": e["action"],
                "from → to": f"v{e['from_version']} → v{e['to_version']}"
                if e.get("from_version")
                else f"none → v{e['to_version']}",
                "why": e["reasons"],
            }
            for e in events
        ],
        columns=["when (UTC)", "who", "action", "from → to", "why"],
    )


def comparison_text(result: dict[str, Any]) -> str:
    """The on-demand comparison with the current champion, in one paragraph (for the Models page)."""
    interval = result["interval"]
    text = (
        f"On version {result['gold_of_version']}'s {_rows_text(result['rows'])} of gold: version "
        f"{result['version']} {result['version_f1']:.4f} vs champion v{result['champion_version']} "
        f"{result['champion_f1']:.4f}, difference {result['difference']:+.4f} ({interval['level']:.0%} "
        f"paired bootstrap interval [{interval['low']:+.4f}, {interval['high']:+.4f}])."
    )
    worst = result.get("worst_class_drop")
    if worst is not None:
        judged = "judged by the gate" if worst["judged"] else "too few rows for the gate to judge"
        text += (
            f" Largest per-class F1 drop: {worst['drop']:+.4f} on class {worst['code']} "
            f"({worst['rows']} gold rows, {judged})."
        )
    verdict = "would pass" if result["would_pass_gate"] else "would not pass"
    return f"{text} The promotion gate {verdict} on these numbers. Inputs: {result['images_note']}."
