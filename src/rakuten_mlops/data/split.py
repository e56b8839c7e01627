"""Seeded stratified split into train / validation / test and a fixed gold holdout."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from rakuten_mlops.config import SplitParams
from rakuten_mlops.data.schema import LABEL

PARTS = ("train", "val", "test", "gold")


@dataclass(frozen=True)
class Splits:
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    gold: pd.DataFrame

    def items(self) -> list[tuple[str, pd.DataFrame]]:
        return [(name, getattr(self, name)) for name in PARTS]

    def sizes(self) -> dict[str, int]:
        return {name: len(df) for name, df in self.items()}


def _stratify_or_none(y: pd.Series, n_test: float) -> pd.Series | None:
    counts = y.value_counts()
    # train_test_split needs >= 2 rows per class and enough rows in the held-out part.
    if counts.min() < 2 or n_test * len(y) < y.nunique():
        return None
    return y


def _cut(df: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    if fraction <= 0 or len(df) < 2:
        return df, df.iloc[:0]
    rest, held = train_test_split(
        df, test_size=fraction, random_state=seed, stratify=_stratify_or_none(df[LABEL], fraction)
    )
    return rest, held


def gold_mask(productids: pd.Series, fraction: float, seed: int) -> np.ndarray:
    """Gold membership decided per product by a seeded hash of its id.

    A product's membership never changes when rows are added or other fractions change, so a
    champion trained on an earlier pool has never seen any row of a later gold set: the
    promotion gate compares challenger and champion on data neither was trained on.
    """
    keys = productids.astype(str) + f"|gold|{seed}"
    hashed = pd.util.hash_pandas_object(keys, index=False).to_numpy()
    return (hashed % 1_000_000) < round(fraction * 1_000_000)


def stratified_split(frame: pd.DataFrame, params: SplitParams, seed: int) -> Splits:
    """Gold by product hash (stable as data grows), then stratified test and val cuts of the rest."""
    in_gold = gold_mask(frame["productid"], params.gold_fraction, seed)
    rest, gold = frame[~in_gold], frame[in_gold]
    remaining = 1 - params.gold_fraction
    rest, test = _cut(rest, params.test_fraction / remaining, seed + 1)
    remaining -= params.test_fraction
    train, val = _cut(rest, params.val_fraction / remaining, seed + 2)
    return Splits(*(df.sort_index() for df in (train, val, test, gold)))


def frame_hash(frame: pd.DataFrame) -> str:
    """Content hash of a DataFrame (index, columns and values), stable across runs."""
    h = hashlib.sha256()
    h.update(",".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return h.hexdigest()[:16]
