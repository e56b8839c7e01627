"""Continuous training without churn, on a tiny text sample: reproducible runs, no duplicate
versions, an equal score never promoted, a drift reference that follows the champion."""

from __future__ import annotations

from pathlib import Path

import joblib
import pandas as pd
import pytest

from rakuten_mlops.config import Params
from rakuten_mlops.lifecycle.registry import client, get_champion
from rakuten_mlops.pipelines.layout import WorkDir
from rakuten_mlops.pipelines.monitoring_reference import load_reference
from rakuten_mlops.pipelines.refit import final_model_path
from rakuten_mlops.pipelines.runner import run_pipeline
from tests.helpers import fast_params, make_settings

pytestmark = pytest.mark.slow


def text_params(min_gain: float = 0.0) -> Params:
    return fast_params(image={"enabled": False}, promotion={"min_f1": 0.0, "min_gain": min_gain})


def predictions(work: WorkDir, frame: pd.DataFrame) -> list[int]:
    return [int(c) for c in joblib.load(final_model_path(work)).predict_frame(frame)["prdtypecode"]]


def versions(settings: object) -> list[str]:
    c = client(settings)  # type: ignore[arg-type]
    return sorted(str(v.version) for v in c.search_model_versions(f"name='{settings.model_name}'"))  # type: ignore[attr-defined]


def test_two_runs_on_identical_inputs_give_the_same_model_and_no_second_promotion(
    home: Path, text_sample_dir: Path, tmp_path: Path
) -> None:
    settings, params = make_settings(home), text_params()
    first = run_pipeline(text_sample_dir, settings, params, WorkDir(tmp_path / "first"))
    assert first["register"]["version"] == "1" and first["promote"]["promote"] is True
    second = run_pipeline(text_sample_dir, settings, params, WorkDir(tmp_path / "second"))
    frame = pd.read_parquet(WorkDir(tmp_path / "first").split_path("test"))
    assert predictions(WorkDir(tmp_path / "second"), frame) == predictions(WorkDir(tmp_path / "first"), frame)
    assert second["evaluate"]["scores"] == first["evaluate"]["scores"]
    # The model bytes may still differ in the last digits of a coefficient (liblinear), so the
    # duplicate is found by the inputs tagged on the champion, not by the bytes.
    assert second["register"]["reused"] is True and second["register"]["version"] == "1"
    assert second["register"]["same_inputs_as_champion"] is True
    assert "nothing new registered" in second["register"]["note"]
    assert second["promote"]["promote"] is False and second["promote"]["unchanged"] is True
    assert versions(settings) == ["1"]
    tags = get_champion(client(settings), settings.model_name).tags  # type: ignore[union-attr]
    assert {"code_version", "data_hash", "params_hash"} <= set(tags)
    assert tags["data_hash"] == first["ingest"]["data_hash"]


def test_a_challenger_whose_inputs_match_the_champion_is_not_registered_even_if_its_bytes_differ(
    home: Path, text_sample_dir: Path, tmp_path: Path
) -> None:
    settings, params = make_settings(home), text_params()
    run_pipeline(text_sample_dir, settings, params, WorkDir(tmp_path / "first"))
    work = WorkDir(tmp_path / "second")
    run_pipeline(text_sample_dir, settings, params, work)
    # The same inputs, but model bytes that differ (as a non-deterministic library would give).
    from rakuten_mlops.pipelines.register import promote, register

    model = joblib.load(final_model_path(work))
    model.metadata["noise"] = "different bytes"
    joblib.dump(model, final_model_path(work))
    registered = register(work, settings, params)
    assert registered["version"] == "1" and registered["same_inputs_as_champion"] is True
    assert promote(work, settings, params)["promote"] is False
    assert versions(settings) == ["1"]


def test_after_a_rejected_retrain_the_drift_reference_is_still_the_champions(
    home: Path, text_sample_dir: Path, tmp_path: Path
) -> None:
    from rakuten_mlops.simulation.core.sample import generate_sample

    settings = make_settings(home)
    champion = run_pipeline(text_sample_dir, settings, text_params(), WorkDir(home / "pipeline"))
    champion_ids = set(pd.read_parquet(WorkDir(home / "pipeline").split_path("train"))["productid"])
    other = tmp_path / "other"
    generate_sample(other, n_per_class=12, seed=11, with_images=False)
    # The default work folder now holds the rejected run's data.
    rejected = run_pipeline(other, settings, text_params(min_gain=1.0), WorkDir(home / "pipeline"))
    assert rejected["register"]["version"] == "2" and rejected["promote"]["promote"] is False
    assert "bootstrap interval" in " ".join(rejected["promote"]["reasons"])
    assert rejected["promote"]["interval"]["of"] == "gold weighted F1 gain over the champion"
    ref = load_reference(settings, max_rows=100_000, seed=0)
    assert ref.champion_version == "1" and ref.is_champion and ref.warning is None
    assert ref.data_hash == champion["ingest"]["data_hash"] != rejected["ingest"]["data_hash"]
    assert "champion v1 training data" in ref.source
    assert champion_ids <= set(ref.productids)
    assert not set(ref.productids) & set(
        pd.read_parquet(WorkDir(home / "pipeline").split_path("train"))["productid"]
    )


def test_a_reference_that_is_not_the_champions_says_so(
    home: Path, text_sample_dir: Path, tmp_path: Path
) -> None:
    import shutil

    from rakuten_mlops.pipelines.monitoring_store import MonitoringDir

    settings = make_settings(home)
    run_pipeline(text_sample_dir, settings, text_params(), WorkDir(tmp_path / "elsewhere"))
    shutil.rmtree(MonitoringDir.of_home(home).reference)  # e.g. a version registered before snapshots
    shutil.copytree(text_sample_dir, home / "streams" / "initial")
    ref = load_reference(settings, max_rows=100_000, seed=0)
    assert not ref.is_champion
    assert ref.warning is not None and "NOT the champion's training data" in ref.warning


def test_fresh_and_cached_image_embeddings_are_the_same_numbers(tmp_path: Path) -> None:
    import io

    import numpy as np
    from PIL import Image

    from rakuten_mlops.features.images import EmbeddingCache, ImageEmbedder

    pytest.importorskip("torch", reason="image embeddings need the vision extra")
    images = []
    for colour in ((200, 30, 30), (20, 160, 90), (240, 240, 10)):
        buf = io.BytesIO()
        Image.new("RGB", (48, 48), colour).save(buf, "JPEG")
        images.append(buf.getvalue())
    embedder = ImageEmbedder(image_size=64)
    cache = EmbeddingCache(tmp_path / "cache", embedder.backbone, embedder.image_size)
    fresh, ok = embedder.embed_bytes(images, cache)  # computed, then written to the cache
    cached, ok_again = embedder.embed_bytes(images, cache)  # read back from the float16 cache
    assert ok.all() and ok_again.all() and fresh.dtype == cached.dtype == np.float32
    assert np.array_equal(fresh, cached)
    assert np.array_equal(fresh, fresh.astype(np.float16).astype(np.float32))
    assert np.array_equal(embedder.embed_bytes(images)[0], fresh)  # no cache at all: the same too
