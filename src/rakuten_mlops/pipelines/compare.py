"""Step: compare any registered version with today's champion on that version's gold rows.

The promotion gate compares a new version with the champion *of its time*. This step does the
same comparison on demand, for any version whose gold rows were logged with its run
(``data/gold.parquet``, see :func:`rakuten_mlops.pipelines.register.register`): both models are
scored by the gate's own code (:func:`champion_gold_metrics`, the paired bootstrap interval and
the class-drop rule of :func:`decide_promotion`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from rakuten_mlops.config import Params, Settings
from rakuten_mlops.data.schema import IMAGE_PATH, LABEL
from rakuten_mlops.errors import RakutenError
from rakuten_mlops.lifecycle import signing
from rakuten_mlops.lifecycle.promotion import bootstrap_gain_interval, decide_promotion
from rakuten_mlops.lifecycle.registry import client, get_champion, registry_missing
from rakuten_mlops.models.product import ProductClassifier
from rakuten_mlops.models.pyfunc import load_product_classifier
from rakuten_mlops.pipelines.register import GOLD_ARTIFACT, champion_gold_metrics


class UnknownVersion(RakutenError, LookupError):
    """The registry has no such version."""


class NotComparable(RakutenError, RuntimeError):
    """The comparison cannot be made (no champion, the champion itself, gold rows not kept)."""


def _download_gold(c: Any, run_id: str, tmp: Path) -> pd.DataFrame | None:
    logged = {a.path for a in c.list_artifacts(run_id, "data")} if run_id else set()
    if GOLD_ARTIFACT not in logged:
        return None
    return pd.read_parquet(c.download_artifacts(run_id, GOLD_ARTIFACT, str(tmp)))


def _load_version(c: Any, settings: Settings, mv: Any, tmp: Path) -> ProductClassifier:
    """Download a version's files from the registry; with a signing key, verify them before loading."""
    import mlflow.artifacts

    uri = c.get_model_version_download_uri(settings.model_name, str(mv.version))
    local = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=str(tmp / f"v{mv.version}"), tracking_uri=settings.tracking_uri
        )
    )
    if settings.model_signing_key is not None:
        try:
            signing.verify(
                local, settings.model_signing_key.get_secret_value(), mv.tags.get(signing.SIGNATURE_TAG)
            )
        except signing.SignatureError as exc:
            raise NotComparable(f"version {mv.version} refused: {exc}") from None
    return load_product_classifier(str(local))


def _images_reachable(gold: pd.DataFrame) -> bool:
    if IMAGE_PATH not in gold.columns or gold.empty:
        return False
    return all(isinstance(p, str) and Path(p).is_file() for p in gold[IMAGE_PATH])


def compare_with_champion(settings: Settings, params: Params, version: str) -> dict[str, Any]:
    """Score `version` and the current champion on `version`'s logged gold rows, as the gate does.

    Raises UnknownVersion (no such version) and NotComparable (no champion, `version` is the
    champion, or its gold rows were not logged).
    """
    name = settings.model_name
    if registry_missing(settings):
        raise UnknownVersion(f"model {name!r} has no version {version}: nothing is registered yet")
    c = client(settings)
    try:
        mv = c.get_model_version(name, version)
    except Exception:  # MLflow raises its own exception for an unknown version
        raise UnknownVersion(f"model {name!r} has no version {version}") from None
    champ = get_champion(c, name)
    if champ is None:
        raise NotComparable(f"no version holds the champion alias: nothing to compare version {version} with")
    if str(champ.version) == str(version):
        raise NotComparable(f"version {version} is the champion: nothing to compare")
    with tempfile.TemporaryDirectory(prefix="rakuten-compare-") as tmp_dir:
        tmp = Path(tmp_dir)
        gold = _download_gold(c, mv.run_id or "", tmp)
        if gold is None:
            raise NotComparable(
                f"version {version}'s gold rows were not kept: it was registered before runs logged "
                f"{GOLD_ARTIFACT}; only versions registered since can be compared on demand"
            )
        mine = _load_version(c, settings, mv, tmp)
        theirs = _load_version(c, settings, champ, tmp)
    uses_images = mine.uses_images or theirs.uses_images
    with_images = uses_images and _images_reachable(gold)
    if not with_images:
        gold = gold.drop(columns=[IMAGE_PATH], errors="ignore")  # text only, said in the answer
    my_metrics, my_pred = champion_gold_metrics(mine, gold, settings, params)
    their_metrics, their_pred = champion_gold_metrics(theirs, gold, settings, params)
    interval = bootstrap_gain_interval(
        gold[LABEL].to_numpy(), my_pred, their_pred, mine.classes_, params.seed
    )
    decision = decide_promotion(my_metrics, their_metrics, params.promotion, interval)
    worst = _worst_class_drop(my_metrics, their_metrics, params.promotion.min_class_support)
    return {
        "version": str(version),
        "champion_version": str(champ.version),
        "gold_of_version": str(version),
        "rows": len(gold),
        "version_f1": round(float(my_metrics["weighted_f1"]), 4),
        "champion_f1": round(float(their_metrics["weighted_f1"]), 4),
        "difference": round(float(my_metrics["weighted_f1"]) - float(their_metrics["weighted_f1"]), 4),
        "interval": interval,
        "worst_class_drop": worst,
        "would_pass_gate": decision.promote,
        "reasons": decision.reasons,
        "inputs": "text+image" if with_images else "text",
        "images_note": _images_note(uses_images, with_images),
    }


def _worst_class_drop(
    mine: dict[str, Any], theirs: dict[str, Any], min_support: int
) -> dict[str, Any] | None:
    """The class whose gold F1 falls most (champion's minus this version's), over classes with gold rows.

    `judged` says whether the gate's class-drop rule looks at it (at least `min_support` rows).
    """
    drops = [
        (float(theirs["per_class"][code]["f1"]) - float(s["f1"]), code, int(s["support"]))
        for code, s in mine["per_class"].items()
        if code in theirs["per_class"] and int(s.get("support", 0)) > 0
    ]
    if not drops:
        return None
    drop, code, support = max(drops)
    return {"code": int(code), "drop": round(drop, 4), "rows": support, "judged": support >= min_support}


def _images_note(uses_images: bool, with_images: bool) -> str:
    if not uses_images:
        return "both models read text only"
    if with_images:
        return "scored with the gold rows' images (their files are still reachable)"
    return "scored on text only: the gold rows' image files are not reachable from the API"
