"""Drift: detected on an injected shift, not on a batch from the same source; report + summary written."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from rakuten_mlops.config import DriftParams, Params, Settings, StreamsParams
from rakuten_mlops.monitoring.drift import _chi_square_homogeneity, _text_domain_auc, compute_drift
from rakuten_mlops.monitoring.features import monitoring_frame
from rakuten_mlops.pipelines.monitoring import drift_report
from rakuten_mlops.pipelines.monitoring_sources import image_bytes
from rakuten_mlops.simulation.core.cutting import apply_text_drift, cut_stream, parse_drift_spec
from rakuten_mlops.simulation.core.sample import generate_listings
from rakuten_mlops.simulation.replay.steps import make_streams


@pytest.fixture(scope="module")
def cut() -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    frame = generate_listings(30, seed=5)
    c = cut_stream(frame, 3, 0.5, seed=5)
    return c.initial, c.batches


def test_same_source_batches_do_not_drift(cut: tuple[pd.DataFrame, list[pd.DataFrame]]) -> None:
    initial, batches = cut
    reference = monitoring_frame(initial)
    for batch in batches:
        summary = compute_drift(reference, monitoring_frame(batch), DriftParams()).summary
        assert summary["drift_share"] < DriftParams().drift_share, summary["drifted_columns"]
        assert set(summary["columns"]) == {
            "text",
            "title_length",
            "description_length",
            "description_empty",
            "language",
            "label",
        }


@pytest.mark.parametrize(
    ("kind", "must_drift"),
    [
        ("class_mix", {"label"}),
        ("empty_description", {"description_empty", "description_length"}),
        ("language", {"language", "text"}),
    ],
)
def test_injected_shift_is_detected(
    kind: str, must_drift: set[str], cut: tuple[pd.DataFrame, list[pd.DataFrame]]
) -> None:
    initial, batches = cut
    sp = StreamsParams()
    plan = parse_drift_spec(f"1:{kind}", 3, sp.default_drift, sp.drift)
    drifted = apply_text_drift(batches[0], plan[1], sp.drift, seed=1).frame
    summary = compute_drift(monitoring_frame(initial), monitoring_frame(drifted), DriftParams()).summary
    assert must_drift <= set(summary["drifted_columns"])
    for col in must_drift:
        info = summary["columns"][col]
        assert info["drifted"] and info["score"] is not None and info["test"]


def test_image_and_prediction_columns(cut: tuple[pd.DataFrame, list[pd.DataFrame]]) -> None:
    initial, batches = cut
    rng = np.random.default_rng(0)
    ref = monitoring_frame(initial, predicted=initial["prdtypecode"])
    cur = monitoring_frame(batches[0], predicted=[2583] * len(batches[0]))
    for frame, mean in ((ref, 180.0), (cur, 90.0)):
        frame["image_brightness"] = rng.normal(mean, 20, len(frame))
        frame["image_contrast"] = rng.normal(40, 5, len(frame))
        frame["image_size"] = 500.0
    summary = compute_drift(ref, cur, DriftParams()).summary
    assert {"image_brightness", "predicted_code"} <= set(summary["drifted_columns"])
    assert not summary["columns"]["image_size"]["drifted"]
    assert not summary["columns"]["image_contrast"]["drifted"]


def test_statistical_tests_are_calibrated_on_the_null() -> None:
    rng = np.random.default_rng(1)
    codes = pd.Series(rng.choice(["10", "40", "2583", "1160"], 3000, p=[0.1, 0.2, 0.6, 0.1]))
    same = pd.Series(rng.choice(["10", "40", "2583", "1160"], 200, p=[0.1, 0.2, 0.6, 0.1]))
    other = pd.Series(rng.choice(["10", "40", "2583", "1160"], 200, p=[0.4, 0.2, 0.3, 0.1]))
    assert not _chi_square_homogeneity(codes, same, None, 0.01)[1]
    assert _chi_square_homogeneity(codes, other, None, 0.01)[1]
    words = np.array(["chaise", "table", "jardin", "lampe", "livre", "jeu", "tapis", "piscine"])
    ref = pd.Series([" ".join(rng.choice(words, 6)) for _ in range(600)])
    cur = pd.Series([" ".join(rng.choice(words, 6)) for _ in range(200)])
    shifted = pd.Series([" ".join(rng.choice(words, 5)) + " pool garden" for _ in range(200)])
    auc, drifted = _text_domain_auc(ref, cur, None, 0.99)
    assert not drifted and auc < 0.6
    assert _text_domain_auc(ref, shifted, None, 0.99)[1]


def test_drift_step_writes_html_and_summary_naming_drifted_columns(
    sample_dir: Path, settings: Settings, params: Params, tmp_path: Path
) -> None:
    streams = tmp_path / "streams"
    make_streams(sample_dir, streams, 2, "2:empty_description", settings, params)
    out = tmp_path / "report"
    summary = drift_report(streams / "initial", streams / "batches" / "batch_002", out, settings, params)
    assert {"description_empty", "description_length"} <= set(summary["drifted_columns"])
    saved = json.loads((out / "summary.json").read_text())
    assert saved["drift_share"] == summary["drift_share"]
    assert saved["columns"]["description_empty"]["test"] == "chisquare_homogeneity"
    assert saved["skipped_columns"]["predicted_code"].startswith("disabled")
    html = (out / "report.html").read_text()
    assert "Drifted columns: <b>" + ", ".join(summary["drifted_columns"]) + "</b>" in html
    assert "<script src=" not in html  # self-contained
    latest = json.loads((settings.home / "monitoring" / "drift" / "latest.json").read_text())
    assert latest["html_path"] == str(out / "report.html")


def test_drift_needs_a_reference(settings: Settings, params: Params) -> None:
    with pytest.raises(FileNotFoundError, match="pipeline run"):
        drift_report(None, pd.DataFrame({"designation": ["x"]}), None, settings, params)


def test_image_statistics_come_from_the_bytes_passed_in(tmp_path: Path) -> None:
    """The pure library decodes bytes it is given; reading the files is the pipeline's job."""
    buf = io.BytesIO()
    Image.new("RGB", (40, 10), (200, 200, 200)).save(buf, format="PNG")
    listings = pd.DataFrame(
        {"designation": ["a", "b", "c"], "image_path": [str(tmp_path / "x.png"), None, "missing.png"]}
    )
    (tmp_path / "x.png").write_bytes(buf.getvalue())
    frame = monitoring_frame(listings, images=image_bytes(listings))
    assert frame.loc[0, "image_size"] == 20.0 and frame.loc[0, "image_brightness"] == pytest.approx(
        200, abs=1
    )
    assert frame.loc[1:, "image_size"].isna().all()  # no path, unreadable path: no statistic
    assert monitoring_frame(listings, images=[b"not an image", None, None])["image_size"].isna().all()
    assert "image_size" not in monitoring_frame(listings).columns  # no images given: no image columns
    with pytest.raises(ValueError, match="2 images for 3 listings"):
        monitoring_frame(listings, images=[None, None])
