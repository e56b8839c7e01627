"""What an explanation costs: one listing's prediction alone against prediction + explanation.

Usage: ``python benchmarks/explain_cost.py DATA_DIR [--model svm] [--listings 200] [--train-rows 0]``

Trains the text model on a challenge folder (all labelled rows but `--listings` held out; the
text params of params.yaml, with `--model` fixing the candidate), then for each held-out listing,
one at a time as the API sees them: the `ProductClassifier.predict_frame` time, and the
`explain_listing` time for the class it answered. Also checks how often the top term is a word
of the listing's title. Writes benchmarks/results/explain_cost.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time
import unicodedata
from pathlib import Path

import numpy as np

from rakuten_mlops.config import load_params
from rakuten_mlops.data.loader import load_dataset
from rakuten_mlops.data.schema import LABEL
from rakuten_mlops.features.text import clean_text
from rakuten_mlops.models.explain import explain_listing
from rakuten_mlops.models.product import ProductClassifier
from rakuten_mlops.models.text import TextClassifier

RESULT = Path(__file__).parent / "results" / "explain_cost.json"


def _words(text: str) -> set[str]:
    """Words as the vectorizers see them: lowercase, accents stripped."""
    folded = unicodedata.normalize("NFKD", clean_text(text))
    return set(re.findall(r"\w+", "".join(c for c in folded if not unicodedata.combining(c))))


def _ms(values: list[float]) -> dict[str, float]:
    a = np.array(values) * 1000
    return {"median": round(float(np.median(a)), 2), "p90": round(float(np.percentile(a, 90)), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--model", default="svm", help="text candidate (svm, stack, svm+use, ...)")
    parser.add_argument("--listings", type=int, default=200, help="held-out listings to time")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    frame = load_dataset(args.data_dir).frame
    frame = frame[frame[LABEL] != ""]
    held = frame.sample(args.listings, random_state=args.seed)
    rows = frame.drop(held.index)
    params = load_params(args.params).text.model_copy(update={"model": args.model})
    t0 = time.perf_counter()
    system = ProductClassifier(text=TextClassifier(params).fit(rows, rows[LABEL].astype(int).to_numpy()))
    fit_s = time.perf_counter() - t0
    predict_s, explain_s, top_in_title, n_terms = [], [], 0, []
    for i in range(len(held)):
        one = held.iloc[i : i + 1][["designation", "description"]]
        t0 = time.perf_counter()
        code = int(system.predict_frame(one)["prdtypecode"][0])
        t1 = time.perf_counter()
        explanation = explain_listing(system, one, code)
        t2 = time.perf_counter()
        predict_s.append(t1 - t0)
        explain_s.append(t2 - t1)
        n_terms.append(len(explanation["terms"]))
        title = _words(one["designation"].iloc[0])
        top = explanation["terms"][0]["term"].split() if explanation["terms"] else []
        top_in_title += bool(top) and all(w in title for w in top)
    result = {
        "command": f"python benchmarks/explain_cost.py {args.data_dir} --model {args.model} "
        f"--listings {args.listings}",
        "data_dir": str(args.data_dir),
        "train_rows": len(rows),
        "text_model": system.text.chosen_,
        "fit_seconds": round(fit_s, 1),
        "listings": len(held),
        "predict_ms": _ms(predict_s),
        "explain_ms": _ms(explain_s),
        "mean_terms": round(float(np.mean(n_terms)), 2),
        "top_term_in_title_share": round(top_in_title / len(held), 3),
        "machine": f"{platform.machine()}, {platform.python_version()}",
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
