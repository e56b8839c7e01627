"""CSV files written for people (predictions, rejected rows): safe to open in a spreadsheet.

Listing text comes from sellers; a cell such as ``=HYPERLINK(...)`` would run as a formula when
the file is opened in a spreadsheet. Every text cell, column name and index label that starts
like a formula is written with a leading ``'`` (`rakuten_mlops.infra.neutralise_cell`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rakuten_mlops.infra import neutralise_cell


def safe_for_spreadsheets(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells (and index) cannot run as spreadsheet formulas."""
    out = frame.map(neutralise_cell)
    out.index = frame.index.map(neutralise_cell)
    out.columns = frame.columns.map(neutralise_cell)
    return out


def write_csv_for_users(frame: pd.DataFrame, path: str | Path) -> None:
    """Write `frame` (with its index) as CSV, every cell neutralised."""
    safe_for_spreadsheets(frame).to_csv(path)
