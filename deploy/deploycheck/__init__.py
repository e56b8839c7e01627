"""Offline checks of everything under deploy/: Dockerfiles, compose, Kubernetes manifests,
Prometheus rules and Grafana dashboards. No network, no Docker engine, no cluster.

The functions return lists of human-readable problems (empty when all is well) so that the
pytest suite in tests/deploy and the command line (`python -m deploycheck`, with deploy/ on
PYTHONPATH) share one implementation.
"""

from __future__ import annotations

from pathlib import Path

DEPLOY_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = DEPLOY_DIR.parent

__all__ = ["DEPLOY_DIR", "REPO_ROOT"]
