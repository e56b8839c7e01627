"""The registered model is self-contained: it loads, predicts and serves in a fresh virtualenv that
holds only the model's own requirements.txt (no rakuten-mlops installed).

Slow (a pip install of mlflow, scikit-learn, pandas… from the package index, minutes) and needs
that index; the model is text-only so torch is not installed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from rakuten_mlops.cli import app
from rakuten_mlops.config import get_settings
from rakuten_mlops.lifecycle.registry import configure_mlflow
from rakuten_mlops.models.pyfunc import MODEL_SIGNATURE, load_product_classifier
from rakuten_mlops.pipelines.predict import champion_uri
from tests.helpers import free_port

pytestmark = pytest.mark.slow

ROWS = {
    "designation": ["Piscine hors sol tubulaire 3 m", "Manette sans fil PS4", "Roman policier poche"],
    "description": ["Filtre inclus", None, ""],
}
SCRIPT = """
import json, sys
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
out = model.predict(pd.DataFrame(json.loads(sys.argv[2])))
import rakuten_mlops
print(json.dumps({"codes": out["prdtypecode"].tolist(), "proba": out["probability"].tolist(),
                  "package": rakuten_mlops.__file__}))
"""


def sh(*args: str, env: dict[str, str] | None = None, timeout: int = 1200) -> str:
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)
    assert done.returncode == 0, f"{args[:3]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def champion_dir(text_sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The champion of a text-only pipeline run, downloaded from the registry."""
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("portable-home")
    mp.setenv("RAKUTEN_HOME", str(home))
    for var in ("RAKUTEN_MLFLOW_TRACKING_URI", "RAKUTEN_PARAMS_PATH"):
        mp.delenv(var, raising=False)
    get_settings.cache_clear()
    params = tmp_path_factory.mktemp("params") / "params.yaml"
    params.write_text("text: {calibration_cv: 2, min_df: 1}\npromotion: {min_f1: 0.0}\n")
    try:
        result = CliRunner().invoke(
            app, ["pipeline", "run", "--data-dir", str(text_sample_dir), "--params", str(params)]
        )
        assert result.exit_code == 0, result.output
        settings = get_settings()
        configure_mlflow(settings)
        target = tmp_path_factory.mktemp("champion")
        path = mlflow.artifacts.download_artifacts(champion_uri(settings), dst_path=str(target))
        expected = load_product_classifier(champion_uri(settings)).predict_frame(
            pd.DataFrame(ROWS).fillna("")
        )
    finally:
        mp.undo()
        get_settings.cache_clear()
    model_dir = Path(path)
    (model_dir / "expected.json").write_text(
        json.dumps({"codes": expected["prdtypecode"].tolist(), "proba": expected["probability"].tolist()})
    )
    return model_dir


@pytest.fixture(scope="module")
def fresh_venv(champion_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("venv") / "env"
    sh("python3", "-m", "venv", str(venv))
    sh(str(venv / "bin" / "pip"), "install", "-q", "-r", str(champion_dir / "requirements.txt"))
    return venv


def test_requirements_are_pinned_and_text_only(champion_dir: Path) -> None:
    reqs = (champion_dir / "requirements.txt").read_text().split()
    names = {r.split("==")[0] for r in reqs}
    assert all("==" in r for r in reqs), reqs
    assert {"mlflow", "scikit-learn", "pydantic", "pydantic-settings", "pyyaml"} <= names
    assert not names & {"torch", "rakuten-mlops"}
    assert (champion_dir / "code" / "rakuten_mlops" / "models" / "pyfunc.py").is_file()
    assert not list((champion_dir / "code").rglob("__pycache__"))
    logged = mlflow.models.Model.load(str(champion_dir / "MLmodel"))
    assert logged.signature == MODEL_SIGNATURE
    assert (champion_dir / "input_example.json").is_file()


def test_loads_and_predicts_without_the_project(champion_dir: Path, fresh_venv: Path) -> None:
    python = str(fresh_venv / "bin" / "python")
    installed = sh(python, "-m", "pip", "list", "--format=freeze")
    assert "rakuten" not in installed.lower() and "torch" not in installed.lower()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    out = json.loads(sh(python, "-c", SCRIPT, str(champion_dir), json.dumps(ROWS), env=env).splitlines()[-1])
    expected = json.loads((champion_dir / "expected.json").read_text())
    assert out["codes"] == expected["codes"]
    assert out["proba"] == pytest.approx(expected["proba"])
    assert out["package"].startswith(str(champion_dir / "code"))  # the code logged with the model


def test_mlflow_models_serve_answers_invocations(champion_dir: Path, fresh_venv: Path) -> None:
    """`mlflow models serve --env-manager local`, run by the fresh venv's own mlflow."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{fresh_venv / 'bin'}:{env['PATH']}"
    proc = subprocess.Popen(
        [str(fresh_venv / "bin" / "mlflow"), "models", "serve", "-m", str(champion_dir),
         "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        body = json.dumps(
            {"dataframe_split": {"columns": list(ROWS), "data": list(zip(*ROWS.values(), strict=True))}}
        )
        deadline = time.monotonic() + 180
        answer = None
        while answer is None:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                req = urllib.request.Request(
                    f"http://127.0.0.1:{port}/invocations",
                    data=body.encode(),
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(req, timeout=30) as resp:
                    answer = json.loads(resp.read())
            except OSError:
                assert time.monotonic() < deadline, "mlflow models serve did not answer in 3 minutes"
                time.sleep(1)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    expected = json.loads((champion_dir / "expected.json").read_text())
    assert [p["prdtypecode"] for p in answer["predictions"]] == expected["codes"]
