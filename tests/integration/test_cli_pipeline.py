"""The CLI end to end on a small generated sample: run, predict, registry, promotion gate, errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from rakuten_mlops.appdb import make_engine, promotion_history, session_factory
from rakuten_mlops.cli import app
from rakuten_mlops.config import get_settings
from rakuten_mlops.data.schema import X_TEST
from rakuten_mlops.lifecycle.registry import client, gate_of, get_champion

pytestmark = pytest.mark.slow
runner = CliRunner()

# A nearly unregularised-to-zero SVM and no naive Bayes: scores carry almost no signal.
WEAK = {"text": {"C": 1e-6, "nb_alpha": None, "min_df": 1, "calibration_cv": 2}, "promotion": {"min_f1": 0.0}}
GOOD = {"text": {"calibration_cv": 2}, "promotion": {"min_f1": 0.0, "min_gain": 0.0}}


def params_file(tmp_path: Path, name: str, content: dict) -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(content))
    return p


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def champion_version() -> str | None:
    s = get_settings()
    champ = get_champion(client(s), s.model_name)
    return str(champ.version) if champ else None


def test_run_predict_and_gate(home: Path, text_sample_dir: Path, tmp_path: Path) -> None:
    weak = params_file(tmp_path, "weak", WEAK)
    good = params_file(tmp_path, "good", GOOD)

    out = invoke("pipeline", "run", "--data-dir", str(text_sample_dir), "--params", str(weak))
    assert "text only" in out and "PROMOTED" in out and "test_weighted_f1" in out
    assert champion_version() == "1"
    assert (home / "pipeline" / "eval" / "confusion_text.png").is_file()
    assert (home / "pipeline" / "eval" / "per_class_f1.png").is_file()

    out = invoke("pipeline", "run", "--data-dir", str(text_sample_dir), "--params", str(good))
    assert "model version 2: PROMOTED" in out, out
    assert champion_version() == "2"

    out = invoke("pipeline", "run", "--data-dir", str(text_sample_dir), "--params", str(weak))
    assert "not promoted" in out and "champion" in out
    assert champion_version() == "2"  # a worse challenger never takes champion

    listing = invoke("models", "list")
    assert "champion" in listing and "rejected" in listing

    preds = tmp_path / "preds.csv"
    invoke("predict", "--input", str(text_sample_dir / X_TEST), "--output", str(preds))
    src = pd.read_csv(text_sample_dir / X_TEST, index_col=0)
    got = pd.read_csv(preds, index_col=0)
    assert got.index.tolist() == src.index.tolist()
    assert {"prdtypecode", "probability"} <= set(got.columns)
    assert got["probability"].between(0, 1).all()

    invoke("models", "rollback")
    assert champion_version() == "1"
    invoke("models", "promote", "2")
    assert champion_version() == "2"

    # Every champion change is in the history, oldest last; the rejected run 3 is not a change.
    s = get_settings()
    events = promotion_history(session_factory(make_engine(s.app_database_url)), s.model_name)
    moves = [(e["action"], e["from_version"], e["to_version"]) for e in events]
    assert moves == [
        ("manual promotion", "1", "2"), ("rollback", "2", "1"),
        ("gate promotion", "1", "2"), ("gate promotion", None, "1"),
    ]  # fmt: skip
    assert events[0]["username"].startswith("cli") and events[-1]["username"] == "pipeline"
    # Run 3 registered nothing new (same data and params as run 1: version 1 again); the gate's
    # comparison of it with champion 2 on the same gold rows survives the later changes.
    gate = gate_of(dict(client(s).get_model_version(s.model_name, "1").tags))
    assert gate is not None and gate["verdict"] == "rejected" and gate["champion_version"] == "2"
    assert gate["gold_rows"] and gate["champion_f1"] is not None and gate["challenger_f1"] is not None


def test_register_step_is_idempotent(home: Path, text_sample_dir: Path, tmp_path: Path) -> None:
    good = params_file(tmp_path, "good", GOOD)
    invoke("pipeline", "run", "--data-dir", str(text_sample_dir), "--params", str(good))
    out = invoke("pipeline", "step", "register", "--params", str(good))
    assert '"reused": true' in out
    s = get_settings()
    assert len(client(s).search_model_versions(f"name = '{s.model_name}'")) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pipeline", "run", "--data-dir", "/nonexistent/folder"], "data folder does not exist"),
        (["data", "validate", "--data-dir", "/nonexistent/folder"], "expected layout"),
        (["models", "promote", "99"], "no version 99"),
        (["models", "rollback"], "no champion"),
    ],
)
def test_errors_are_clear_and_without_traceback(home: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_validate_reports_rejects(home: Path, text_sample_dir: Path, tmp_path: Path) -> None:
    import shutil

    d = tmp_path / "bad"
    shutil.copytree(text_sample_dir, d)
    x = (d / "X_train_update.csv").read_text(encoding="utf-8").splitlines()
    first = x[1].split(",")
    first[1] = ""  # empty designation
    x[1] = ",".join(first)
    (d / "X_train_update.csv").write_text("\n".join(x) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["data", "validate", "--data-dir", str(d)])
    assert result.exit_code == 1
    assert "1 rows rejected" in result.output
    rejects = pd.read_csv(d / "rejects.csv", index_col=0)
    assert rejects["reason"].tolist() == ["empty_designation"]
