"""Loading the challenge layout: clear errors naming the file and the expected layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rakuten_mlops.data.loader import load_dataset, load_listings_file
from rakuten_mlops.data.schema import X_TEST, X_TRAIN, Y_TRAIN, LayoutError


def copy_sample(src: Path, dst: Path, images: bool = False) -> Path:
    dst.mkdir(parents=True)
    for name in (X_TRAIN, Y_TRAIN, X_TEST):
        shutil.copy(src / name, dst / name)
    if images and (src / "images").is_dir():
        shutil.copytree(src / "images", dst / "images")
    return dst


def test_loads_text_only_folder(text_sample_dir: Path) -> None:
    raw = load_dataset(text_sample_dir)
    assert raw.has_labels and not raw.has_images
    assert raw.frame.index.name == "index"
    assert raw.frame["image_path"].isna().all()


def test_loads_images(image_sample_dir: Path) -> None:
    raw = load_dataset(image_sample_dir)
    assert raw.has_images
    assert all(Path(p).is_file() for p in raw.frame["image_path"])


@pytest.mark.parametrize("missing", [X_TRAIN, Y_TRAIN])
def test_missing_required_file(text_sample_dir: Path, tmp_path: Path, missing: str) -> None:
    d = copy_sample(text_sample_dir, tmp_path / "d")
    (d / missing).unlink()
    with pytest.raises(LayoutError) as err:
        load_dataset(d)
    assert missing in str(err.value) and "expected layout" in str(err.value)


def test_wrong_columns(text_sample_dir: Path, tmp_path: Path) -> None:
    d = copy_sample(text_sample_dir, tmp_path / "d")
    text = (d / X_TRAIN).read_text(encoding="utf-8").replace("designation", "title", 1)
    (d / X_TRAIN).write_text(text, encoding="utf-8")
    with pytest.raises(LayoutError, match="missing column"):
        load_dataset(d)


def test_labels_without_listing(text_sample_dir: Path, tmp_path: Path) -> None:
    d = copy_sample(text_sample_dir, tmp_path / "d")
    with (d / Y_TRAIN).open("a") as f:
        f.write("999999,10\n")
    with pytest.raises(LayoutError, match="no listing"):
        load_dataset(d)


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match="does not exist"):
        load_dataset(tmp_path / "nope")


def test_test_split_and_single_file(text_sample_dir: Path) -> None:
    raw = load_dataset(text_sample_dir, split="test")
    assert not raw.has_labels and len(raw.frame) > 0
    one = load_listings_file(text_sample_dir / X_TEST)
    assert len(one.frame) == len(raw.frame)


def test_real_head499_format(shared_rakuten: Path) -> None:
    raw = load_dataset(shared_rakuten / "head499")
    assert len(raw.frame) == 499
    assert raw.frame["prdtypecode"].nunique() == 27
    assert raw.frame["description"].str.contains("<br|&eacute;|&#", regex=True).any()
