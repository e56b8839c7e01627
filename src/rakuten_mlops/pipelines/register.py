"""Steps: log the run and register the model in MLflow, then apply the promotion gate."""

from __future__ import annotations

import hashlib
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import joblib
import mlflow
import pandas as pd

from rakuten_mlops.config import Params, Settings
from rakuten_mlops.lifecycle.promotion import decide_promotion
from rakuten_mlops.lifecycle.registry import (
    client,
    configure_mlflow,
    find_version_by_tag,
    get_champion,
    set_champion,
)
from rakuten_mlops.models.product import ProductClassifier
from rakuten_mlops.models.pyfunc import (
    MODEL_CODE_PATH,
    MODEL_SIGNATURE,
    input_example,
    load_product_classifier,
    package_code,
    pip_requirements,
)
from rakuten_mlops.pipelines.evaluate import score_parts
from rakuten_mlops.pipelines.ingest import load_splits
from rakuten_mlops.pipelines.layout import WorkDir, read_json, write_json
from rakuten_mlops.pipelines.progress import NullProgress, Progress
from rakuten_mlops.pipelines.refit import TRAIN_ROWS_FILE, final_model_path, gate_report


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextmanager
def _quiet_integer_hint() -> Iterator[None]:
    """Silence MLflow's hint that integer columns cannot hold missing values.

    It fires for `prdtypecode` and `top_k`, outputs the model always fills, on every run.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer", UserWarning)
        yield


def _flat_metrics(report: dict[str, Any]) -> dict[str, float]:
    """val_/test_ metrics of the train-split model, gold_ of the registered (refitted) one."""
    out: dict[str, float] = {}
    for part in ("val", "test", "gold", "gold_pre_refit"):
        for model_name, m in report.get(part, {}).items():
            for key in ("weighted_f1", "macro_f1", "accuracy"):
                out[f"{part}_{model_name}_{key}"] = m[key]
            if part == "test" and model_name == "system":
                for code, s in m["per_class"].items():
                    out[f"test_f1_class_{code}"] = s["f1"]
    out["train_rows"] = report["refit"]["rows"]
    return out


def _selection(model: ProductClassifier) -> dict[str, Any]:
    """How training chose the text model (every candidate's cross-validated score)."""
    selection = model.metadata.get("text_selection")
    return selection if isinstance(selection, dict) else {}


def _selection_metrics(model: ProductClassifier) -> dict[str, float]:
    selection = _selection(model)
    return {
        f"cv_text_{n}_weighted_f1": c["cv_weighted_f1"] for n, c in selection.get("candidates", {}).items()
    }


def register(work: WorkDir, settings: Settings, params: Params) -> dict[str, Any]:
    """Log params, data hashes, metrics, plots and the pyfunc model; register a version (idempotent)."""
    path = final_model_path(work)
    sha = _file_sha256(path)
    experiment_id = configure_mlflow(settings)
    c = client(settings)
    existing = find_version_by_tag(c, settings.model_name, "model_sha256", sha)
    if existing is not None:  # a retried step must not register a second version
        info = {
            "run_id": existing.run_id,
            "version": str(existing.version),
            "reused": True,
            "model_sha256": sha,
        }
        write_json(work.registry_dir / "registered.json", info)
        return info
    model: ProductClassifier = joblib.load(path)
    report = gate_report(work)
    ingest_summary = read_json(work.ingest / "summary.json", "ingest")
    split_summary = read_json(work.splits / "summary.json", "split")
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"train-{ingest_summary['data_hash']}"
    ) as run:
        mlflow.log_params(params.flat())
        mlflow.set_tags(
            {
                "data.hash": ingest_summary["data_hash"],
                "data.dir": ingest_summary["data_dir"],
                "data.rejected": ingest_summary["rejected"],
                "modalities": report["modalities"],
                "model.train_rows": report["refit"]["rows"],
                "model.trained_on": "+".join(report["refit"]["parts"]),
                "text.model": str(model.metadata.get("text_model")),
                **{f"split.{k}.hash": v for k, v in split_summary["hashes"].items()},
            }
        )
        mlflow.log_metrics({**_flat_metrics(report), **_selection_metrics(model)})
        mlflow.log_dict(_selection(model), "evaluation/text_model_selection.json")
        mlflow.log_artifact(str(work.refit_dir / TRAIN_ROWS_FILE), artifact_path="data")
        mlflow.log_artifacts(str(work.eval_dir), artifact_path="evaluation")
        mlflow.log_artifact(str(work.ingest / "summary.json"), artifact_path="data")
        mlflow.log_artifact(str(work.rejects_path), artifact_path="data")
        mlflow.log_artifact(str(work.splits / "summary.json"), artifact_path="data")
        # Self-contained: the project's code, exact pins of what it imports, one signature.
        with _quiet_integer_hint(), tempfile.TemporaryDirectory() as code_dir:
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(MODEL_CODE_PATH),
                artifacts={"model": str(path)},
                code_paths=[str(package_code(Path(code_dir)))],
                signature=MODEL_SIGNATURE,
                input_example=input_example(model.uses_images),
                pip_requirements=pip_requirements(model.uses_images),
                registered_model_name=settings.model_name,
            )
        version = str(info.registered_model_version)
        for key, value in {
            "model_sha256": sha,
            "modalities": report["modalities"],
            "gold_weighted_f1": f"{report['gold']['system']['weighted_f1']:.4f}",
            "test_weighted_f1": f"{report['test']['system']['weighted_f1']:.4f}",
            "data_hash": ingest_summary["data_hash"],
            "train_rows": str(report["refit"]["rows"]),
            "text_model": str(model.metadata.get("text_model")),
        }.items():
            c.set_model_version_tag(settings.model_name, version, key, value)
        result = {
            "run_id": run.info.run_id,
            "version": version,
            "reused": False,
            "model_sha256": sha,
            "train_rows": report["refit"]["rows"],
        }
    write_json(work.registry_dir / "registered.json", result)
    return result


def champion_gold_metrics(
    champion: ProductClassifier, gold: pd.DataFrame, settings: Settings, params: Params
) -> dict[str, Any]:
    """Score the current champion on the same gold rows as the challenger."""
    from rakuten_mlops.features.images import EmbeddingCache

    emb = None
    if champion.uses_images and champion.embedder is not None:
        cache = EmbeddingCache(
            settings.cache_dir / "embeddings", champion.embedder.backbone, champion.embedder.image_size
        )
        emb = champion.embedder.embed_bytes(champion.image_bytes(gold), cache)
    metrics, _ = score_parts(champion, gold, emb)
    return metrics["system"]


def promote(
    work: WorkDir, settings: Settings, params: Params, progress: Progress | None = None
) -> dict[str, Any]:
    """Give the new version the `champion` alias if it passes the gate; record the decision as tags."""
    progress = progress or NullProgress()
    registered = read_json(work.registry_dir / "registered.json", "register")
    report = gate_report(work)
    version = str(registered["version"])
    configure_mlflow(settings)
    c = client(settings)
    champ = get_champion(c, settings.model_name)
    if champ is not None and str(champ.version) == version:
        decision_dict = {"promote": True, "reasons": [f"version {version} already holds champion"]}
        write_json(work.registry_dir / "promotion.json", {"version": version, **decision_dict})
        return {"version": version, **decision_dict}
    champion_metrics = None
    if champ is not None:
        progress.log(f"scoring champion v{champ.version} on the gold set")
        champion_model = load_product_classifier(f"models:/{settings.model_name}/{champ.version}")
        gold = load_splits(work)["gold"]
        champion_metrics = champion_gold_metrics(champion_model, gold, settings, params)
    decision = decide_promotion(report["gold"]["system"], champion_metrics, params.promotion)
    if decision.promote:
        set_champion(c, settings.model_name, version, decision.reasons, "promoted")
    else:
        c.set_model_version_tag(settings.model_name, version, "promotion.decision", "rejected")
        c.set_model_version_tag(
            settings.model_name, version, "promotion.reasons", "; ".join(decision.reasons)
        )
    result = {
        "version": version,
        "champion_before": str(champ.version) if champ is not None else None,
        **decision.as_dict(),
    }
    write_json(work.registry_dir / "promotion.json", result)
    return result
