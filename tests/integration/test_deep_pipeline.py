"""The tiny deep recipe end to end: pipeline run → registered and promoted → predict → one API request,
and Spark scoring. Transformer text + fine-tuned tiny CNN, fused on the validation split.

The recipe (params/deep-tiny.yaml) is used as shipped, with fewer epochs to keep CI short.
Nothing is downloaded: the tiny backbone and its tokenizer are built from the training texts.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from rakuten_mlops.appdb import create_schema, make_engine, session_factory, session_scope
from rakuten_mlops.cli import app
from rakuten_mlops.config import Settings, get_settings, load_params
from rakuten_mlops.data.schema import X_TEST
from rakuten_mlops.lifecycle.registry import client, get_champion
from rakuten_mlops.models.image_finetune import FineTunedImageNet
from rakuten_mlops.models.pyfunc import load_product_classifier
from rakuten_mlops.models.text_blend import BlendedTextModel
from rakuten_mlops.models.transformer import TransformerTextClassifier
from tests.helpers import REPO_ROOT

pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.slow
runner = CliRunner()
PASSWORD = "correct-horse-battery-staple"


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


@dataclass(frozen=True)
class DeepRun:
    home: Path
    data: Path
    output: str


@pytest.fixture(scope="module")
def deep_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeepRun]:
    """`pipeline run` with the tiny recipe (3 + 2 epochs) on a small sample with images, own home."""
    from rakuten_mlops.simulation.core.sample import generate_sample

    root = tmp_path_factory.mktemp("deep")
    raw = yaml.safe_load((REPO_ROOT / "params" / "deep-tiny.yaml").read_text())
    raw["text"]["transformer"]["epochs"] = 3
    raw["image"]["finetune"]["epochs"] = 2
    raw["promotion"]["min_f1"] = 0.0  # three epochs on ~200 rows: the gate's logic is what is tested
    recipe = root / "deep-tiny.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    load_params(recipe)  # still a valid recipe
    data = root / "data"
    generate_sample(data, n_per_class=10, seed=11, with_images=True, image_size=64)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAKUTEN_HOME", str(root / "home"))
        for var in ("RAKUTEN_MLFLOW_TRACKING_URI", "RAKUTEN_DATABASE_URL", "RAKUTEN_PARAMS_PATH"):
            mp.delenv(var, raising=False)
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        mp.chdir(root)  # MLflow may write ./mlruns: keep it out of the checkout
        get_settings.cache_clear()
        output = invoke("pipeline", "run", "--data-dir", str(data), "--params", str(recipe))
        yield DeepRun(root / "home", data, output)
    get_settings.cache_clear()


def test_tiny_recipe_trains_registers_predicts_and_serves(deep_run: DeepRun, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from rakuten_mlops.serving.app import create_app
    from rakuten_mlops.serving.users import create_user

    out, home, data = deep_run.output, deep_run.home, deep_run.data
    assert "text model: transformer" in out and "PROMOTED" in out, out
    assert (home / "pipeline" / "checkpoints" / "text" / "state.pt").is_file()
    settings = get_settings()
    champion = get_champion(client(settings), settings.model_name)
    assert champion is not None and str(champion.version) == "1"

    model = load_product_classifier(f"models:/{settings.model_name}@champion")
    # blend_tfidf: auto — the TF-IDF model stays beside the transformer only if it helped on val.
    text = model.text.transformer if isinstance(model.text, BlendedTextModel) else model.text
    assert isinstance(text, TransformerTextClassifier) and text.uses_onnx()
    assert model.embedder.uses_onnx()  # type: ignore[union-attr]
    assert isinstance(model.embedder, FineTunedImageNet) and model.fusion is not None
    # The fusion learned from the validation split, so the train-split model is the registered one.
    flat = " ".join(out.split())  # the console wraps long lines
    assert "text+image" in flat and "refit off: the fusion was fitted on the validation split" in flat
    run = client(settings).get_run(champion.run_id)
    assert "transformer_val_weighted_f1" in run.data.metrics  # the per-epoch history, logged
    # Both cross-validated scores of the choice, logged whichever won.
    assert {"cv_text_transformer_weighted_f1", "cv_text_transformer_with_tfidf_weighted_f1"} <= set(
        run.data.metrics
    )
    assert run.data.tags["text.model"] == model.text.chosen_

    preds = tmp_path / "preds.csv"
    invoke("predict", "--input", str(data / X_TEST), "--output", str(preds))
    got = pd.read_csv(preds, index_col=0)
    assert got.index.tolist() == pd.read_csv(data / X_TEST, index_col=0).index.tolist()
    assert got["probability"].between(0, 1).all()

    api_settings = Settings(
        _env_file=None, home=home, jwt_secret="s" * 40, model_poll_seconds=0, auth_cache_seconds=0,
        prediction_log_flush_seconds=0.05,
    )  # fmt: skip
    engine = make_engine(api_settings.app_database_url)
    create_schema(engine)
    with session_scope(session_factory(engine)) as session:
        create_user(session, "alice", PASSWORD, "predictor")
    engine.dispose()
    with TestClient(create_app(api_settings)) as api:
        token = api.post("/v1/auth/token", data={"username": "alice", "password": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        body = {"designation": "Piscine hors sol tubulaire 4 m", "description": "filtre à sable"}
        response = api.post("/v1/predict", json=body, headers=headers)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["model_version"] == "1" and 0 <= answer["probability"] <= 1
        explained = api.post("/v1/predict", json={**body, "explain": True}, headers=headers)
        assert explained.status_code == 501 and "not available" in explained.text


@pytest.mark.skipif(importlib.util.find_spec("pyspark") is None, reason="pyspark missing: the [spark] extra")
@pytest.mark.skipif(shutil.which("java") is None, reason="no Java runtime: `make system-deps`")
def test_spark_scoring_serves_the_deep_champion_like_predict(deep_run: DeepRun, tmp_path: Path) -> None:
    from rakuten_mlops.pipelines.predict import predict_file
    from rakuten_mlops.pipelines.spark_scoring import score_with_spark

    settings = get_settings()
    uri = f"models:/{settings.model_name}@champion"
    listings = deep_run.data / X_TEST
    local = predict_file(listings, tmp_path / "local.parquet", settings, None, uri)
    result = score_with_spark(listings, tmp_path / "scores", settings, None, uri, "local[1]", 32)
    assert result["predicted"] == local["predicted"] > 0
    expected = pd.read_parquet(tmp_path / "local.parquet")
    scores = pd.read_parquet(tmp_path / "scores")
    scores["prdtypecode"] = scores["prdtypecode"].astype("int64")
    joined = expected.join(scores.set_index("index"), rsuffix="_spark", how="inner")
    assert len(joined) == len(expected)
    assert (joined["prdtypecode"] == joined["prdtypecode_spark"]).all()
    assert (joined["probability"] - joined["probability_spark"]).abs().max() < 1e-5
