"""Helpers of the UI tests (import as `tests.ui.helpers`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PASSWORD = "correct-horse-battery-staple"
UI_DIR = Path(__file__).resolve().parents[2] / "src" / "rakuten_mlops" / "ui"
APP_PATH = UI_DIR / "app.py"


def log_in(at: Any, user: str, password: str = PASSWORD) -> None:
    at.text_input(key="login_username").input(user)
    at.text_input(key="login_password").input(password)
    at.button(key="login_submit").click().run()


def texts(at: Any) -> str:
    """Everything a person reads on the page: markdown, alerts, captions, metrics, titles."""
    parts: list[str] = []
    for kind in (
        "title",
        "header",
        "subheader",
        "markdown",
        "caption",
        "success",
        "info",
        "warning",
        "error",
    ):
        parts.extend(str(e.value) for e in getattr(at, kind))
    parts.extend(f"{m.label}: {m.value}" for m in at.metric)
    return "\n".join(parts)


def chart_specs(at: Any) -> list[str]:
    """The Vega-Lite spec (JSON text, data aside) of every chart on the page."""
    return [str(c.proto.spec) for c in at.get("vega_lite_chart")]


def chart_frames(at: Any) -> list[Any]:
    """The data of every chart on the page, as DataFrames."""
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    frames = []
    for chart in at.get("vega_lite_chart"):
        if chart.proto.data.data:
            frames.append(convert_arrow_bytes_to_pandas_df(chart.proto.data.data))
        frames.extend(convert_arrow_bytes_to_pandas_df(d.data.data) for d in chart.proto.datasets)
    return frames
