"""Drift of monitored columns with Evidently 0.7: a self-contained HTML report and a JSON summary.

Works on frames built by `monitoring.features.monitoring_frame`; no disk I/O except `save`.
"""

from __future__ import annotations

import html
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rakuten_mlops.config import DriftParams
from rakuten_mlops.monitoring.features import (
    CATEGORICAL_COLUMNS,
    DESCRIPTIONS,
    NUMERICAL_COLUMNS,
    TEXT_COLUMNS,
)

HOMOGENEITY = "chisquare_homogeneity"
TEXT_DOMAIN = "text_domain_auc"
_registered = False


def _chi_square_homogeneity(reference: pd.Series, current: pd.Series, feature_type: Any, threshold: float):
    """p-value of a 2 x k chi-square test of homogeneity: both samples' noise counted (unlike `chisquare`)."""
    from scipy.stats import chi2_contingency

    ref, cur = reference.value_counts(), current.value_counts()
    keys = sorted(set(ref.index) | set(cur.index), key=str)
    if len(keys) < 2 or len(reference) == 0 or len(current) == 0:
        return 1.0, False
    table = np.array([[ref.get(k, 0) for k in keys], [cur.get(k, 0) for k in keys]], dtype=float)
    p_value = float(chi2_contingency(table)[1])
    return p_value, p_value < threshold


def _text_domain_auc(reference: pd.Series, current: pd.Series, feature_type: Any, threshold: float):
    """Evidently's text-content drift (a domain classifier's ROC AUC), with an analytic null.

    Evidently's `perc_text_content_drift` bootstraps 1000 random ROC AUCs per call (seconds);
    under no drift the ROC AUC follows the Mann-Whitney null N(0.5, (n0 + n1 + 1) / (12 n0 n1)),
    so its `threshold` percentile is computed directly.
    """
    from evidently.legacy.utils.data_drift_utils import roc_auc_domain_classifier
    from scipy.stats import norm
    from sklearn.model_selection import train_test_split

    texts = pd.concat([reference.astype(str), current.astype(str)], ignore_index=True)
    target = np.r_[np.zeros(len(reference), dtype=int), np.ones(len(current), dtype=int)]
    if len(reference) < 4 or len(current) < 4:
        return 0.5, False
    x_train, x_test, y_train, y_test = train_test_split(
        texts, target, test_size=0.5, random_state=42, stratify=target
    )
    try:
        auc = float(roc_auc_domain_classifier(x_train, x_test, y_train, y_test)[0])
    except ValueError:  # empty vocabulary: nothing to tell the sides apart
        return 0.5, False
    n1 = int(y_test.sum())
    n0 = len(y_test) - n1
    critical = 0.5 + float(norm.ppf(threshold)) * math.sqrt((n0 + n1 + 1) / (12 * n0 * n1))
    return auc, auc > critical


def register_stattests() -> None:
    """Add the homogeneity test to Evidently's registry (once per process, never at import)."""
    global _registered
    if _registered:
        return
    from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
    from evidently.legacy.core import ColumnType

    register_stattest(
        StatTest(
            name=HOMOGENEITY,
            display_name="chi-square homogeneity p_value",
            allowed_feature_types=[ColumnType.Categorical],
            default_threshold=0.01,
        ),
        _chi_square_homogeneity,
    )
    register_stattest(
        StatTest(
            name=TEXT_DOMAIN,
            display_name="text content drift (domain classifier ROC AUC)",
            allowed_feature_types=[ColumnType.Text],
            default_threshold=0.99,
        ),
        _text_domain_auc,
    )
    _registered = True


@dataclass
class DriftResult:
    summary: dict[str, Any]
    snapshot: Any  # evidently Snapshot, or None when no column could be compared

    def html(self) -> str:
        """The Evidently report with a plain-HTML summary on top (readable without JavaScript)."""
        banner = _summary_html(self.summary)
        if self.snapshot is None:
            return f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>{banner}</body></html>"
        page = self.snapshot.get_html_str(as_iframe=False)
        return page.replace("<body>", "<body>" + banner, 1) if "<body>" in page else banner + page


def column_kind(column: str) -> str | None:
    if column in TEXT_COLUMNS:
        return "text"
    if column in NUMERICAL_COLUMNS:
        return "numerical"
    if column in CATEGORICAL_COLUMNS:
        return "categorical"
    return None


def comparable_columns(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[list[str], dict[str, str]]:
    """Columns both sides have with values; the others with why they are skipped."""
    columns, skipped = [], {}
    for col in DESCRIPTIONS:
        if column_kind(col) is None:
            continue
        if col not in reference.columns or col not in current.columns:
            side = "reference" if col not in reference.columns else "current"
            skipped[col] = f"not available in the {side} data"
        elif reference[col].notna().sum() == 0 or current[col].notna().sum() == 0:
            side = "reference" if reference[col].notna().sum() == 0 else "current"
            skipped[col] = f"no values in the {side} data"
        else:
            columns.append(col)
    return columns, skipped


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    params: DriftParams,
    *,
    seed: int = 42,
    extra: dict[str, Any] | None = None,
) -> DriftResult:
    """Run Evidently's DataDriftPreset on every comparable monitored column."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    register_stattests()
    reference = _sample(reference, params.reference_max_rows, seed)
    current = _sample(current, params.current_max_rows, seed + 1)
    columns, skipped = comparable_columns(reference, current)
    summary: dict[str, Any] = {
        **(extra or {}),
        "reference_rows": len(reference),
        "current_rows": len(current),
        "columns": {},
        "skipped_columns": skipped,
        "drift_share_threshold": params.drift_share,
    }
    if not columns:
        summary.update(drift_share=0.0, drifted_columns=[], n_columns=0, n_drifted=0, dataset_drift=False)
        return DriftResult(summary, None)
    kinds = {c: column_kind(c) for c in columns}
    methods = {"text": params.text_method, "numerical": params.num_method, "categorical": params.cat_method}
    thresholds = {
        "text": params.text_threshold,
        "numerical": params.num_threshold,
        "categorical": params.cat_threshold,
    }
    definition = DataDefinition(
        numerical_columns=[c for c in columns if kinds[c] == "numerical"],
        categorical_columns=[c for c in columns if kinds[c] == "categorical"],
        text_columns=[c for c in columns if kinds[c] == "text"],
    )
    preset = DataDriftPreset(
        columns=columns,
        drift_share=params.drift_share,
        per_column_method={c: methods[kinds[c]] for c in columns},  # type: ignore[index]
        per_column_threshold={c: thresholds[kinds[c]] for c in columns},  # type: ignore[index]
    )
    ref_ds = Dataset.from_pandas(reference[columns].reset_index(drop=True), data_definition=definition)
    cur_ds = Dataset.from_pandas(current[columns].reset_index(drop=True), data_definition=definition)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        # Evidently's plots divide by a constant column's zero spread (e.g. same-size images).
        warnings.simplefilter("ignore", RuntimeWarning)
        snapshot = Report([preset], include_tests=True).run(cur_ds, ref_ds)
    per_column = _per_column(snapshot.dict())
    for col in columns:
        found = per_column.get(col, {})
        summary["columns"][col] = {
            "type": kinds[col],
            "description": DESCRIPTIONS[col],
            "test": found.get("test", methods[kinds[col]]),  # type: ignore[index]
            "threshold": found.get("threshold", thresholds[kinds[col]]),  # type: ignore[index]
            "score": found.get("score"),
            "drifted": bool(found.get("drifted", False)),
        }
    drifted = [c for c in columns if summary["columns"][c]["drifted"]]
    share = len(drifted) / len(columns)
    summary.update(
        drift_share=round(share, 4),
        drifted_columns=drifted,
        n_columns=len(columns),
        n_drifted=len(drifted),
        dataset_drift=share >= params.drift_share,
    )
    return DriftResult(summary, snapshot)


def _sample(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    return frame.sample(n=max_rows, random_state=seed) if len(frame) > max_rows else frame


def _per_column(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Score, test and threshold of each ValueDrift metric, and whether its test failed (= drift)."""
    by_id: dict[str, dict[str, Any]] = {}
    for metric in report.get("metrics", []):
        config = metric.get("config", {})
        if str(config.get("type", "")).endswith("ValueDrift"):
            value = metric.get("value")
            score = float(value) if isinstance(value, int | float) and not math.isnan(value) else None
            by_id[metric["id"]] = {
                "column": config.get("column"),
                "test": config.get("method"),
                "threshold": config.get("threshold"),
                "score": score,
            }
    for test in report.get("tests", []):
        metric_id = test.get("metric_config", {}).get("metric_id")
        if metric_id in by_id:
            by_id[metric_id]["drifted"] = test.get("status") == "FAIL"
    return {m["column"]: m for m in by_id.values() if m.get("column")}


def _summary_html(summary: dict[str, Any]) -> str:
    drifted = summary.get("drifted_columns", [])
    rows = "".join(
        f"<tr><td>{html.escape(col)}</td><td>{html.escape(str(info.get('test')))}</td>"
        f"<td>{_fmt(info.get('score'))}</td><td>{_fmt(info.get('threshold'))}</td>"
        f"<td>{'<b>DRIFT</b>' if info.get('drifted') else 'ok'}</td></tr>"
        for col, info in summary.get("columns", {}).items()
    )
    skipped = "".join(
        f"<li>{html.escape(c)}: {html.escape(why)}</li>"
        for c, why in summary.get("skipped_columns", {}).items()
    )
    title = html.escape(str(summary.get("title", "Drift report")))
    return (
        "<section id='rakuten-drift-summary' style='font-family:sans-serif;margin:16px'>"
        f"<h2>{title}</h2>"
        f"<p>Drift share: <b>{summary.get('drift_share', 0):.2f}</b> "
        f"({summary.get('n_drifted', 0)} of {summary.get('n_columns', 0)} columns; "
        f"dataset drift at {summary.get('drift_share_threshold')}). "
        f"Drifted columns: <b>{html.escape(', '.join(drifted) or 'none')}</b>. "
        f"Reference rows: {summary.get('reference_rows')}, current rows: {summary.get('current_rows')}.</p>"
        "<table border='1' cellpadding='4' style='border-collapse:collapse'>"
        "<tr><th>column</th><th>test</th><th>score</th><th>threshold</th><th>result</th></tr>"
        f"{rows}</table>" + (f"<p>Skipped:</p><ul>{skipped}</ul>" if skipped else "") + "</section>"
    )


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else html.escape(str(value))
