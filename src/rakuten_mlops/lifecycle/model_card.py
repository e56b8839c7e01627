"""Model cards: what a registered version learned from, how well it does, where it fails, whether it passed.

:func:`weakest_classes` and :func:`confused_pairs` compute the card's findings from metrics and
predictions; :func:`render_markdown` and :func:`render_html` turn a card (a plain dict, built by
:mod:`rakuten_mlops.pipelines.model_card`) into text. Listing titles are user data: Markdown
escapes them, HTML escapes every value, and the HTML needs nothing outside itself.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from rakuten_mlops.categories import category_name, is_known_code

CARD_DIR = "model_card"
CARD_FILES = {"markdown": "model_card.md", "html": "model_card.html", "json": "model_card.json"}
WEAKEST = 5
PAIRS = 5
EXAMPLES = 3
EXAMPLE_CHARS = 120
# The pipeline's steps in the order they run (the cost table follows it).
STEP_ORDER = (
    "ingest", "split", "embed", "train", "train_text", "train_image", "fuse", "evaluate", "refit",
    "register", "promote",
)  # fmt: skip

INTENDED_USE = (
    "Assigning one of the 27 Rakuten France product types to a marketplace listing from its French "
    "title, optional description and optional image, to route listings and pre-fill the category a "
    "seller confirms. Every answer carries a probability: low ones are for people to check."
)
KNOWN_LIMITS = (
    "Trained on the listings named above only: other marketplaces, languages or catalogue eras may "
    "score lower. Classes with few rows have unreliable scores (see support). Duplicated titles "
    "exist across classes, so some listings cannot be told apart from the text. The metrics come "
    "from a held-out sample of the same data, not from live traffic: see the monitoring pages."
)


def class_label(code: Any) -> str:
    """A class's English name (the code itself for an unknown code)."""
    return category_name(int(code), "en") if is_known_code(code) else str(code)


def weakest_classes(per_class: dict[str, dict[str, Any]], n: int = WEAKEST) -> list[dict[str, Any]]:
    """The `n` classes with the lowest F1 (ties: the larger class first), with their scores."""
    rows = [
        {"code": int(c), "name": class_label(c), **s} for c, s in per_class.items() if s.get("support", 1) > 0
    ]
    return sorted(rows, key=lambda r: (r["f1"], -r["support"], r["code"]))[:n]


def confused_pairs(
    y_true: Sequence[Any],
    y_pred: Sequence[Any],
    titles: Sequence[str],
    n: int = PAIRS,
    examples: int = EXAMPLES,
) -> list[dict[str, Any]]:
    """The `n` most frequent (true, predicted) mistakes: count, share of the true class, example titles."""
    true, pred = np.asarray(y_true), np.asarray(y_pred)
    support = Counter(true.tolist())
    wrong = Counter(zip(true[true != pred].tolist(), pred[true != pred].tolist(), strict=True))
    out = []
    for (t, p), count in sorted(wrong.items(), key=lambda kv: (-kv[1], kv[0]))[:n]:
        rows = np.flatnonzero((true == t) & (pred == p))[:examples]
        out.append(
            {
                "true": int(t),
                "true_name": class_label(t),
                "predicted": int(p),
                "predicted_name": class_label(p),
                "count": int(count),
                "share_of_true": round(count / support[t], 4),
                "examples": [str(titles[i])[:EXAMPLE_CHARS] for i in rows],
            }
        )
    return out


# ---------------------------------------------------------------- rendering
# Enough for no emphasis, link, image, HTML, table break, heading or (Streamlit) formula to come through.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]#!|<>~&$])")


def md(value: Any) -> str:
    """A value as literal Markdown text (no markup, link, image or HTML can come through)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def _f(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "–"


def _sections(card: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """The card as (heading, paragraphs, table rows with a header row first); text not yet escaped."""
    data, gate, cost, inputs = card["data"], card.get("gate"), card.get("cost") or {}, card["inputs"]
    about = [
        f"Model {card['model_name']} version {card['version']}, registered {card['registered_at']}.",
        f"Text model: {card['text_model']}; modalities: {card['modalities']}.",
        f"Code {inputs['code_version']}, params hash {inputs['params_hash']}.",
    ]
    splits = [["part", "rows"]] + [[k, str(v)] for k, v in data["splits"].items()]
    data_text = [
        f"Data version (content hash): {data['hash']}. {data['rows']} rows read, "
        f"{data['accepted']} accepted, {data['rejected']} rejected with their reasons.",
        f"The registered model learned from {data['train_rows']} rows ({' + '.join(data['trained_on'])}); "
        "gold is never learned from.",
    ]
    parts = list(data["splits"])
    classes = [["code", "class", *parts, "share"]] + [
        [str(c["code"]), c["name"], *(str(c["rows"].get(p, 0)) for p in parts), f"{c['share']:.1%}"]
        for c in card["classes"]
    ]
    overall = [["set", "model", "weighted F1", "macro F1", "accuracy", "rows"]] + [
        [m["set"], m["model"], _f(m["weighted_f1"]), _f(m["macro_f1"]), _f(m["accuracy"]), str(m["n"])]
        for m in card["metrics"]
    ]
    per_class = [["code", "class", "precision", "recall", "F1", "support"]] + [
        [str(r["code"]), r["name"], _f(r["precision"]), _f(r["recall"]), _f(r["f1"]), str(r["support"])]
        for r in card["per_class"]
    ]
    weakest = [["code", "class", "F1", "recall", "support"]] + [
        [str(r["code"]), r["name"], _f(r["f1"]), _f(r["recall"]), str(r["support"])] for r in card["weakest"]
    ]
    pairs = [["true", "predicted as", "count", "share of true class", "example titles"]] + [
        [
            f"{p['true']} {p['true_name']}", f"{p['predicted']} {p['predicted_name']}", str(p["count"]),
            f"{p['share_of_true']:.1%}", " / ".join(p["examples"]) or "–",
        ]
        for p in card["confusions"]
    ]  # fmt: skip
    if gate is None:
        gate_text = ["Not decided yet: the promote step records the decision on this card."]
    else:
        verdict = "promoted to champion" if gate.get("promote") else "not promoted"
        if gate.get("challenger"):
            verdict = "passed the gate; challenger in shadow beside the champion"
        gate_text = [f"Decision: {verdict} (champion before: {gate.get('champion_before') or 'none'})."]
        gate_text += [f"Reason: {r}" for r in gate.get("reasons", [])]
        interval = gate.get("interval")
        if interval and not any("bootstrap interval" in r for r in gate.get("reasons", [])):
            gate_text.append(
                f"{interval['level']:.0%} bootstrap interval of the {interval['of']}: "
                f"[{interval['low']:+.4f}, {interval['high']:+.4f}] ({interval['rows']} gold rows)."
            )
    seconds = cost.get("seconds", {})
    ordered = sorted(seconds, key=lambda k: (STEP_ORDER.index(k) if k in STEP_ORDER else len(STEP_ORDER), k))
    steps = [["step", "seconds"]] + [[k, _f(seconds[k], 1)] for k in ordered]
    cost_text = [f"Seconds per step ({cost.get('source', 'not recorded')})."]
    if "total" in cost:
        cost_text.append(f"Total: {cost['total']:.1f} s.")
    return [
        ("About", about, []),
        ("Intended use", [INTENDED_USE], []),
        ("Known limits", [KNOWN_LIMITS], []),
        ("Data", data_text, splits),
        ("Class distribution", [], classes),
        ("Metrics", [card["metrics_note"]], overall),
        (f"Per class ({card['per_class_set']})", [], per_class),
        (f"The {len(card['weakest'])} weakest classes ({card['per_class_set']})", [], weakest),
        (f"Most confused class pairs ({card['per_class_set']})", [], pairs),
        ("Promotion gate", gate_text, []),
        ("Training cost", cost_text, steps),
    ]


def render_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown; every value is escaped."""
    out = [f"# Model card: {md(card['model_name'])} version {md(card['version'])}", ""]
    for heading, paragraphs, table in _sections(card):
        out += [f"## {md(heading)}", ""]
        for p in paragraphs:
            out += [md(p), ""]
        if len(table) > 1:
            out.append("| " + " | ".join(md(h) for h in table[0]) + " |")
            out.append("|" + "---|" * len(table[0]))
            out += ["| " + " | ".join(md(c) for c in row) + " |" for row in table[1:]]
            out.append("")
    return "\n".join(out)


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;padding:.2rem .5rem;"
    "text-align:left;vertical-align:top}th{background:#f3f3f3}h2{margin-top:2rem}"
)


def render_html(card: dict[str, Any]) -> str:
    """The card as one self-contained HTML page (inline style, no script, no external resource)."""
    e = html.escape
    title = f"Model card: {card['model_name']} version {card['version']}"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
    ]
    for heading, paragraphs, table in _sections(card):
        out.append(f"<h2>{e(heading)}</h2>")
        out += [f"<p>{e(p)}</p>" for p in paragraphs]
        if len(table) > 1:
            out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in table[0]) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in table[1:]]
            out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)
