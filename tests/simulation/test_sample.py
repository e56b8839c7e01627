"""The built-in sample generator writes the exact challenge layout, realistically and deterministically."""

from __future__ import annotations

import filecmp
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from rakuten_mlops.categories import CODES
from rakuten_mlops.data.loader import load_dataset
from rakuten_mlops.data.schema import X_TEST, X_TRAIN, Y_TRAIN, image_filename
from rakuten_mlops.simulation.core.sample import class_sizes, generate_listings, generate_sample, render_image


def test_layout_and_columns(image_sample_dir: Path) -> None:
    for name in (X_TRAIN, Y_TRAIN, X_TEST):
        assert (image_sample_dir / name).is_file()
    header = (image_sample_dir / X_TRAIN).read_text(encoding="utf-8").splitlines()[0]
    assert header == ",designation,description,productid,imageid"
    assert (image_sample_dir / Y_TRAIN).read_text().splitlines()[0] == ",prdtypecode"
    raw = load_dataset(image_sample_dir)
    assert sorted(raw.frame["prdtypecode"].astype(int).unique()) == sorted(CODES)
    row = raw.frame.iloc[0]
    img = image_sample_dir / "images/image_train" / image_filename(int(row.imageid), int(row.productid))
    with Image.open(img) as im:
        assert im.format == "JPEG" and im.size == (96, 96)


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    generate_sample(a, n_per_class=3, seed=11, image_size=48)
    generate_sample(b, n_per_class=3, seed=11, image_size=48)
    for name in (X_TRAIN, Y_TRAIN, X_TEST):
        assert filecmp.cmp(a / name, b / name, shallow=False)
    files = sorted(p.name for p in (a / "images/image_train").iterdir())
    assert files == sorted(p.name for p in (b / "images/image_train").iterdir())
    assert all(
        filecmp.cmp(a / "images/image_train" / f, b / "images/image_train" / f, shallow=False) for f in files
    )
    c = generate_listings(3, seed=12)
    assert not c["designation"].equals(
        pd.read_csv(a / X_TRAIN, index_col=0, keep_default_na=False)["designation"]
    )


def test_real_class_proportions() -> None:
    sizes = class_sizes(40)
    assert max(sizes, key=sizes.__getitem__) == 2583
    assert min(sizes, key=sizes.__getitem__) == 1180
    assert abs(sum(sizes.values()) / 27 - 40) < 2


def test_listings_look_real() -> None:
    frame = generate_listings(60, seed=1)
    empty = (frame["description"] == "").mean()
    assert 0.28 < empty < 0.42
    desc = frame["description"]
    assert desc.str.contains("&eacute;|&agrave;", regex=True).any()
    assert desc.str.contains("<br />|<p>|<li>", regex=True).any()
    titles = frame["designation"].str.lower()
    assert titles.str.contains(r"\bneu\b|\bnew\b", regex=True).mean() > 0.02  # some German/English
    assert frame["productid"].is_unique and frame["imageid"].is_unique
    # confusable family: book classes share vocabulary
    books = frame[frame.prdtypecode.isin([10, 2280, 2403, 2705])]["designation"].str.lower()
    assert books.str.contains("livre|édition|tome").groupby(frame.prdtypecode).any().all()


def test_images_carry_class_signal() -> None:
    # Same class -> similar mean colour more often than different classes.
    def mean_rgb(code: int, seed: int) -> np.ndarray:
        return np.asarray(render_image(code, np.random.default_rng(seed), 64)).reshape(-1, 3).mean(0)

    same = np.mean([np.linalg.norm(mean_rgb(10, s) - mean_rgb(10, s + 100)) for s in range(20)])
    diff = np.mean([np.linalg.norm(mean_rgb(10, s) - mean_rgb(2583, s + 100)) for s in range(20)])
    assert same < diff
