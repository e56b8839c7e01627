"""The transformer text model on a tiny random backbone: device choice, ONNX, checkpoints, loading.

Nothing is downloaded: the backbone and its tokenizer are built here from the training texts.
"""

from __future__ import annotations

import copy
import io
import os
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from rakuten_mlops.config import TinyBackboneParams, TransformerParams
from rakuten_mlops.errors import InvalidInputError
from rakuten_mlops.models import deep_runtime as rt
from rakuten_mlops.models.explain import ExplanationUnavailable, explain_listing
from rakuten_mlops.models.product import ProductClassifier
from rakuten_mlops.models.pyfunc import pip_requirements, text_runtime
from rakuten_mlops.models.transformer import TransformerTextClassifier, listing_texts
from tests.helpers import word_listings

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")

WORDS = {
    10: "livre roman poche auteur",
    2583: "piscine hors sol filtre",
    1280: "jouet peluche enfant doudou",
    50: "manette console chargeur sans fil",
}


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def listings(n_per_class: int, seed: int) -> pd.DataFrame:
    return word_listings(WORDS, n_per_class, seed, html_descriptions=True)


def tiny_params(**kw: object) -> TransformerParams:
    base: dict[str, object] = {
        "tiny": TinyBackboneParams(layers=1, hidden=32, heads=2, intermediate=64, vocab_size=300),
        "max_length": 32, "epochs": 3, "lr": 3e-3, "batch_size": 16, "patience": 5,
        "precision": "no", "device": "cpu",
    }  # fmt: skip
    return TransformerParams.model_validate({**base, **kw})


@pytest.fixture(scope="module")
def trained() -> tuple[TransformerTextClassifier, pd.DataFrame]:
    train, val = listings(24, 0), listings(6, 1)
    clf = TransformerTextClassifier(tiny_params(epochs=8, lr=1e-2), random_state=3)
    clf.fit(train, train["prdtypecode"].to_numpy(), val=(val, val["prdtypecode"].to_numpy()))
    return clf, val


def test_learns_the_tiny_task_and_answers_like_a_text_model(
    trained: tuple[TransformerTextClassifier, pd.DataFrame],
) -> None:
    clf, val = trained
    proba = clf.predict_proba(val)
    assert proba.shape == (len(val), 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert list(clf.classes_) == sorted(WORDS)
    assert (clf.predict(val) == val["prdtypecode"].to_numpy()).mean() > 0.5  # chance is 0.25
    assert len(clf.history_) == 8 and {"train_loss", "val_weighted_f1"} <= set(clf.history_[0])
    assert 1 <= clf.best_epoch_ <= 8
    assert clf.val_proba_ is not None and clf.val_proba_.shape == proba.shape


def test_onnx_runtime_and_pytorch_agree(trained: tuple[TransformerTextClassifier, pd.DataFrame]) -> None:
    clf, val = trained
    frame = pd.concat([val, pd.DataFrame({"designation": ["x", "piscine " * 40], "description": ["", ""]})])
    clf.runtime = "onnx"
    assert clf.uses_onnx()
    p_onnx = clf.predict_proba(frame)
    clf.runtime = "torch"
    p_torch = clf.predict_proba(frame)
    clf.runtime = "auto"
    np.testing.assert_allclose(p_onnx, p_torch, atol=1e-5)


def test_pickled_model_predicts_the_same_and_names_what_it_needs(
    trained: tuple[TransformerTextClassifier, pd.DataFrame],
) -> None:
    clf, val = trained
    buf = io.BytesIO()
    joblib.dump(ProductClassifier(text=clf), buf)
    buf.seek(0)
    loaded: ProductClassifier = joblib.load(buf)
    assert loaded.text._net is None  # the network travels as files, rebuilt only for PyTorch
    np.testing.assert_allclose(loaded.text.predict_proba(val), clf.predict_proba(val), atol=1e-6)
    loaded.text.runtime = "torch"  # from_pretrained on the carried files
    np.testing.assert_allclose(loaded.text.predict_proba(val), clf.predict_proba(val), atol=1e-5)
    names = {r.split("==")[0] for r in pip_requirements(False, False, text_runtime(loaded))}
    assert {"onnxruntime", "tokenizers"} <= names and "torch" not in names
    without_onnx = {r.split("==")[0] for r in pip_requirements(False, False, "torch")}
    assert {"torch", "transformers", "tokenizers"} <= without_onnx
    out = loaded.predict_frame(val.head(3))
    assert set(out["prdtypecode"]) <= set(WORDS)


def test_explanations_are_refused_cleanly(trained: tuple[TransformerTextClassifier, pd.DataFrame]) -> None:
    clf, val = trained
    with pytest.raises(ExplanationUnavailable, match="not available for a transformer"):
        explain_listing(ProductClassifier(text=clf), val.head(1), int(clf.classes_[0]))


def test_fusion_learns_from_the_validation_split(
    trained: tuple[TransformerTextClassifier, pd.DataFrame],
) -> None:
    from rakuten_mlops.config import Params
    from rakuten_mlops.models.image import ImageClassifier
    from rakuten_mlops.pipelines.train import assemble

    clf, val = trained
    text = copy.deepcopy(clf)
    train = listings(24, 0)
    rng = np.random.default_rng(0)
    codes = sorted(WORDS)

    def embeddings(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        centre = np.eye(8)[[codes.index(c) for c in frame["prdtypecode"]]]  # an informative image
        return centre + rng.normal(0, 0.3, (len(frame), 8)), np.ones(len(frame), dtype=bool)

    emb = embeddings(train)
    image = ImageClassifier(cv_folds=2).fit(emb[0], train["prdtypecode"].to_numpy())
    params = Params.model_validate({"image": {"image_size": 64}})
    model = assemble(text, image, train, emb, params, val=(val, embeddings(val)))
    assert model.fusion is not None  # learned from validation predictions (no out-of-fold ones)
    assert text.val_proba_ is None  # a training by-product, not carried by the served model
    no_val = assemble(copy.deepcopy(clf), image, train, emb, params, val=None)
    assert no_val.fusion is None  # nothing held out: no fusion rather than one fitted on training rows


def test_refit_trains_for_the_epochs_early_stopping_chose(
    trained: tuple[TransformerTextClassifier, pd.DataFrame],
) -> None:
    clf, val = trained
    frame = pd.concat([listings(24, 0), val])
    new = clf.refit(frame, frame["prdtypecode"].to_numpy())
    assert len(new.history_) == clf.best_epoch_
    assert all("val_weighted_f1" not in h for h in new.history_)
    assert new.val_proba_ is None and new.predict_proba(val).shape == (len(val), 4)


def test_checkpoint_resume_gives_the_uninterrupted_model(tmp_path: Path) -> None:
    train, val = listings(10, 5), listings(3, 6)
    y, val_data = train["prdtypecode"].to_numpy(), (val, val["prdtypecode"].to_numpy())
    # Both runs start from one local folder, as from a hub model: what is compared is training.
    start = rt.build_tiny_backbone(
        tmp_path / "start", listing_texts(train, 1000), 4, tiny_params().tiny, 32, 1
    )
    params = tiny_params(tiny=None, model=str(start), epochs=3, onnx=False)
    straight = TransformerTextClassifier(params, 7, tmp_path / "a").fit(train, y, val=val_data)

    class Interrupted(Exception):
        pass

    def stop_after_first(metrics: dict[str, float]) -> None:
        raise Interrupted

    broken = TransformerTextClassifier(params, 7, tmp_path / "b")
    broken.on_epoch = stop_after_first
    with pytest.raises(Interrupted):
        broken.fit(train, y, val=val_data)
    resumed = TransformerTextClassifier(params, 7, tmp_path / "b")
    seen: list[int] = []
    resumed.on_epoch = lambda m: seen.append(int(m["epoch"]))
    resumed.fit(train, y, val=val_data)
    assert seen == [2, 3]  # epoch 1 came from the checkpoint

    def timeless(history: list[dict[str, float]]) -> list[dict[str, float]]:
        return [{k: v for k, v in h.items() if k != "train_samples_per_second"} for h in history]

    assert timeless(resumed.history_) == timeless(straight.history_)
    np.testing.assert_array_equal(resumed.predict_proba(val), straight.predict_proba(val))


def test_loads_a_backbone_by_folder_with_from_pretrained(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    train = listings(8, 2)
    folder = rt.build_tiny_backbone(
        tmp_path / "hub-copy", listing_texts(train, 1000), 4, tiny_params().tiny, 32, seed=1
    )
    net = transformers.AutoModelForSequenceClassification.from_pretrained(folder)
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    assert net.config.num_labels == 4 and tok("piscine hors sol")["input_ids"][0] == tok.cls_token_id
    # `text.transformer.model` given as a local folder takes the same path as a hub id.
    clf = TransformerTextClassifier(tiny_params(tiny=None, model=str(folder), epochs=1, onnx=False), 1)
    clf.fit(train, train["prdtypecode"].to_numpy())
    assert clf.selection_["backbone"] == str(folder)
    assert clf.predict_proba(train).shape == (len(train), 4)


def test_device_selection_falls_back_to_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    device = rt.select_device("auto")
    assert device.type == "cpu"
    assert rt.resolve_precision("auto", device) == "no"
    with pytest.raises(InvalidInputError, match="no CUDA device"):
        rt.select_device("cuda")
    with pytest.raises(InvalidInputError, match="fp16 needs a GPU"):
        rt.resolve_precision("fp16", device)


def test_cuda_is_preferred_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    device = rt.select_device("auto")
    assert device.type == "cuda"
    assert rt.resolve_precision("auto", device) == "fp16"


def test_a_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # import fails as if not installed
    with pytest.raises(rt.MissingDeepExtraError, match=r"rakuten-mlops\[deep\]"):
        rt.require_transformers()


NO_TORCH = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "transformers", "torchvision"}:
            raise ImportError(f"{name} is not installed in this image")
sys.meta_path.insert(0, Block())
import joblib, pandas as pd
model = joblib.load(sys.argv[1])
frame = pd.DataFrame({"designation": ["piscine hors sol filtre"], "description": [""]})
print(model.text.uses_onnx(), model.predict_frame(frame)["prdtypecode"].iloc[0])
assert "torch" not in sys.modules
"""


def test_an_exported_model_predicts_without_torch(
    trained: tuple[TransformerTextClassifier, pd.DataFrame], tmp_path: Path
) -> None:
    import subprocess

    from rakuten_mlops.models.pyfunc import save_product_classifier

    clf, _ = trained
    path = save_product_classifier(ProductClassifier(text=clf), tmp_path)
    src = Path(__file__).resolve().parents[2] / "src"
    done = subprocess.run(
        [sys.executable, "-c", NO_TORCH, str(path)], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(src)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    uses_onnx, code = done.stdout.split()
    assert uses_onnx == "True" and int(code) in WORDS


def test_same_data_and_seed_give_the_same_tiny_model() -> None:
    """The tiny backbone's vocabulary and weights are rebuilt identically (no hash-order ties)."""
    train = listings(8, 4)
    y = train["prdtypecode"].to_numpy()
    runs = [TransformerTextClassifier(tiny_params(epochs=1, onnx=False), 5).fit(train, y) for _ in range(2)]
    assert runs[0].tokenizer_json_ == runs[1].tokenizer_json_
    np.testing.assert_array_equal(runs[0].predict_proba(train), runs[1].predict_proba(train))


def test_epochs_are_logged_to_an_active_mlflow_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is ./mlruns
    train = listings(6, 8)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        with mlflow.start_run() as run:
            clf = TransformerTextClassifier(tiny_params(epochs=2, onnx=False), 2)
            clf.fit(train, train["prdtypecode"].to_numpy(), val=(train, train["prdtypecode"].to_numpy()))
        history = mlflow.tracking.MlflowClient().get_metric_history(
            run.info.run_id, "transformer_val_weighted_f1"
        )
    finally:
        mlflow.set_tracking_uri(None)
    assert [m.step for m in history] == [1, 2]
