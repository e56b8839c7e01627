"""`data import`: the challenge downloads become a data folder; unsafe archives are refused."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from rakuten_mlops.data.importer import import_challenge_files
from rakuten_mlops.data.loader import load_dataset
from rakuten_mlops.data.schema import X_TEST, X_TRAIN, Y_TRAIN, LayoutError


def downloads(sample: Path, tmp: Path) -> Path:
    dl = tmp / "downloads"
    dl.mkdir()
    for name in (X_TRAIN, Y_TRAIN, X_TEST):
        (dl / name).write_bytes((sample / name).read_bytes())
    with zipfile.ZipFile(dl / "images.zip", "w") as zf:
        for sub in ("image_train", "image_test"):
            for p in (sample / "images" / sub).iterdir():
                zf.write(p, f"images/{sub}/{p.name}")
        zf.writestr("../../evil.jpg", b"x")  # zip slip: must be ignored
        zf.writestr("/abs/evil.jpg", b"x")
    return dl


def test_import_lays_out_challenge_folder(image_sample_dir: Path, tmp_path: Path) -> None:
    dl = downloads(image_sample_dir, tmp_path)
    out = tmp_path / "data"
    summary = import_challenge_files([dl], out)
    assert summary.files[X_TRAIN] == summary.files[Y_TRAIN]
    raw = load_dataset(out)
    assert raw.has_images
    assert summary.images["image_train"] == len(raw.frame)
    assert not (tmp_path / "evil.jpg").exists() and not list(out.rglob("evil.jpg"))


def test_import_individual_files(text_sample_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    summary = import_challenge_files([text_sample_dir / X_TRAIN, text_sample_dir / Y_TRAIN], out)
    assert summary.images == {} and X_TEST not in summary.files
    assert not load_dataset(out).has_images


def test_import_requires_train_files(text_sample_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match="missing required file"):
        import_challenge_files([text_sample_dir / X_TRAIN], tmp_path / "data")


def test_import_checks_csv_columns(tmp_path: Path) -> None:
    (tmp_path / X_TRAIN).write_text(",a,b\n0,1,2\n")
    (tmp_path / Y_TRAIN).write_text(",prdtypecode\n0,10\n")
    with pytest.raises(LayoutError, match="missing column"):
        import_challenge_files([tmp_path], tmp_path / "out")
