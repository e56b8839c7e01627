"""Stream cutting: counts, order, no overlap with the initial pool, drift applied as described."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from rakuten_mlops.config import InjectedDriftParams, Params, Settings, StreamsParams
from rakuten_mlops.data.loader import load_dataset
from rakuten_mlops.data.schema import LABEL
from rakuten_mlops.monitoring.features import monitoring_frame
from rakuten_mlops.monitoring.language import detect_language
from rakuten_mlops.pipelines.monitoring_sources import image_bytes
from rakuten_mlops.simulation.core.cutting import (
    DriftKind,
    cut_stream,
    parse_drift_spec,
    transform_image,
    translate_title,
)
from rakuten_mlops.simulation.core.sample import generate_listings
from rakuten_mlops.simulation.replay.steps import make_streams


def test_cut_is_complete_disjoint_and_seeded() -> None:
    frame = generate_listings(10, seed=3)
    cut = cut_stream(frame, 4, 0.5, seed=1)
    parts = [cut.initial, *cut.batches]
    assert sum(len(p) for p in parts) == len(frame)
    assert len(pd.Index(np.concatenate([p.index for p in parts])).unique()) == len(frame)
    assert abs(len(cut.initial) - len(frame) / 2) <= 1
    sizes = [len(b) for b in cut.batches]
    assert max(sizes) - min(sizes) <= 1
    assert set(cut.initial[LABEL]) == set(frame[LABEL])  # stratified: every class starts in the pool
    again = cut_stream(frame, 4, 0.5, seed=1)
    assert [b.index.tolist() for b in again.batches] == [b.index.tolist() for b in cut.batches]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("3", {3: ["class_mix", "empty_description", "language"]}),
        ("2:language;3,4:dark_images=0.5", {2: ["language"], 3: ["dark_images"], 4: ["dark_images"]}),
    ],
)
def test_drift_spec(spec: str, expected: dict[int, list[str]]) -> None:
    sp = StreamsParams()
    plan = parse_drift_spec(spec, 4, sp.default_drift, sp.drift)
    assert {b: [k.kind for k in kinds] for b, kinds in plan.items()} == expected
    if 3 in plan and plan[3][0].kind == "dark_images":
        assert plan[3][0].strength == 0.5


@pytest.mark.parametrize("spec", ["5:language", "x:language", "2:sunburn", "2:class_mix=1.5"])
def test_bad_drift_spec(spec: str) -> None:
    sp = StreamsParams()
    with pytest.raises(ValueError):
        parse_drift_spec(spec, 4, sp.default_drift, sp.drift)


def test_make_streams_layout_and_metadata(
    sample_dir: Path, settings: Settings, params: Params, tmp_path: Path
) -> None:
    out = tmp_path / "streams"
    result = make_streams(sample_dir, out, 3, "3", settings, params)
    source = load_dataset(sample_dir).frame
    initial = load_dataset(out / "initial").frame
    pool = load_dataset(out / "pool").frame
    assert initial.index.equals(pool.index)
    batches = [load_dataset(out / "batches" / f"batch_{i:03d}").frame for i in (1, 2, 3)]
    seen = initial.index
    for b in batches:
        assert not b.index.isin(seen).any()  # no overlap with the pool nor between batches
        assert b.index.isin(source.index).all()
        seen = seen.append(b.index)
    # Untouched batches are the source rows, byte for byte.
    for b in batches[:2]:
        pd.testing.assert_frame_equal(
            b.drop(columns="image_path"), source.loc[b.index].drop(columns="image_path")
        )
    meta = json.loads((out / "batches" / "batch_003" / "metadata.json").read_text())
    kinds = {d["kind"]: d for d in meta["drift"]}
    assert set(kinds) == {"class_mix", "empty_description", "language"}
    drifted = batches[2]
    codes = {str(c) for c in kinds["class_mix"]["codes"]}
    share = drifted[LABEL].isin(codes).mean()
    assert share == pytest.approx(kinds["class_mix"]["share"], abs=1e-3)
    assert share > 2 * source[LABEL].isin(codes).mean()
    assert drifted["description"].eq("").mean() >= 0.85
    langs = monitoring_frame(drifted)["language"]
    assert (langs == "en").mean() > 0.5
    assert [b["drift"] for b in result["batches"]][:2] == [[], []]
    assert json.loads((out / "batches" / "batch_001" / "metadata.json").read_text())["drift"] == []
    with pytest.raises(ValueError, match="already holds streams"):
        make_streams(sample_dir, out, 3, None, settings, params)


def test_image_drift_darkens_and_shrinks(
    small_image_sample_dir: Path, settings: Settings, params: Params, tmp_path: Path
) -> None:
    out = tmp_path / "streams"
    make_streams(small_image_sample_dir, out, 2, "2:dark_images+small_images=0.5", settings, params)
    plain_rows = load_dataset(out / "batches" / "batch_001").frame
    dark_rows = load_dataset(out / "batches" / "batch_002").frame
    plain = monitoring_frame(plain_rows, images=image_bytes(plain_rows))
    dark = monitoring_frame(dark_rows, images=image_bytes(dark_rows))
    assert plain["image_size"].eq(48).all()
    assert dark["image_size"].eq(24).all()
    assert dark["image_brightness"].mean() < 0.6 * plain["image_brightness"].mean()


def test_transform_image_and_language_helpers() -> None:
    img = Image.new("RGB", (100, 60), (200, 200, 200))
    out = transform_image(img, [DriftKind("dark_images", 0.5), DriftKind("small_images", 0.3)])
    assert out.size == (30, 18)
    assert np.asarray(out).mean() == pytest.approx(100, abs=2)
    english = translate_title("Chaise de jardin noir pour enfant", "en")
    assert detect_language(english.lower()) == "en"
    assert detect_language("chaise de jardin pour enfant, très bon état") == "fr"
    assert detect_language("stuhl für kinder, neu und originalverpackt") == "de"
    assert detect_language("") == "unknown"
    assert InjectedDriftParams().class_mix_codes == [2582, 2583, 2585]
