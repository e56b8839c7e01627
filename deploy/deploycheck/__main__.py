"""Run every offline check of deploy/ and print a summary: `PYTHONPATH=deploy python -m deploycheck`."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable

import yaml

from deploycheck import DEPLOY_DIR, REPO_ROOT, compose, dockerfiles, kube, prom, promql, secrets


def _checks() -> dict[str, Callable[[], list[str]]]:
    docker_dir = DEPLOY_DIR / "docker"
    prom_dir = DEPLOY_DIR / "prometheus"

    def dockerfile_check() -> list[str]:
        out = []
        for path in sorted(docker_dir.glob("*.Dockerfile")):
            text = path.read_text()
            out += [f"{path.name}: {p}" for p in dockerfiles.dockerfile_problems(text)]
            out += [
                f"{path.name}: {p}"
                for p in dockerfiles.hadolint_findings(path, docker_dir / ".hadolint.yaml")
            ]
        return out

    def k8s_check() -> list[str]:
        out = []
        for overlay in sorted((DEPLOY_DIR / "k8s" / "overlays").iterdir()):
            rendered = kube.render_overlay(overlay)
            out += [f"{overlay.name}: {p}" for p in kube.schema_problems(rendered)]
            out += [f"{overlay.name}: {p}" for p in kube.policy_problems(kube.load_documents(rendered))]
        # the Spark job's namespace objects (its SparkApplication is a CRD: tests/deploy checks its fields)
        out += [f"spark: {p}" for p in kube.schema_problems(kube.render_overlay(DEPLOY_DIR / "spark"))]
        return out

    def prometheus_check() -> list[str]:
        out = []
        for config in ("prometheus.yml", "prometheus-k8s.yml"):
            result = prom.check_config_offline(prom_dir / config)
            out += [] if result.ok else [f"{config}: {result.output.strip()}"]
        result = prom.test_rules(prom_dir / "rules" / "rakuten-alerts.test.yml")
        return out + ([] if result.ok else [f"rule tests: {result.output.strip()}"])

    def promql_check() -> list[str]:
        allowed = promql.series_names(promql.CONTRACT)
        queries = promql.rule_queries(yaml.safe_load((prom_dir / "rules" / "rakuten-alerts.yml").read_text()))
        for path in sorted((DEPLOY_DIR / "grafana" / "dashboards").glob("*.json")):
            queries += [
                (f"{path.name} {w}", q) for w, q in promql.dashboard_queries(json.loads(path.read_text()))
            ]
        return promql.unknown_metric_problems(queries, allowed) + promql.syntax_problems(queries)

    def live_api_check() -> list[str]:
        import tempfile
        from pathlib import Path

        from fastapi.testclient import TestClient

        from rakuten_mlops.config import Settings
        from rakuten_mlops.serving.app import create_app

        with tempfile.TemporaryDirectory() as home:
            settings = Settings(
                _env_file=None, env="development", home=Path(home), jwt_secret=os.urandom(24).hex(),
                mlflow_tracking_uri=f"sqlite:///{home}/mlflow.db", model_poll_seconds=0,
            )  # fmt: skip
            exposed = promql.sample_names_from_exposition(
                TestClient(create_app(settings)).get("/metrics").text
            )
        missing = sorted(promql.series_names(promql.CONTRACT) - exposed)
        return [f"the API does not expose {name}" for name in missing] + promql.unknown_metric_problems(
            promql.rule_queries(yaml.safe_load((prom_dir / "rules" / "rakuten-alerts.yml").read_text()))
            + [
                (f"{p.name} {w}", q)
                for p in sorted((DEPLOY_DIR / "grafana" / "dashboards").glob("*.json"))
                for w, q in promql.dashboard_queries(json.loads(p.read_text()))
            ],
            exposed,
        )

    return {
        "dockerfiles (policy + hadolint)": dockerfile_check,
        "compose": lambda: compose.compose_problems(
            yaml.safe_load((DEPLOY_DIR / "compose.yaml").read_text())
        ),
        "kubernetes (kustomize + kubernetes-validate + policy)": k8s_check,
        "prometheus (promtool)": prometheus_check,
        "promql metrics vs the API contract": promql_check,
        "promql metrics vs GET /metrics of create_app()": live_api_check,
        "secret scan": lambda: secrets.scan_paths([DEPLOY_DIR, REPO_ROOT / ".env.example"], REPO_ROOT),
    }


def main() -> int:
    failed = 0
    for name, check in _checks().items():
        try:
            problems = check()
        except FileNotFoundError as exc:  # a missing tool
            print(f"SKIP  {name}: {exc}")
            continue
        except ImportError as exc:  # the API package is not installed (or not written yet)
            problems = [f"cannot import the API: {exc!r}"]
        status = "ok  " if not problems else "FAIL"
        failed += bool(problems)
        print(f"{status}  {name}")
        for problem in problems:
            print(f"      - {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
