"""Read a folder in the Rakuten challenge layout into DataFrames."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from rakuten_mlops.data.schema import (
    IMAGE_PATH,
    INDEX,
    LABEL,
    TEST_IMAGES_DIR,
    TRAIN_IMAGES_DIR,
    X_COLUMNS,
    X_TEST,
    X_TRAIN,
    Y_TRAIN,
    LayoutError,
    image_filename,
)
from rakuten_mlops.errors import InvalidInputError


@dataclass(frozen=True)
class RawDataset:
    """Listings (one row per product, challenge index as the DataFrame index)."""

    frame: pd.DataFrame  # designation, description, productid, imageid, [prdtypecode], image_path
    source: Path
    images_dir: Path | None

    @property
    def has_labels(self) -> bool:
        return LABEL in self.frame.columns

    @property
    def has_images(self) -> bool:
        return self.images_dir is not None


def _read_csv(path: Path, missing_message: str) -> pd.DataFrame:
    """A challenge CSV as strings (index column first); layout errors name the file."""
    if not path.is_file():
        raise LayoutError(missing_message, path=path)
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, index_col=0)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise LayoutError(f"cannot be parsed as CSV ({exc})", path=path) from exc


def read_listings(path: Path) -> pd.DataFrame:
    """Read an ``X_*_update.csv`` file as strings, checking its columns."""
    df = _read_csv(path, "required file is missing")
    missing = [c for c in X_COLUMNS if c not in df.columns]
    extra = [c for c in df.columns if c not in X_COLUMNS and c != LABEL]
    if missing:
        raise LayoutError(f"missing column(s) {missing}; found {list(df.columns)}", path=path)
    if extra:
        raise LayoutError(f"unexpected column(s) {extra}", path=path)
    df.index = _integer_index(df.index, path)
    return df


def read_labels(path: Path) -> pd.Series:
    """Read a ``Y_*.csv`` file: the challenge index, then ``prdtypecode``."""
    df = _read_csv(path, "required label file is missing")
    if list(df.columns) != [LABEL]:
        raise LayoutError(f"expected a single column '{LABEL}', found {list(df.columns)}", path=path)
    df.index = _integer_index(df.index, path)
    return df[LABEL]


def _integer_index(index: pd.Index, path: Path) -> pd.Index:
    try:
        out = pd.Index(index.astype("int64"), name=INDEX)
    except (TypeError, ValueError) as exc:
        raise LayoutError("the first (index) column must hold integers", path=path) from exc
    if out.has_duplicates:
        dup = out[out.duplicated()][:5].tolist()
        raise LayoutError(f"index values are duplicated, e.g. {dup}", path=path)
    return out


def attach_image_paths(frame: pd.DataFrame, images_dir: Path | None) -> pd.DataFrame:
    """Add the expected image path of each row (None when the folder has no images)."""
    out = frame.copy()
    if images_dir is None:
        out[IMAGE_PATH] = None
        return out

    def path_of(row: pd.Series) -> str | None:
        try:
            return str(images_dir / image_filename(int(row["imageid"]), int(row["productid"])))
        except (TypeError, ValueError):
            return None

    out[IMAGE_PATH] = out.apply(path_of, axis=1) if len(out) else pd.Series(dtype=object)
    return out


def load_dataset(data_dir: str | Path, *, split: str = "train") -> RawDataset:
    """Load the train (labelled) or test (unlabelled) part of a challenge folder.

    Raises:
        LayoutError: a required file is missing or has the wrong columns.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise LayoutError("data folder does not exist", path=root)
    if split == "train":
        x = read_listings(root / X_TRAIN)
        y = read_labels(root / Y_TRAIN)
        if LABEL in x.columns:
            raise LayoutError(f"{LABEL} belongs in {Y_TRAIN}, not in {X_TRAIN}", path=root / X_TRAIN)
        only_x = x.index.difference(y.index)
        only_y = y.index.difference(x.index)
        if len(only_y):
            raise LayoutError(
                f"{len(only_y)} label rows have no listing in {X_TRAIN} (e.g. index {only_y[:3].tolist()})",
                path=root / Y_TRAIN,
            )
        frame = x.join(y, how="left")
        frame.loc[frame.index.isin(only_x), LABEL] = ""
        images = root / TRAIN_IMAGES_DIR
    elif split == "test":
        frame = read_listings(root / X_TEST)
        images = root / TEST_IMAGES_DIR
    else:
        raise InvalidInputError(f"split must be 'train' or 'test', not {split!r}")
    images_dir = images if images.is_dir() and any(images.iterdir()) else None
    return RawDataset(attach_image_paths(frame, images_dir), root, images_dir)


def load_listings_file(path: str | Path, images_dir: str | Path | None = None) -> RawDataset:
    """Load a single ``X_*_update.csv`` file (batch prediction input)."""
    p = Path(path)
    frame = read_listings(p)
    img = Path(images_dir) if images_dir is not None else None
    if img is not None and not img.is_dir():
        raise LayoutError("images folder does not exist", path=img)
    return RawDataset(attach_image_paths(frame, img), p.parent, img)
