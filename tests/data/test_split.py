"""Stratified, seeded split with a gold holdout that never leaks."""

from __future__ import annotations

import pytest

from rakuten_mlops.config import SplitParams
from rakuten_mlops.data.sample import generate_listings
from rakuten_mlops.data.split import frame_hash, stratified_split


@pytest.fixture(scope="module")
def listings():
    df = generate_listings(30, seed=2)
    df.index.name = "index"
    return df


def test_no_leakage_and_full_coverage(listings) -> None:
    s = stratified_split(listings, SplitParams(), seed=1)
    ids = [set(df["productid"]) for _, df in s.items()]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not ids[i] & ids[j]
    assert sum(s.sizes().values()) == len(listings)


def test_stratified(listings) -> None:
    s = stratified_split(listings, SplitParams(), seed=1)
    full = listings["prdtypecode"].value_counts(normalize=True)
    for name, df in s.items():
        share = df["prdtypecode"].value_counts(normalize=True).reindex(full.index, fill_value=0)
        assert (share - full).abs().max() < 0.05, name
        assert df["prdtypecode"].nunique() == 27, name


def test_seeded_and_gold_stable(listings) -> None:
    a = stratified_split(listings, SplitParams(), seed=7)
    b = stratified_split(listings, SplitParams(), seed=7)
    assert frame_hash(a.gold) == frame_hash(b.gold) and frame_hash(a.train) == frame_hash(b.train)
    c = stratified_split(listings, SplitParams(val_fraction=0.2, test_fraction=0.15), seed=7)
    assert frame_hash(c.gold) == frame_hash(a.gold)
    d = stratified_split(listings, SplitParams(), seed=8)
    assert frame_hash(d.gold) != frame_hash(a.gold)
