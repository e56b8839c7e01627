"""Every bad row is rejected with its reason and nothing is dropped silently."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from rakuten_mlops.data.validation import (
    DUPLICATED_PRODUCTID,
    EMPTY_DESIGNATION,
    MISSING_IMAGE,
    MISSING_LABEL,
    NON_INTEGER_IMAGEID,
    NON_INTEGER_PRODUCTID,
    UNDECODABLE_IMAGE,
    UNKNOWN_CODE,
    validate,
)


def frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    base = {
        "designation": "Piscine Intex",
        "description": "",
        "productid": "1",
        "imageid": "1",
        "prdtypecode": "2583",
    }
    df = pd.DataFrame([{**base, "productid": str(i + 100), **r} for i, r in enumerate(rows)])
    df.index = pd.Index(range(len(df)), name="index")
    return df


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"designation": "   "}, EMPTY_DESIGNATION),
        ({"productid": "12a"}, NON_INTEGER_PRODUCTID),
        ({"imageid": "1.5"}, NON_INTEGER_IMAGEID),
        ({"prdtypecode": ""}, MISSING_LABEL),
        ({"prdtypecode": "9999"}, UNKNOWN_CODE),
        ({"prdtypecode": "abc"}, UNKNOWN_CODE),
    ],
)
def test_each_row_reason(row: dict[str, object], reason: str) -> None:
    result = validate(frame([{}, row]), check_images=False)
    assert len(result.clean) == 1
    assert result.rejects["reason"].tolist() == [reason]
    assert result.summary()[reason] == 1


def test_duplicated_productid_keeps_first() -> None:
    df = frame([{}, {}])
    df["productid"] = "42"
    result = validate(df, check_images=False)
    assert result.clean.index.tolist() == [0]
    assert result.rejects["reason"].tolist() == [DUPLICATED_PRODUCTID]


def test_images_missing_and_broken(tmp_path: Path) -> None:
    good = tmp_path / "good.jpg"
    Image.new("RGB", (40, 40), (10, 200, 10)).save(good, "JPEG")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:200])
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image at all")
    df = frame([{}, {}, {}, {}])
    df["image_path"] = [str(good), str(tmp_path / "absent.jpg"), str(truncated), str(junk)]
    result = validate(df, check_images=True)
    assert result.clean.index.tolist() == [0]
    assert result.rejects["reason"].tolist() == [MISSING_IMAGE, UNDECODABLE_IMAGE, UNDECODABLE_IMAGE]


def test_clean_rows_are_typed_and_rejects_keep_original_values() -> None:
    result = validate(frame([{}, {"productid": "x1"}]), check_images=False)
    assert result.clean["productid"].dtype == "int64"
    assert result.clean["prdtypecode"].dtype == "int64"
    assert result.rejects.loc[1, "productid"] == "x1"


def test_html_text_is_kept_verbatim() -> None:
    df = frame([{"description": "Caract&eacute;ristiques :<br />bleu"}])
    result = validate(df, check_images=False)
    assert result.clean.iloc[0]["description"] == "Caract&eacute;ristiques :<br />bleu"
