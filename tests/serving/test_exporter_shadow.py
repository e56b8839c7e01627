"""Prometheus export of the recorded shadow comparison: agreement, feedback and live F1 of both models."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from rakuten_mlops.infra import write_json_atomic
from rakuten_mlops.serving.exporter import MonitoringCollector


def test_the_recorded_comparison_is_exported_per_version_pair(tmp_path: Path) -> None:
    comparisons = [
        {"challenger_version": "5", "champion_version": "4", "agreement": 0.9, "feedback": 60,
         "challenger_f1": 0.83, "champion_f1": 0.8},
        {"challenger_version": "6", "champion_version": "4", "agreement": 0.7, "feedback": 0,
         "challenger_f1": None, "champion_f1": None},
    ]  # fmt: skip
    write_json_atomic(
        tmp_path / "monitoring" / "live" / "latest.json",
        {"versions": {}, "shadow": {"comparisons": comparisons}},
    )
    registry = CollectorRegistry(auto_describe=True)
    registry.register(MonitoringCollector(tmp_path))
    lines = set(generate_latest(registry).decode().splitlines())
    assert 'rakuten_shadow_agreement{challenger_version="5",champion_version="4"} 0.9' in lines
    assert 'rakuten_shadow_feedback{challenger_version="6",champion_version="4"} 0.0' in lines
    assert (
        'rakuten_shadow_live_f1{challenger_version="5",champion_version="4",role="challenger"} 0.83' in lines
    )
    assert 'rakuten_shadow_live_f1{challenger_version="5",champion_version="4",role="champion"} 0.8' in lines
    assert not any(line.startswith('rakuten_shadow_live_f1{challenger_version="6"') for line in lines)
