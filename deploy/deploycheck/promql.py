"""Which metrics a PromQL expression reads, and which metrics the prediction API exposes.

The PromQL scan is lexical (strings, label matchers, ranges and grouping clauses removed,
then every identifier that is not a function, keyword or number is a metric name); syntax
itself is promtool's job (`syntax_problems`).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from deploycheck.tools import require_tool, run

# The /metrics contract of the API (family name -> type), as prometheus_client declares them.
CONTRACT: dict[str, str] = {
    "rakuten_http_requests": "counter",
    "rakuten_http_request_duration_seconds": "histogram",
    "rakuten_predictions": "counter",
    "rakuten_prediction_confidence": "histogram",
    "rakuten_model": "info",
    "rakuten_model_loaded": "gauge",
    "rakuten_model_reloads": "counter",
    "rakuten_feedback": "counter",
    "rakuten_prediction_log_queue_size": "gauge",
    "rakuten_drift_share": "gauge",
    "rakuten_drift_column_drifted": "gauge",
    "rakuten_live_f1": "gauge",
    "rakuten_live_accuracy": "gauge",
    "rakuten_retrain_decisions": "counter",
    # safe rollout: the review queue and the challenger in shadow
    "rakuten_low_confidence_predictions": "counter",
    "rakuten_review_confidence_threshold": "gauge",
    "rakuten_shadow_predictions": "counter",
    "rakuten_shadow_agreements": "counter",
    "rakuten_shadow_confidence": "histogram",
    "rakuten_shadow_class_predictions": "counter",
    "rakuten_shadow_failures": "counter",
    "rakuten_shadow_dropped": "counter",
    "rakuten_shadow_queue_size": "gauge",
    "rakuten_challenger_loaded": "gauge",
    "rakuten_challenger": "info",
    "rakuten_shadow_agreement": "gauge",
    "rakuten_shadow_feedback": "gauge",
    "rakuten_shadow_live_f1": "gauge",
    "rakuten_pipeline_reload_failures": "counter",
}
# Metrics from elsewhere that dashboards and rules may read: kube-state-metrics, cAdvisor, `up`.
EXTERNAL_METRIC_RE = re.compile(r"^(kube_[a-z0-9_]+|container_[a-z0-9_]+|up)$")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
            "offset", "inf", "nan", "start", "end"}  # fmt: skip
GRAFANA_VAR_RE = re.compile(r"\$\{[^}]*\}|\$__[a-z_]+|\$[A-Za-z_]\w*")


def series_names(families: dict[str, str]) -> set[str]:
    """Sample names Prometheus stores for metric families of the given types."""
    names = set()
    for family, kind in families.items():
        base = family.removesuffix("_total") if kind == "counter" else family
        base = base.removesuffix("_info") if kind == "info" else base
        names.update(base + suffix for suffix in SUFFIXES.get(kind, ("",)))
    return names


def families_from_exposition(text: str) -> dict[str, str]:
    """Family name -> type, parsed from a Prometheus text exposition (GET /metrics)."""
    from prometheus_client.parser import text_string_to_metric_families

    return {family.name: family.type for family in text_string_to_metric_families(text)}


def sample_names_from_exposition(text: str) -> set[str]:
    """Every series name actually present in an exposition, plus those its types imply."""
    from prometheus_client.parser import text_string_to_metric_families

    names = set()
    for family in text_string_to_metric_families(text):
        names.update(sample.name for sample in family.samples)
    return names | series_names(families_from_exposition(text))


def substitute_grafana_variables(expr: str) -> str:
    """Grafana template variables replaced by values that keep PromQL valid."""
    return GRAFANA_VAR_RE.sub(
        lambda m: "5m" if "interval" in m.group(0) or "range" in m.group(0) else "x", expr
    )


def metric_names(expr: str) -> set[str]:
    """Metric names an expression reads."""
    s = substitute_grafana_variables(expr)
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', " ", s)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"(?<![\w:])\d+(\.\d+)?([eE][+-]?\d+)?(ms|s|m|h|d|w|y)?\b", " ", s)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        rest = s[match.end() :].lstrip()
        if rest.startswith("(") or match.group(0) in KEYWORDS:
            continue
        names.add(match.group(0))
    return names


def template_query_expr(query: str) -> str | None:
    """The PromQL inside a Grafana variable query, or None when it holds none."""
    match = re.fullmatch(r"\s*label_values\((.*),\s*[A-Za-z_]\w*\s*\)\s*", query, re.S)
    if match:
        return match.group(1)
    match = re.fullmatch(r"\s*query_result\((.*)\)\s*", query, re.S)
    if match:
        return match.group(1)
    return None


def _walk_panels(panels: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _walk_panels(panel.get("panels", []))


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and template variable of a dashboard."""
    out = []
    for panel in _walk_panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if target.get("expr"):
                out.append((f"panel {panel.get('title')!r} {target.get('refId')}", target["expr"]))
    for var in dashboard.get("templating", {}).get("list", []):
        query = var.get("query")
        query = query.get("query", "") if isinstance(query, dict) else (query or "")
        if var.get("type") == "query" and (expr := template_query_expr(query)):
            out.append((f"variable {var.get('name')}", expr))
    return out


def rule_queries(rules: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every rule of a Prometheus rules file."""
    return [
        (f"rule {rule.get('alert') or rule.get('record')}", rule["expr"])
        for group in rules.get("groups", [])
        for rule in group.get("rules", [])
    ]


def unknown_metric_problems(queries: list[tuple[str, str]], allowed: set[str]) -> list[str]:
    """Every metric read by the queries that is neither allowed nor external."""
    return [
        f"{where}: unknown metric {name!r}"
        for where, expr in queries
        for name in sorted(metric_names(expr))
        if name not in allowed and not EXTERNAL_METRIC_RE.match(name)
    ]


def syntax_problems(queries: list[tuple[str, str]]) -> list[str]:
    """promtool's parse of each query (as recording rules); [] when all parse."""
    if not queries:
        return []
    rules = {"groups": [{"name": "syntax", "rules": [
        {"record": f"syntax:check{i}", "expr": substitute_grafana_variables(expr)}
        for i, (_, expr) in enumerate(queries)]}]}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "queries.yml"
        path.write_text(yaml.safe_dump(rules))
        result = run([require_tool("promtool"), "check", "rules", str(path)])
    if result.ok:
        return []
    wheres = "; ".join(f"check{i} = {where}" for i, (where, _) in enumerate(queries))
    return [f"promtool rejects a query: {result.output.strip()} ({wheres})"]
