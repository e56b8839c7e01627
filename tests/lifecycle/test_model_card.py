"""Model card findings and rendering: weakest classes, confusions, escaping of listing text."""

from __future__ import annotations

from typing import Any

from rakuten_mlops.lifecycle.model_card import (
    confused_pairs,
    md,
    render_html,
    render_markdown,
    weakest_classes,
)

HOSTILE = "<script>alert(1)</script> [click](javascript:alert(2)) ![x](http://t/x.png) | **bold** $x$"


def _per_class(f1: dict[int, float], support: dict[int, int]) -> dict[str, dict[str, Any]]:
    return {str(c): {"precision": v, "recall": v, "f1": v, "support": support[c]} for c, v in f1.items()}


def test_weakest_classes_lowest_f1_first_larger_class_first_on_ties_absent_classes_left_out():
    per_class = _per_class(
        {10: 0.9, 40: 0.0, 50: 0.0, 60: 0.5, 1140: 0.2, 1160: 0.7, 1180: 0.0},
        {10: 5, 40: 2, 50: 9, 60: 3, 1140: 4, 1160: 1, 1180: 0},
    )
    weakest = weakest_classes(per_class)
    assert [r["code"] for r in weakest] == [50, 40, 1140, 60, 1160]
    assert weakest[0]["name"] == "Console accessories"


def test_confused_pairs_counts_shares_and_examples():
    true = [10, 10, 10, 10, 40, 40, 50]
    pred = [2705, 2705, 10, 2403, 50, 40, 50]
    titles = ["a", "b", "c", "d", "e", "f", "g"]
    pairs = confused_pairs(true, pred, titles, examples=1)
    assert [(p["true"], p["predicted"], p["count"]) for p in pairs] == [
        (10, 2705, 2),
        (10, 2403, 1),
        (40, 50, 1),
    ]
    assert pairs[0]["share_of_true"] == 0.5 and pairs[0]["examples"] == ["a"]


def _card(title: str) -> dict[str, Any]:
    per_class = {"10": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}}
    return {
        "model_name": "m", "version": "3", "registered_at": "2026-01-01T00:00:00+00:00", "text_model": "svm",
        "modalities": "text", "inputs": {"code_version": "c", "data_hash": "d", "params_hash": "p"},
        "data": {"hash": "d", "rows": 4, "accepted": 4, "rejected": 0, "splits": {"train": 2, "gold": 2},
                 "trained_on": ["train"], "train_rows": 2},
        "classes": [{"code": 10, "name": "Used books", "rows": {"train": 2, "gold": 2}, "share": 1.0}],
        "metrics": [
            {"set": "gold", "model": "system", "weighted_f1": 0.5, "macro_f1": 0.5, "accuracy": 0.5, "n": 2}
        ],
        "metrics_note": "note", "per_class_set": "gold",
        "per_class": [{"code": 10, "name": "Used books", **per_class["10"]}],
        "weakest": weakest_classes(per_class),
        "confusions": confused_pairs([10, 10], [2705, 10], [title, "ok"]),
        "gate": {"promote": False, "reasons": ["gold weighted F1 0.5 is not above 0.6"],
                 "champion_before": "2",
                 "interval": {"level": 0.95, "of": "gain", "low": -0.1, "high": 0.02, "rows": 2}},
        "cost": {"source": "run summary", "seconds": {"train": 3.0, "ingest": 1.0}, "total": 4.0},
    }  # fmt: skip


def test_markdown_card_escapes_listing_text():
    text = render_markdown(_card(HOSTILE))
    assert "<script>" not in text and "[click](" not in text and "![x](" not in text
    assert md(HOSTILE) in text  # the title is there, as literal text
    assert "\\| \\*\\*bold\\*\\* \\$x\\$" in text
    for heading in (
        "Intended use",
        "Known limits",
        "The 1 weakest classes",
        "Most confused class pairs",
        "Training cost",
    ):
        assert f"## {heading}" in text
    assert "Decision: not promoted (champion before: 2)" in text
    assert "\\[-0.1000, +0.0200\\]" in text  # the interval, with the reasons
    assert text.index("| ingest | 1.0 |") < text.index("| train | 3.0 |")  # steps in pipeline order


def test_html_card_is_self_contained_and_escaped():
    page = render_html(_card(HOSTILE))
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "src=" not in page and "href=" not in page and "http://t/x.png" in page  # text, not a resource
    assert "<td>10 Used books</td><td>2705 New books</td>" in page
