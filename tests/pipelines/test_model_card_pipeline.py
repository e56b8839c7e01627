"""Every registered version gets a model card; the card of a constructed model names its weakest class."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from rakuten_mlops.cli import app
from rakuten_mlops.config import Settings, get_settings
from rakuten_mlops.lifecycle.registry import CardMissing, RegistryError, model_card
from rakuten_mlops.pipelines.runner import run_pipeline
from rakuten_mlops.simulation.core.sample import generate_sample
from tests.helpers import fast_params, make_settings

# Its listings are a few of other classes' listings: no model can tell them from their classes.
HARD = 1302
LOCAL = {"mlflow_tracking_uri": None, "mlflow_registry_uri": None, "database_url": None}


def _add_unlearnable_class(data_dir: Path, scratch: Path, n: int = 40, seed: int = 3) -> None:
    """Replace class HARD's rows by `n` listings of random other classes (from another sample)."""
    generate_sample(scratch, n_per_class=10, seed=99, with_images=False)
    ox = pd.read_csv(scratch / "X_train_update.csv", index_col=0)
    oy = pd.read_csv(scratch / "Y_train_CVw08PX.csv", index_col=0)
    picked = ox[oy["prdtypecode"] != HARD].sample(n, random_state=seed)
    y = pd.read_csv(data_dir / "Y_train_CVw08PX.csv", index_col=0)
    y = y[y["prdtypecode"] != HARD]  # its own listings go: only the copies are left
    x = pd.read_csv(data_dir / "X_train_update.csv", index_col=0).loc[y.index]
    start = int(x.index.max()) + 1
    extra = picked.set_axis(range(start, start + n)).assign(
        productid=np.arange(n) + 9_000_000_000, imageid=np.arange(n) + 8_000_000_000
    )
    pd.concat([x, extra]).to_csv(data_dir / "X_train_update.csv")
    labels = pd.DataFrame({"prdtypecode": HARD}, index=extra.index)
    pd.concat([y, labels]).to_csv(data_dir / "Y_train_CVw08PX.csv")


@dataclass
class Registered:
    settings: Settings
    summaries: list[dict]


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registered]:
    """Two versions: the first promoted, the second (other params) judged by the gate."""
    home = tmp_path_factory.mktemp("card")
    data = home / "data"
    generate_sample(data, n_per_class=40, seed=5, with_images=False)
    _add_unlearnable_class(data, home / "other")
    settings = make_settings(home, **LOCAL)
    summaries = []
    cwd = os.getcwd()
    os.chdir(home)  # MLflow may write ./mlruns for its default experiment
    try:
        for c in (1.0, 0.3):
            params = fast_params(
                image={"enabled": False},
                fusion={"enabled": False},
                promotion={"min_f1": 0.0},
                # Unbalanced: a class weight would lift the hard class over the ones it copies.
                text={"C": c, "model": "svm", "sentence_encoder": None},
            )
            summaries.append(run_pipeline(data, settings=settings, params=params))
    finally:
        os.chdir(cwd)
    yield Registered(settings, summaries)


def _card_json(settings: Settings, version: str) -> dict:
    c = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)
    mv = c.get_model_version(settings.model_name, version)
    with tempfile.TemporaryDirectory() as tmp:
        return json.loads(
            Path(c.download_artifacts(mv.run_id, "model_card/model_card.json", tmp)).read_text()
        )


def test_every_registered_version_has_a_card_with_its_gate_decision(registered):
    s = registered.settings
    c = MlflowClient(tracking_uri=s.tracking_uri, registry_uri=s.registry_uri)
    registered_by_runs = [str(run["register"]["version"]) for run in registered.summaries]
    assert registered_by_runs == ["1", "2"]
    versions = [c.get_model_version(s.model_name, v) for v in registered_by_runs]
    for v in versions:
        card = _card_json(s, str(v.version))
        assert card["version"] == str(v.version)
        decision = v.tags["promotion.decision"]
        assert card["gate"]["promote"] is (decision == "promoted")
        assert card["gate"]["reasons"] and all(
            r in v.tags["promotion.reasons"] for r in card["gate"]["reasons"]
        )
        assert card["data"]["hash"] == v.tags["data_hash"]
        assert set(card["cost"]["seconds"]) >= {"ingest", "split", "train", "evaluate", "refit"}
        assert card["cost"]["source"] == "run summary"
        markdown = model_card(s, str(v.version))
        assert markdown.startswith(f"# Model card: {s.model_name} version {v.version}")
        assert "<!DOCTYPE html>" in model_card(s, str(v.version), "html")


def test_the_card_names_the_class_no_model_can_learn_as_the_weakest(registered):
    card = _card_json(registered.settings, "1")
    weakest = card["weakest"]
    assert len(weakest) == 5
    assert weakest[0]["code"] == HARD, weakest
    assert weakest[0]["support"] > 0 and weakest[0]["f1"] == 0.0  # in the gold set, never found
    # Confusions: the most frequent mistakes first, each with real gold titles of its true class.
    gold = pd.read_parquet(registered.settings.home / "pipeline" / "splits" / "gold.parquet")
    counts = [p["count"] for p in card["confusions"]]
    assert counts and counts == sorted(counts, reverse=True)
    for pair in card["confusions"]:
        titles = set(gold.loc[gold["prdtypecode"] == pair["true"], "designation"].str[:120])
        assert pair["true"] != pair["predicted"] and 1 <= len(pair["examples"]) <= min(3, pair["count"])
        assert set(pair["examples"]) <= titles
    markdown = model_card(registered.settings, "1")
    section = markdown.split("## The 5 weakest classes")[1].split("##")[0]
    assert section.split("\n|")[3].startswith(f" {HARD} |")  # first data row of the table


def test_cli_prints_and_saves_the_card(registered, tmp_path, monkeypatch):
    monkeypatch.setenv("RAKUTEN_HOME", str(registered.settings.home))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        printed = runner.invoke(app, ["models", "card", "2"])
        assert printed.exit_code == 0, printed.output
        assert printed.output.startswith(f"# Model card: {registered.settings.model_name} version 2")
        out = tmp_path / "card.html"
        saved = runner.invoke(app, ["models", "card", "1", "--output", str(out)])
        assert saved.exit_code == 0, saved.output
        assert out.read_text().startswith("<!DOCTYPE html>")
        missing = runner.invoke(app, ["models", "card", "9"])
        assert missing.exit_code == 2
        assert "error: model 'rakuten-product-classifier' has no version 9" in missing.output
        assert "Traceback" not in missing.output
        wrong = runner.invoke(app, ["models", "card", "1", "--output", str(tmp_path / "card.pdf")])
        assert wrong.exit_code == 2 and "saved as .md or .html" in wrong.output
    finally:
        get_settings.cache_clear()


def test_a_version_registered_without_a_card_says_so(registered):
    s = registered.settings
    mlflow.set_tracking_uri(s.tracking_uri)
    c = MlflowClient(tracking_uri=s.tracking_uri, registry_uri=s.registry_uri)
    first = c.get_model_version(s.model_name, "1")
    with mlflow.start_run(experiment_id=c.get_run(first.run_id).info.experiment_id) as run:
        mlflow.log_text("an older version's files", "notes.txt")
    old = c.create_model_version(s.model_name, first.source, run_id=run.info.run_id)
    with pytest.raises(CardMissing, match="registered before model cards existed"):
        model_card(s, str(old.version))
    with pytest.raises(RegistryError, match="has no version 99"):
        model_card(s, "99")


def test_a_version_made_by_hand_from_another_versions_run_does_not_show_that_card(registered):
    s = registered.settings
    c = MlflowClient(tracking_uri=s.tracking_uri, registry_uri=s.registry_uri)
    first = c.get_model_version(s.model_name, "1")
    copy = c.create_model_version(s.model_name, first.source, run_id=first.run_id)
    with pytest.raises(CardMissing, match="created from the run of version 1"):
        model_card(s, str(copy.version))
