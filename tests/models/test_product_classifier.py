"""The fused system: text + image + stacking, with a per-row text-only fallback."""

from __future__ import annotations

import io
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from rakuten_mlops.data.loader import load_dataset
from rakuten_mlops.data.validation import validate
from rakuten_mlops.models.pyfunc import ProductClassifierModel, normalise_input
from rakuten_mlops.pipelines.layout import WorkDir
from rakuten_mlops.pipelines.runner import run_step
from rakuten_mlops.pipelines.train import model_path
from tests.helpers import fast_params, make_settings

pytest.importorskip("torch", reason="image model tests need the 'vision' extra")


@pytest.fixture(scope="module")
def fused(image_sample_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The pipeline's own steps, up to the trained system (what `evaluate` and `refit` load)."""
    root = tmp_path_factory.mktemp("fused")
    work, settings, params = WorkDir(root / "work"), make_settings(root / "home"), fast_params()
    info = {}
    for step in ("ingest", "split", "embed", "train"):
        info = run_step(step, work, settings, params, image_sample_dir)
    frame = validate(load_dataset(image_sample_dir).frame).clean
    return joblib.load(model_path(work)), info, frame


def test_fusion_is_trained_on_out_of_fold_probabilities(fused) -> None:
    model, info, _ = fused
    assert info["modalities"] == "text+image"
    assert model.fusion is not None and model.image is not None
    assert model.text.oof_proba_ is None and model.image.oof_proba_ is None  # not shipped


def test_rows_without_image_fall_back_to_text(fused) -> None:
    model, _, frame = fused
    rows = frame.head(4).copy()
    images = [Path(p).read_bytes() for p in rows["image_path"]]
    rows = rows.drop(columns=["image_path"])
    rows["image"] = [images[0], None, b"\x00garbage", images[3]]
    out = model.predict_frame(rows)
    assert out["modalities"].tolist() == ["text+image", "text", "text", "text+image"]
    assert list(out.columns) == ["prdtypecode", "category", "probability", "top_k", "modalities"]
    assert all(len(k) == 5 for k in out["top_k"])
    assert np.allclose([sum(d["probability"] for d in k) <= 1.0 + 1e-9 for k in out["top_k"]], True)
    assert (out["probability"] == [k[0]["probability"] for k in out["top_k"]]).all()


def test_pyfunc_accepts_base64_and_missing_columns(fused) -> None:
    model, _, frame = fused
    buf = io.BytesIO()
    Image.open(frame["image_path"].iloc[0]).save(buf, "PNG")
    import base64

    df = pd.DataFrame(
        {"designation": ["Piscine hors sol Intex"], "image": [base64.b64encode(buf.getvalue()).decode()]}
    )
    clean = normalise_input(df)
    assert clean["description"].tolist() == [""] and isinstance(clean["image"].iloc[0], bytes)
    wrapper = ProductClassifierModel()
    wrapper.model = model
    out = wrapper.predict(None, df)
    assert out["modalities"].tolist() == ["text+image"]
    with pytest.raises(ValueError, match="designation"):
        normalise_input(pd.DataFrame({"title": ["x"]}))


def test_a_fused_system_is_not_refitted_in_place(fused) -> None:
    """Its fusion must learn the new parts' probability scales: the refit step fits it again."""
    from rakuten_mlops.errors import InvalidInputError

    model, _, frame = fused
    with pytest.raises(InvalidInputError, match="fusion"):
        model.refit(frame, frame["prdtypecode"].to_numpy())
