"""The pipeline with images: embeddings cached, fusion evaluated, model logged with a signature."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest

from rakuten_mlops.models.pyfunc import MODEL_SIGNATURE
from rakuten_mlops.pipelines.runner import run_pipeline
from tests.helpers import fast_params, make_settings
from tests.services import require_module

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _vision_extra() -> None:
    require_module("torch", "needs the 'vision' extra")


def test_pipeline_with_images_and_cache(tmp_path: Path, image_sample_dir: Path) -> None:
    settings = make_settings(tmp_path / "home")
    params = fast_params(promotion={"min_f1": 0.0})
    summary = run_pipeline(image_sample_dir, settings, params)
    assert summary["embed"]["enabled"] and summary["evaluate"]["modalities"] == "text+image"
    scores = summary["evaluate"]["scores"]
    assert {"test_text_weighted_f1", "test_image_weighted_f1", "test_weighted_f1"} <= set(scores)
    assert (settings.home / "pipeline" / "eval" / "confusion_fusion.png").is_file()
    # one Parquet embedding table keyed by image content hash, one row per distinct image
    parts = sorted(settings.embeddings_dir.rglob("table/part-*.parquet"))
    keys = pd.concat([pd.read_parquet(p, columns=["key"]) for p in parts])["key"]
    assert keys.is_unique and len(keys) == sum(summary["split"]["sizes"].values())

    # a second run recomputes no embedding: no part is added or rewritten
    stamps = {p: p.stat().st_mtime_ns for p in parts}
    run_pipeline(image_sample_dir, settings, params)
    assert sorted(settings.embeddings_dir.rglob("table/part-*.parquet")) == parts
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())

    mlflow.set_tracking_uri(settings.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{settings.model_name}@champion")
    assert model.metadata.signature == MODEL_SIGNATURE  # the same for text-only and image models
    pins = Path(mlflow.pyfunc.get_model_dependencies(f"models:/{settings.model_name}@champion"))
    assert {"torch", "efficientnet-lite-pytorch"} <= {r.split("==")[0] for r in pins.read_text().split()}
    # logged from code: the model class comes from the package, nothing of it is cloudpickled
    flavor = model.metadata.flavors["python_function"]
    assert flavor["loader_module"] == "mlflow.pyfunc.loaders.code_model"
    assert Path(flavor["model_code_path"]).name == "pyfunc_code.py"
    img = next((image_sample_dir / "images" / "image_test").iterdir()).read_bytes()
    out = model.predict(
        pd.DataFrame({"designation": ["Piscine hors sol"], "description": [""], "image": [img]})
    )
    assert out["modalities"].tolist() == ["text+image"]
