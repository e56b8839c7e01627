"""`dvc repro` runs the project's dvc.yaml stages (the CLI steps) on a small sample."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import require

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_dvc_repro_on_sample(tmp_path: Path) -> None:
    require((BIN / "dvc").exists(), "dvc is not installed: pip install 'rakuten-mlops[dvc]'")
    repo = tmp_path / "repo"
    repo.mkdir()
    # Same stages, smaller and text-only so that the test takes seconds.
    dvc_yaml = (ROOT / "dvc.yaml").read_text().replace("--n-per-class 40", "--n-per-class 8 --no-images")
    (repo / "dvc.yaml").write_text(dvc_yaml)
    shutil.copy(ROOT / "params.yaml", repo / "params.yaml")
    shutil.copytree(ROOT / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "RAKUTEN_HOME": str(tmp_path / "home")}
    env.pop("RAKUTEN_PARAMS_PATH", None)

    def run(*args: str) -> str:
        proc = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc.stdout

    run("git", "init", "-q")
    run("dvc", "init", "-q")
    run("dvc", "repro")
    metrics = json.loads(run("dvc", "metrics", "show", "--json"))
    scores = next(iter(metrics.values()))["data"]["artifacts/eval/scores.json"]["data"]
    assert 0 < scores["test_weighted_f1"] <= 1
    promotion = json.loads((repo / "artifacts/registry/promotion.json").read_text())
    assert promotion["version"] == "1"
    assert "Data and pipelines are up to date" in run("dvc", "status") or "up to date" in run("dvc", "status")
