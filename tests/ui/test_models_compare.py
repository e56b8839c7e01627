"""Models page: the button that compares the chosen version with the current champion (stubbed API answer)."""

from __future__ import annotations

from typing import Any

import pytest

from rakuten_mlops.api_client import ApiClient, ApiError
from tests.ui.helpers import texts

ANSWER: dict[str, Any] = {
    "version": "7",
    "champion_version": "9",
    "gold_of_version": "7",
    "rows": 812,
    "version_f1": 0.7012,
    "champion_f1": 0.7233,
    "difference": -0.0221,
    "interval": {"of": "gain", "level": 0.95, "low": -0.041, "high": -0.0035, "resamples": 1000, "rows": 812},
    "worst_class_drop": {"code": 2583, "drop": 0.125, "rows": 40, "judged": True},
    "would_pass_gate": False,
    "reasons": ["gold weighted F1 0.7012 ≤ champion 0.7233 + min_gain 0.0"],
    "inputs": "text",
    "images_note": "both models read text only",
}


def test_the_comparison_is_shown_with_both_scores_the_interval_and_the_worst_class(make_app, monkeypatch):
    asked: list[str] = []

    def answer(self: ApiClient, token: str, version: str) -> dict[str, Any]:
        asked.append(version)
        return {**ANSWER, "version": version, "gold_of_version": version}

    monkeypatch.setattr(ApiClient, "compare_with_champion", answer)
    at = make_app(page="models_page.py")
    assert "Difference" not in texts(at), "nothing is scored before the button is pressed"
    chosen = at.selectbox(key="models_version").value
    at.button(key="compare_champion").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert asked == [chosen]
    page = texts(at)
    assert f"Version {chosen}: 0.7012" in page and "Champion (v9): 0.7233" in page
    assert "Difference: -0.0221" in page and "Gold rows: 812" in page
    warning = " ".join(w.value for w in at.warning)
    assert f"On version {chosen}'s 812 rows of gold" in warning
    assert "95% paired bootstrap interval [-0.0410, -0.0035]" in warning
    assert "Largest per-class F1 drop: +0.1250 on class 2583 (40 gold rows, judged by the gate)" in warning
    assert "would not pass" in warning and "both models read text only" in warning
    at.run()  # a rerun shows the kept answer without asking the API again
    assert asked == [chosen] and "Difference: -0.0221" in texts(at)


@pytest.mark.parametrize(
    ("status", "detail"),
    [
        (409, "version 3's gold rows were not kept: it was registered before runs logged data/gold.parquet"),
        (409, "version 1 is the champion: nothing to compare"),
        (404, "model 'rakuten-product-classifier' has no version 5"),
    ],
)
def test_the_api_refusal_is_said_in_its_own_words(make_app, monkeypatch, status, detail):
    def refuse(self: ApiClient, token: str, version: str) -> dict[str, Any]:
        raise ApiError(status, f"Comparing failed ({status}): API says: {detail}", detail)

    monkeypatch.setattr(ApiClient, "compare_with_champion", refuse)
    at = make_app(page="models_page.py")
    at.button(key="compare_champion").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert detail in [i.value for i in at.info]
    assert "Difference" not in texts(at)
