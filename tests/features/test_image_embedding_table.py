"""The image embedding table: Parquet parts keyed by image content hash, shared by writers and
readers in any process, with the per-image `.npy` layout still read and migrated."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rakuten_mlops.features.images import EmbeddingCache, ImageEmbedder, content_hash

DIM = 1280


def vectors(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)


def parts(cache: EmbeddingCache) -> list[Path]:
    return sorted(cache.table_dir.glob("part-*.parquet"))


def test_rows_written_by_one_process_are_read_by_another(tmp_path: Path) -> None:
    writer = EmbeddingCache(tmp_path, "efficientnet_lite0", 224)
    vecs = vectors(5)
    keys = [f"{i:064x}" for i in range(5)]
    for k, v in zip(keys, vecs, strict=True):
        writer.put(k, v)
    assert parts(writer) == []  # buffered until a flush
    writer.flush()
    (part,) = parts(writer)
    table = pd.read_parquet(part)
    assert table["key"].tolist() == keys and len(table["embedding"].iloc[0]) == DIM * 2

    reader = EmbeddingCache(tmp_path, "efficientnet_lite0", 224)  # a fresh index, as in another process
    assert len(reader) == 5
    for k, v in zip(keys, vecs, strict=True):
        np.testing.assert_array_equal(reader.get(k), v.astype(np.float16).astype(np.float32))
    assert reader.get("f" * 64) is None
    # another backbone or image size is another table
    assert EmbeddingCache(tmp_path, "efficientnet_lite0", 64).get(keys[0]) is None


def test_concurrent_writers_add_parts_of_their_own(tmp_path: Path) -> None:
    a, b = (EmbeddingCache(tmp_path, "efficientnet_lite0", 224) for _ in range(2))
    a.put("a" * 64, vectors(1, 1)[0])
    b.put("b" * 64, vectors(1, 2)[0])
    a.flush()
    b.flush()
    assert len(parts(a)) == 2
    assert len(EmbeddingCache(tmp_path, "efficientnet_lite0", 224)) == 2


def test_a_full_buffer_is_written_as_a_part(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(EmbeddingCache, "PART_ROWS", 3)
    cache = EmbeddingCache(tmp_path, "efficientnet_lite0", 224)
    for i, v in enumerate(vectors(7)):
        cache.put(f"{i:064x}", v)
    assert len(parts(cache)) == 2 and len(cache) == 7  # 3 + 3 written, 1 still buffered
    cache.flush()
    assert len(parts(cache)) == 3


def test_the_per_image_npy_layout_is_still_read(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, "efficientnet_lite0", 224)
    key = "ab" + "0" * 62
    old = cache.dir / key[:2] / f"{key}.npy"
    old.parent.mkdir(parents=True)
    np.save(old, vectors(1)[0].astype(np.float16))
    np.testing.assert_array_equal(cache.get(key), np.load(old))
    assert parts(cache) == []  # read in place, nothing rewritten


def test_embedding_twice_computes_nothing_the_second_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    embedder = ImageEmbedder(image_size=32)
    computed: list[int] = []

    def fake_embed(arrays: list[np.ndarray]) -> np.ndarray:  # the CNN without torch, float16-rounded as it is
        computed.append(len(arrays))
        return np.stack([np.full(DIM, float(a.mean()), np.float16) for a in arrays]).astype(np.float32)

    monkeypatch.setattr(embedder, "embed_arrays", fake_embed)
    images = []
    for shade in (10, 120, 240):
        buf = io.BytesIO()
        Image.new("RGB", (40, 40), (shade, shade, shade)).save(buf, "PNG")
        images.append(buf.getvalue())
    cache = EmbeddingCache.for_embedder(tmp_path, embedder)
    first, ok = embedder.embed_bytes([*images, None], cache)
    assert computed == [3] and ok.tolist() == [True, True, True, False]
    assert len(parts(cache)) == 1  # written at the end of the call
    fresh_reader = EmbeddingCache.for_embedder(tmp_path, embedder)
    second, ok2 = embedder.embed_bytes([*images, None], fresh_reader)
    assert computed == [3] and ok2.tolist() == ok.tolist()
    np.testing.assert_array_equal(first, second)  # the same numbers, fresh or from the table
    assert fresh_reader.get(content_hash(images[0])) is not None


def test_a_logged_model_finds_the_table_through_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedder = ImageEmbedder(image_size=32)
    monkeypatch.delenv(EmbeddingCache.ENV, raising=False)
    assert EmbeddingCache.from_env(embedder) is None
    monkeypatch.setenv(EmbeddingCache.ENV, str(tmp_path))
    cache = EmbeddingCache.from_env(embedder)
    assert cache is not None and cache.dir == tmp_path / "efficientnet_lite0-32"
    assert EmbeddingCache.from_env(embedder) is cache  # one per process: its index is read once


def test_the_embedder_runs_on_the_device_asked_for_and_falls_back_to_the_cpu() -> None:
    pytest.importorskip("torch", reason="needs the 'vision' extra")
    import torch

    from rakuten_mlops.errors import InvalidInputError

    auto = ImageEmbedder(image_size=32)
    auto._load()
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert auto._device.type == expected
    assert next(auto._model.parameters()).device.type == expected
    assert auto.embed_arrays([np.zeros((3, 32, 32), np.float32)]).shape == (1, DIM)
    restored = pickle.loads(pickle.dumps(auto))  # the network is not pickled: it reloads where it runs
    assert restored._model is None and restored.device == "auto"
    if not torch.cuda.is_available():
        with pytest.raises(InvalidInputError, match=r"image\.device is cuda but this machine has no CUDA"):
            ImageEmbedder(image_size=32, device="cuda")._load()
