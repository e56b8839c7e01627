"""Prometheus configuration and rules through promtool.

Debian's promtool is built without Kubernetes service discovery, so a configuration that
uses kubernetes_sd_configs is checked as a copy with static targets in its place (the rest:
relabelling, rule files, globals, is still checked by promtool), plus a structural check of
the discovery block itself.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from deploycheck.tools import Result, require_tool, run

K8S_SD_ROLES = {"node", "service", "pod", "endpoints", "endpointslice", "ingress"}
K8S_SD_KEYS = {"role", "namespaces", "selectors", "api_server", "kubeconfig_file", "attach_metadata"}


def check_config(path: Path) -> Result:
    """`promtool check config` (also checks the rule files it names)."""
    return run([require_tool("promtool"), "check", "config", str(path)])


def check_rules(path: Path) -> Result:
    return run([require_tool("promtool"), "check", "rules", str(path)])


def test_rules(path: Path) -> Result:
    """`promtool test rules` on a unit-test file."""
    return run([require_tool("promtool"), "test", "rules", str(path)])


def promtool_knows_kubernetes_sd() -> bool:
    """Whether this promtool was built with Kubernetes service discovery."""
    config = {"scrape_configs": [{"job_name": "probe", "kubernetes_sd_configs": [{"role": "pod"}]}]}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        return check_config(path).ok


def kubernetes_sd_problems(config: dict[str, Any]) -> list[str]:
    """Structural check of every kubernetes_sd_configs block."""
    problems = []
    for job in config.get("scrape_configs", []):
        for sd in job.get("kubernetes_sd_configs", []):
            where = f"job {job.get('job_name')}"
            if sd.get("role") not in K8S_SD_ROLES:
                problems.append(f"{where}: unknown kubernetes_sd role {sd.get('role')!r}")
            problems += [f"{where}: unknown kubernetes_sd key {k!r}" for k in set(sd) - K8S_SD_KEYS]
            namespaces = sd.get("namespaces", {})
            problems += [
                f"{where}: unknown namespaces key {k!r}" for k in set(namespaces) - {"names", "own_namespace"}
            ]
            for selector in sd.get("selectors", []):
                if selector.get("role") not in K8S_SD_ROLES or not set(selector) <= {
                    "role",
                    "label",
                    "field",
                }:
                    problems.append(f"{where}: invalid selector {selector}")
    return problems


def without_kubernetes_sd(config: dict[str, Any]) -> dict[str, Any]:
    """A copy where each kubernetes_sd_configs is replaced by an equivalent static target."""
    out = copy.deepcopy(config)
    for job in out.get("scrape_configs", []):
        if job.pop("kubernetes_sd_configs", None) is not None:
            job.setdefault("static_configs", []).append({"targets": ["discovered-by-kubernetes:8000"]})
    return out


def check_config_offline(path: Path) -> Result:
    """check_config, with kubernetes_sd swapped for static targets when promtool lacks it."""
    config = yaml.safe_load(path.read_text())
    uses_k8s_sd = any("kubernetes_sd_configs" in job for job in config.get("scrape_configs", []))
    if not uses_k8s_sd or promtool_knows_kubernetes_sd():
        return check_config(path)
    problems = kubernetes_sd_problems(config)
    with tempfile.TemporaryDirectory() as tmp:
        # Keep the relative rule_files resolvable: copy the rules folder beside the copy.
        for rule in config.get("rule_files", []):
            src = path.parent / rule
            dst = Path(tmp) / rule
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_file():
                shutil.copy(src, dst)
        copy_path = Path(tmp) / path.name
        copy_path.write_text(yaml.safe_dump(without_kubernetes_sd(config)))
        result = check_config(copy_path)
    if problems:
        return Result(1, result.output + "\n".join(problems))
    return result
