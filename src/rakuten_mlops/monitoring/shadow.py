"""Challenger against champion on the same live requests: agreement, confidence, class mix, live F1.

`compare_shadow` works on a DataFrame of pairs, one per listing the challenger scored in shadow
(columns `PAIR_COLUMNS`; `true_code` is the label of the champion's prediction of that listing,
missing without feedback). Reading the pairs from the app database is
`rakuten_mlops.pipelines.monitoring_shadow`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.metrics import f1_score

PAIR_COLUMNS = (
    "shadow_id", "time", "challenger_version", "challenger_code", "challenger_probability",
    "champion_version", "champion_code", "champion_probability", "true_code",
)  # fmt: skip


def _mix(codes: pd.Series) -> dict[str, float]:
    shares = codes.astype(int).value_counts(normalize=True).sort_index()
    return {str(code): round(float(share), 4) for code, share in shares.items()}


def _f1(y_true: pd.Series, y_pred: pd.Series) -> float:
    return float(f1_score(y_true.astype(int), y_pred.astype(int), average="weighted", zero_division=0))


def compare_pair(part: pd.DataFrame) -> dict[str, Any]:
    """The comparison of one challenger version against one champion version on their shared listings."""
    labelled = part[part["true_code"].notna()]
    n = len(labelled)
    return {
        "challenger_version": str(part["challenger_version"].iloc[0]),
        "champion_version": str(part["champion_version"].iloc[0]),
        "predictions": len(part),
        "agreement": round(
            float((part["challenger_code"].astype(int) == part["champion_code"].astype(int)).mean()), 4
        ),
        "challenger_confidence": round(float(part["challenger_probability"].mean()), 4),
        "champion_confidence": round(float(part["champion_probability"].mean()), 4),
        "challenger_class_mix": _mix(part["challenger_code"]),
        "champion_class_mix": _mix(part["champion_code"]),
        "feedback": n,
        "challenger_f1": round(_f1(labelled["true_code"], labelled["challenger_code"]), 4) if n else None,
        "champion_f1": round(_f1(labelled["true_code"], labelled["champion_code"]), 4) if n else None,
        "first": pd.to_datetime(part["time"], utc=True).min().isoformat(),
        "last": pd.to_datetime(part["time"], utc=True).max().isoformat(),
    }


def compare_shadow(pairs: pd.DataFrame) -> list[dict[str, Any]]:
    """One comparison per (challenger version, champion version), newest shadow activity first."""
    if pairs.empty:
        return []
    df = pairs.drop_duplicates("shadow_id", keep="first")
    out = [
        compare_pair(part)
        for _, part in df.groupby(
            [df["challenger_version"].astype(str), df["champion_version"].astype(str)], sort=False
        )
    ]
    return sorted(out, key=lambda c: c["last"], reverse=True)
