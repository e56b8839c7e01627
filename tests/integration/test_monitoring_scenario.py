"""The issue's done-when scenario on the sample, through the CLI.

`streams make` with an injected shift on batch 3; a champion trained on the initial pool; then
three rounds of `streams next` + `monitor check`: no retrain at batches 1-2, a retrain with its
reasons at batch 3, and the HTML report names the drifted columns.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from rakuten_mlops.cli import app
from rakuten_mlops.config import get_settings, load_params
from rakuten_mlops.pipelines.runner import run_pipeline
from rakuten_mlops.serving.exporter import MonitoringCollector
from rakuten_mlops.simulation.core.sample import generate_sample
from tests.helpers import fast_params

runner = CliRunner()


@pytest.fixture(scope="module")
def scenario_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The issue's sample, text only for speed: ~1,600 listings, so batch 3 keeps ~70 rows after its shift."""
    out = tmp_path_factory.mktemp("scenario-sample")
    generate_sample(out, n_per_class=60, seed=42, with_images=False)
    return out


def last_summary_columns(decision: dict) -> dict:
    return json.loads(Path(decision["drift"]["summary_path"]).read_text())["columns"]


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_shift_on_batch_3_triggers_a_retrain_with_reasons(
    home: Path, scenario_sample: Path, tmp_path: Path
) -> None:
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump(fast_params().model_dump(mode="json")))
    p = ["--params", str(params_path)]
    out = _ok(["streams", "make", "--data-dir", str(scenario_sample), "--n", "3", "--drift", "3", *p])
    assert "batch_003" in out and "class_mix, empty_description, language" in out
    settings = get_settings()
    first = run_pipeline(home / "streams" / "pool", settings, load_params(params_path))
    assert first["promote"]["promote"]

    for batch in (1, 2, 3):
        out = _ok(["streams", "next", *p])
        assert f"ingested batch_00{batch}" in out
        out = _ok(["monitor", "check", *p])
        assert ("RETRAIN" if batch == 3 else "no retrain") in out

    decisions = [
        json.loads(line)
        for line in (home / "monitoring" / "decisions" / "decisions.jsonl").read_text().splitlines()
    ]
    assert [d["retrain"] for d in decisions] == [False, False, True]
    assert [d["data"]["current_batch"] for d in decisions] == ["batch_001", "batch_002", "batch_003"]
    for calm in decisions[:2]:
        assert calm["drift"]["drift_share"] < 0.3
        assert calm["reasons"][0].startswith("no reason to retrain")
    last = decisions[2]
    drifted = last["drift"]["drifted_columns"]
    assert {"language", "description_empty", "label", "text"} <= set(drifted)
    assert "predicted_code" in last_summary_columns(last)
    assert last["reasons"][0].startswith(f"drift share {last['drift']['drift_share']:.2f} ≥ 0.30")
    assert last["reasons"][-1].endswith("new labelled rows ≥ 100")
    assert last["champion_version"] == "1" and last["mlflow_run_id"]

    html = Path(last["report_html"]).read_text(encoding="utf-8")
    assert "Drifted columns: <b>" + ", ".join(drifted) + "</b>" in html
    summary = json.loads(Path(last["drift"]["summary_path"]).read_text())
    assert summary["reference"]["source"].startswith("champion v1 training data")
    assert summary["columns"]["predicted_code"]["test"] == "chisquare_homogeneity"
    assert summary["mlflow_run_id"]

    registry = CollectorRegistry()
    registry.register(MonitoringCollector(settings.home))
    assert registry.get_sample_value("rakuten_drift_share") == summary["drift_share"]
