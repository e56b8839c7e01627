"""Prometheus: promtool on both configurations and on the alert-rule unit tests, every alert
covered firing and silent, and broken copies rejected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from deploycheck import DEPLOY_DIR, prom

PROM_DIR = DEPLOY_DIR / "prometheus"
RULES = PROM_DIR / "rules" / "rakuten-alerts.yml"
RULE_TESTS = PROM_DIR / "rules" / "rakuten-alerts.test.yml"
REQUIRED_ALERTS = {
    "RakutenApiHighErrorRate",  # API 5xx error rate high
    "RakutenApiHighLatencyP99",  # p99 latency high
    "RakutenNoModelLoaded",
    "RakutenDriftShareHigh",
    "RakutenLiveF1Low",
    "RakutenLowConfidenceShareHigh",  # the review queue fills
    "RakutenChallengerDropped",
    "RakutenPipelineReloadFailed",  # a promoted champion the DAG could not push to the API
}


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def alerts() -> set[str]:
    return {rule["alert"] for group in load(RULES)["groups"] for rule in group["rules"] if "alert" in rule}


def test_required_alerts_exist_with_severity_and_summary() -> None:
    assert alerts() >= REQUIRED_ALERTS
    for group in load(RULES)["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in {"critical", "warning"}
            assert rule["annotations"]["summary"]
            assert "for" in rule, f"{rule['alert']} would fire on a single bad scrape"


def test_every_alert_is_tested_firing_and_silent() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for case in load(RULE_TESTS)["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    assert firing >= alerts(), alerts() - firing
    assert silent >= alerts(), alerts() - silent


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-k8s.yml"])
def test_promtool_accepts_the_configuration(config: str, tool) -> None:
    tool("promtool")
    result = prom.check_config_offline(PROM_DIR / config)
    assert result.ok, result.output


def test_promtool_accepts_the_rules(tool) -> None:
    tool("promtool")
    result = prom.check_rules(RULES)
    assert result.ok, result.output


def test_promtool_unit_tests_pass(tool) -> None:
    tool("promtool")
    result = prom.test_rules(RULE_TESTS)
    assert result.ok, result.output


def test_both_configurations_load_the_rules_and_scrape_the_api() -> None:
    for name in ("prometheus.yml", "prometheus-k8s.yml"):
        config = load(PROM_DIR / name)
        assert config["rule_files"] == ["rules/rakuten-alerts.yml"]
        api = next(job for job in config["scrape_configs"] if job["job_name"] == "rakuten-api")
        assert api["metrics_path"] == "/metrics"
    compose_job = next(
        j for j in load(PROM_DIR / "prometheus.yml")["scrape_configs"] if j["job_name"] == "rakuten-api"
    )
    assert compose_job["static_configs"][0]["targets"] == ["api:8000"]


# ------------------------------------------------------------------ broken copies fail


def test_a_changed_threshold_breaks_the_unit_tests(deploy_copy: Path, tool) -> None:
    tool("promtool")
    rules = deploy_copy / "prometheus" / "rules" / "rakuten-alerts.yml"
    rules.write_text(rules.read_text().replace("min by (model_version) (rakuten_live_f1) < 0.7",
                                               "min by (model_version) (rakuten_live_f1) < 0.5"))  # fmt: skip
    result = prom.test_rules(deploy_copy / "prometheus" / "rules" / "rakuten-alerts.test.yml")
    assert not result.ok and "RakutenLiveF1Low" in result.output


def test_an_invalid_rule_is_rejected(deploy_copy: Path, tool) -> None:
    tool("promtool")
    rules = deploy_copy / "prometheus" / "rules" / "rakuten-alerts.yml"
    rules.write_text(
        rules.read_text().replace("max(rakuten_drift_share) > 0.5", "max(rakuten_drift_share > 0.5")
    )
    assert not prom.check_rules(rules).ok
    assert not prom.check_config(deploy_copy / "prometheus" / "prometheus.yml").ok


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-k8s.yml"])
def test_an_invalid_configuration_is_rejected(config: str, deploy_copy: Path, tool) -> None:
    tool("promtool")
    path = deploy_copy / "prometheus" / config
    path.write_text(path.read_text().replace("scrape_interval: 15s", "scrape_interval: often"))
    result = prom.check_config_offline(path)
    assert not result.ok, result.output


def test_a_broken_kubernetes_discovery_block_is_rejected() -> None:
    config = load(PROM_DIR / "prometheus-k8s.yml")
    assert prom.kubernetes_sd_problems(config) == []
    sd = config["scrape_configs"][0]["kubernetes_sd_configs"][0]
    sd["role"] = "pods"
    sd["namespaces"]["own_namespaces"] = True
    problems = prom.kubernetes_sd_problems(config)
    assert any("role 'pods'" in p for p in problems) and any("own_namespaces" in p for p in problems)
