"""Read a folder in the Rakuten challenge layout into DataFrames."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    return _checked_listings(_read_csv(path, "required file is missing"), path)


def _checked_listings(df: pd.DataFrame, path: Path) -> pd.DataFrame:
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


# ---------------------------------------------------------------- streaming (batch prediction)
LISTING_SUFFIXES = (".csv", ".parquet")
# Where a Parquet file keeps the listings' index: a column pandas names, else one of these.
_PARQUET_INDEX_NAMES = ("__index_level_0__", INDEX, "", "Unnamed: 0")


@dataclass(frozen=True)
class ListingsSource:
    """Listings to stream: one CSV or Parquet file, or a folder of part files of one format."""

    path: Path
    files: tuple[Path, ...]
    fmt: str  # "csv" | "parquet"

    def count_rows(self) -> int | None:
        """Rows in the input when known without reading it (Parquet footers), else None."""
        if self.fmt != "parquet":
            return None
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(f).metadata.num_rows for f in self.files)


def listings_source(path: str | Path) -> ListingsSource:
    """Find what to stream at `path`; a folder holds ``*.csv`` or ``*.parquet`` part files."""
    p = Path(path)
    if p.is_file():
        if p.suffix.lower() not in LISTING_SUFFIXES:
            raise LayoutError("listings must be a .csv or .parquet file, or a folder of them", path=p)
        return ListingsSource(p, (p,), p.suffix.lower().lstrip("."))
    if not p.is_dir():
        raise LayoutError("input file or folder does not exist", path=p)
    found = {
        s: sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() == s) for s in LISTING_SUFFIXES
    }
    kinds = [s for s, files in found.items() if files]
    if len(kinds) != 1:
        what = "no .csv or .parquet part file" if not kinds else "both .csv and .parquet part files"
        raise LayoutError(f"the folder holds {what}", path=p)
    return ListingsSource(p, tuple(found[kinds[0]]), kinds[0].lstrip("."))


def iter_listings(source: ListingsSource, chunk_size: int) -> Iterator[pd.DataFrame]:
    """The listings of `source`, `chunk_size` rows at a time, as `read_listings` returns them.

    Memory holds one chunk, whatever the input's size. The index must be unique within a chunk
    (checking it across chunks would keep every index value in memory).
    """
    if chunk_size < 1:
        raise InvalidInputError(f"chunk size must be at least 1, not {chunk_size}")
    for f in source.files:
        chunks = _csv_chunks(f, chunk_size) if source.fmt == "csv" else _parquet_chunks(f, chunk_size)
        for chunk in chunks:
            yield _checked_listings(chunk, f)


def _csv_chunks(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    try:
        with pd.read_csv(path, dtype=str, keep_default_na=False, index_col=0, chunksize=chunk_size) as reader:
            yield from reader
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise LayoutError(f"cannot be parsed as CSV ({exc})", path=path) from exc


def _parquet_index_column(schema: Any) -> str | None:
    meta = schema.pandas_metadata or {}
    stored = [c for c in meta.get("index_columns", []) if isinstance(c, str)]
    if stored:
        return stored[0]
    return next((n for n in _PARQUET_INDEX_NAMES if n in schema.names), None)


def _parquet_chunks(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    """Parquet rows as strings (missing → ""), indexed like the CSVs; no stored index → row number."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise LayoutError(f"cannot be read as Parquet ({exc})", path=path) from exc
    index_col = _parquet_index_column(pf.schema_arrow)
    position = 0
    for batch in pf.iter_batches(batch_size=chunk_size):
        frame = pa.Table.from_batches([batch]).replace_schema_metadata(None).to_pandas()
        if index_col is not None:
            frame = frame.set_index(index_col)
        else:
            frame.index = pd.RangeIndex(position, position + len(frame))
        position += len(frame)
        frame.index.name = None
        yield frame.astype(object).where(frame.notna(), "").astype(str)
