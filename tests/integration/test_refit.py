"""The registered model learns from train + val + test after evaluation, never from gold."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from rakuten_mlops.cli import app
from rakuten_mlops.config import get_settings
from rakuten_mlops.lifecycle.registry import client
from rakuten_mlops.models.pyfunc import load_product_classifier

pytestmark = pytest.mark.slow
runner = CliRunner()


def run_pipeline(data_dir: Path, tmp_path: Path, refit: bool) -> str:
    params = tmp_path / "params.yaml"
    content = {"split": {"refit": refit}, "text": {"calibration_cv": 2}, "promotion": {"min_f1": 0.0}}
    params.write_text(yaml.safe_dump(content))
    result = runner.invoke(app, ["pipeline", "run", "--data-dir", str(data_dir), "--params", str(params)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return " ".join(result.output.split())  # Rich wraps long lines


def registered_rows(home: Path) -> tuple[pd.DataFrame, dict[str, str], int]:
    """(rows the registered version learned from, as logged in MLflow; its run's tags; its row count)."""
    s = get_settings()
    version = client(s).get_model_version(s.model_name, "1")
    logged = mlflow.artifacts.download_artifacts(run_id=version.run_id, artifact_path="data/train_rows.csv")
    run = client(s).get_run(version.run_id)
    model = load_product_classifier(f"models:/{s.model_name}/1")
    return pd.read_csv(logged), run.data.tags, int(model.metadata["train_rows"])  # type: ignore[call-overload]


def mlflow_run_id() -> str:
    s = get_settings()
    return str(client(s).get_model_version(s.model_name, "1").run_id)


def split_ids(home: Path, part: str) -> set[int]:
    return set(pd.read_parquet(home / "pipeline" / "splits" / f"{part}.parquet")["productid"].astype(int))


def test_the_registered_model_learns_from_every_row_but_gold(
    home: Path, text_sample_dir: Path, tmp_path: Path
) -> None:
    out = run_pipeline(text_sample_dir, tmp_path, refit=True)
    sizes = json.loads((home / "pipeline" / "splits" / "summary.json").read_text())["sizes"]
    expected = sizes["train"] + sizes["val"] + sizes["test"]
    assert f"registered model learned from {expected} rows (train + val + test)" in out

    rows, tags, model_rows = registered_rows(home)
    assert model_rows == len(rows) == expected
    assert tags["model.train_rows"] == str(expected) and tags["model.trained_on"] == "train+val+test"
    learned = set(rows["productid"].astype(int))
    assert learned == split_ids(home, "train") | split_ids(home, "val") | split_ids(home, "test")
    assert not learned & split_ids(home, "gold")
    # Sentence embeddings went to the home's cache, and every candidate's score to MLflow
    # (a `+` is not allowed in a metric name: svm+use is logged as svm_with_use).
    assert list((home / "cache" / "sentences").glob("*/shard-*.npz"))
    metrics = client(get_settings()).get_run(mlflow_run_id()).data.metrics
    assert {"cv_text_svm_weighted_f1", "cv_text_stack_with_use_weighted_f1"} <= set(metrics)

    summary = json.loads((home / "pipeline" / "run_summary.json").read_text())
    assert summary["refit"]["rows"] == expected and summary["register"]["train_rows"] == expected
    # where the text fits spent their time, for the train split and for the refit
    assert {"tfidf", "sentences", "folds", "final"} <= set(summary["train"]["text_phase_seconds"])
    assert {"tfidf", "final"} <= set(summary["refit"]["text_phase_seconds"])
    # validation/test metrics stay those of the train-split model; gold is the refitted model's
    metrics = mlflow.get_run(summary["register"]["run_id"]).data.metrics
    assert metrics["train_rows"] == expected
    assert metrics["gold_system_weighted_f1"] == pytest.approx(summary["refit"]["gold_weighted_f1"])
    evaluated = json.loads((home / "pipeline" / "eval" / "metrics.json").read_text())
    assert metrics["gold_pre_refit_system_weighted_f1"] == pytest.approx(
        evaluated["gold"]["system"]["weighted_f1"]
    )
    assert metrics["test_system_weighted_f1"] == pytest.approx(evaluated["test"]["system"]["weighted_f1"])
    # every text candidate's cross-validated score and the choice are on the run
    chosen = summary["train"]["text_model"]["chosen"]
    assert tags["text.model"] == chosen
    for candidate in ("svm", "svm_balanced", "stack"):
        assert f"cv_text_{candidate}_weighted_f1" in metrics
        assert metrics[f"cv_text_{candidate}_log_loss"] > 0


def test_refit_off_registers_the_train_split_model(home: Path, text_sample_dir: Path, tmp_path: Path) -> None:
    out = run_pipeline(text_sample_dir, tmp_path, refit=False)
    assert "refit off" in out
    rows, tags, model_rows = registered_rows(home)
    train = split_ids(home, "train")
    assert model_rows == len(rows) == len(train) and set(rows["productid"].astype(int)) == train
    assert tags["model.trained_on"] == "train"
    assert not (home / "pipeline" / "refit" / "product_classifier.joblib").exists()
