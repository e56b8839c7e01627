"""Steps: log the run and register the model in MLflow, then apply the promotion gate.

Every registered version carries the inputs that made it as tags: `code_version` (package
version + hash of its source), `data_hash` and `params_hash`. A run whose model bytes match a
registered version reuses it (a retried step); a run whose inputs match the champion's is
not registered at all: it says so and the champion stays (a duplicate version would only add
a rejected entry to the registry, or with an equal gold score churn the alias for nothing).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import joblib
import mlflow
import numpy as np
import pandas as pd

import rakuten_mlops
from rakuten_mlops.config import Params, Settings
from rakuten_mlops.data.schema import IMAGE_PATH, LABEL, X_COLUMNS
from rakuten_mlops.infra import file_sha256
from rakuten_mlops.lifecycle import signing
from rakuten_mlops.lifecycle.challenger import set_challenger
from rakuten_mlops.lifecycle.promotion import bootstrap_gain_interval, decide_promotion
from rakuten_mlops.lifecycle.registry import (
    client,
    configure_mlflow,
    find_version_by_tag,
    get_champion,
    record_gate,
    set_champion,
)
from rakuten_mlops.models.product import ProductClassifier
from rakuten_mlops.models.pyfunc import (
    MODEL_CODE_PATH,
    MODEL_SIGNATURE,
    image_runtime,
    input_example,
    load_product_classifier,
    package_code,
    pip_requirements,
    text_runtime,
)
from rakuten_mlops.pipelines.evaluate import score_parts
from rakuten_mlops.pipelines.history import record_history
from rakuten_mlops.pipelines.ingest import load_splits
from rakuten_mlops.pipelines.layout import WorkDir, read_json, write_json
from rakuten_mlops.pipelines.model_card import log_model_card
from rakuten_mlops.pipelines.monitoring_reference import data_snapshot_dir, save_reference_data
from rakuten_mlops.pipelines.progress import NullProgress, Progress
from rakuten_mlops.pipelines.refit import TRAIN_ROWS_FILE, final_model_path, gate_report
from rakuten_mlops.pipelines.train import sentence_cache

INPUT_TAGS = ("code_version", "data_hash", "params_hash")
GOLD_ARTIFACT = "data/gold.parquet"  # the gold rows, kept with the run (see pipelines/compare.py)
GOLD_COLUMNS = (*X_COLUMNS, LABEL, IMAGE_PATH)
log = logging.getLogger(__name__)


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
    for part in ("test", "gold"):  # how many rows each headline number was measured on
        if "n" in report.get(part, {}).get("system", {}):
            out[f"{part}_rows"] = float(report[part]["system"]["n"])
    return out


def _selection(model: ProductClassifier) -> dict[str, Any]:
    """How training chose the text model (every candidate's cross-validated score)."""
    selection = model.metadata.get("text_selection")
    return selection if isinstance(selection, dict) else {}


def _selection_metrics(model: ProductClassifier) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, scores in _selection(model).get("candidates", {}).items():
        key = f"cv_text_{name.replace('+', '_with_')}"  # MLflow metric names take no "+"
        out[f"{key}_weighted_f1"] = scores["cv_weighted_f1"]
        if "cv_log_loss" in scores:  # models trained before selection by log-loss lack it
            out[f"{key}_log_loss"] = scores["cv_log_loss"]
    return out


def code_version() -> str:
    """The package version and a hash of its source files: equal only for the same code."""
    root = Path(rakuten_mlops.__file__).parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return f"{rakuten_mlops.__version__}+src.{h.hexdigest()[:12]}"


def params_hash(params: Params) -> str:
    """A hash of every parameter (the seed included)."""
    text = json.dumps(params.model_dump(mode="json"), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_inputs(work: WorkDir, params: Params) -> dict[str, str]:
    """What made this run's model: code version, data hash, params hash (the version tags)."""
    ingest_summary = read_json(work.ingest / "summary.json", "ingest")
    return {
        "code_version": code_version(),
        "data_hash": str(ingest_summary["data_hash"]),
        "params_hash": params_hash(params),
    }


def _keep_reference_data(work: WorkDir, settings: Settings, params: Params, data_hash: str) -> None:
    """Snapshot this run's rows for drift (used only while a version on this data is champion)."""
    max_rows = params.monitoring.drift.reference_max_rows
    save_reference_data(settings, work.root, data_hash, max_rows, params.seed)


def gold_frame(gold: pd.DataFrame) -> pd.DataFrame:
    """The gold columns a model needs (text, ids, label, and image paths when there are any)."""
    return gold[[c for c in GOLD_COLUMNS if c in gold.columns]].reset_index(drop=True)


def _log_gold_rows(work: WorkDir) -> None:
    """Keep the gold rows with the run (`data/gold.parquet`): any version can be compared on them later."""
    with tempfile.TemporaryDirectory(prefix="rakuten-gold-") as tmp:
        path = Path(tmp) / Path(GOLD_ARTIFACT).name
        gold_frame(load_splits(work)["gold"]).to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=str(Path(GOLD_ARTIFACT).parent))


def register(work: WorkDir, settings: Settings, params: Params) -> dict[str, Any]:
    """Log params, data hashes, metrics, plots and the pyfunc model; register a version (idempotent).

    Not registered: a model whose bytes match a registered version (that version is reused),
    and a run whose inputs (:func:`run_inputs`) match the champion's (``same_inputs_as_champion``).
    """
    path = final_model_path(work)
    sha = file_sha256(path)
    inputs = run_inputs(work, params)
    experiment_id = configure_mlflow(settings)
    c = client(settings)
    (work.registry_dir / "promotion.json").unlink(missing_ok=True)  # a new run: no decision yet
    _keep_reference_data(work, settings, params, inputs["data_hash"])
    champ = get_champion(c, settings.model_name)
    existing = find_version_by_tag(c, settings.model_name, "model_sha256", sha)
    same_as_champion = champ is not None and all(champ.tags.get(k) == inputs[k] for k in INPUT_TAGS)
    if existing is None and same_as_champion:
        existing = champ
    if existing is not None:  # a retried step, or a rerun on the champion's inputs
        reused: dict[str, Any] = {
            "run_id": existing.run_id,
            "version": str(existing.version),
            "reused": True,
            "model_sha256": sha,
            **inputs,
        }
        if champ is not None and str(champ.version) == str(existing.version):
            reused["same_inputs_as_champion"] = same_as_champion
            reused["note"] = (
                f"the champion v{champ.version} was trained on the same "
                + ("code, data and params" if same_as_champion else "model bytes")
                + ": nothing new registered"
            )
        write_json(work.registry_dir / "registered.json", reused)
        return reused
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
                **{f"inputs.{k}": v for k, v in inputs.items()},
            }
        )
        mlflow.log_metrics({**_flat_metrics(report), **_selection_metrics(model)})
        mlflow.log_dict(_selection(model), "evaluation/text_model_selection.json")
        for epoch in _selection(model).get("history", []):  # a transformer's per-epoch metrics
            step = int(epoch["epoch"])
            mlflow.log_metrics({f"transformer_{k}": v for k, v in epoch.items() if k != "epoch"}, step=step)
        mlflow.log_artifact(str(work.refit_dir / TRAIN_ROWS_FILE), artifact_path="data")
        mlflow.log_artifacts(str(work.eval_dir), artifact_path="evaluation")
        mlflow.log_artifact(str(work.ingest / "summary.json"), artifact_path="data")
        mlflow.log_artifact(str(work.rejects_path), artifact_path="data")
        mlflow.log_artifact(str(work.splits / "summary.json"), artifact_path="data")
        _log_gold_rows(work)
        # Self-contained: the project's code, exact pins of what it imports, one signature.
        with _quiet_integer_hint(), tempfile.TemporaryDirectory() as code_dir:
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(MODEL_CODE_PATH),
                artifacts={"model": str(path)},
                code_paths=[str(package_code(Path(code_dir)))],
                signature=MODEL_SIGNATURE,
                input_example=input_example(model.uses_images),
                pip_requirements=pip_requirements(
                    model.uses_images, model.text.uses_sentences, text_runtime(model), image_runtime(model)
                ),
                registered_model_name=settings.model_name,
            )
        version = str(info.registered_model_version)
        for key, value in {
            "model_sha256": sha,
            "modalities": report["modalities"],
            "gold_weighted_f1": f"{report['gold']['system']['weighted_f1']:.4f}",
            "test_weighted_f1": f"{report['test']['system']['weighted_f1']:.4f}",
            "train_rows": str(report["refit"]["rows"]),
            "text_model": str(model.metadata.get("text_model")),
            **inputs,
        }.items():
            c.set_model_version_tag(settings.model_name, version, key, value)
        sign_version(c, settings, version)
        log_model_card(work, settings, version)  # the gate's decision is added by `promote`
        result = {
            "run_id": run.info.run_id,
            "version": version,
            "reused": False,
            "model_sha256": sha,
            "train_rows": report["refit"]["rows"],
            **inputs,
        }
    write_json(work.registry_dir / "registered.json", result)
    return result


def sign_version(c: Any, settings: Settings, version: str) -> bool:
    """Sign the registered files of `version` with RAKUTEN_MODEL_SIGNING_KEY (tag `signature`).

    Signs exactly what the API downloads (the version's artefacts, fetched back from the store).
    Without a key nothing is signed (development); an API holding a key refuses such versions.
    """
    if settings.model_signing_key is None:
        log.warning("RAKUTEN_MODEL_SIGNING_KEY is not set: version %s is not signed", version)
        return False
    import mlflow.artifacts

    uri = c.get_model_version_download_uri(settings.model_name, version)
    with tempfile.TemporaryDirectory(prefix="rakuten-sign-") as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=tmp, tracking_uri=settings.tracking_uri
        )
        signature = signing.sign(Path(local), settings.model_signing_key.get_secret_value())
    c.set_model_version_tag(settings.model_name, version, signing.SIGNATURE_TAG, signature)
    return True


def champion_gold_metrics(
    champion: ProductClassifier, gold: pd.DataFrame, settings: Settings, params: Params
) -> tuple[dict[str, Any], np.ndarray]:
    """Score a model (the champion, or the challenger) on the gold rows: metrics and predictions."""
    from rakuten_mlops.features.images import EmbeddingCache

    champion.text.sentence_cache = sentence_cache(settings)
    emb = None
    if champion.uses_images and champion.embedder is not None:
        cache = EmbeddingCache.for_embedder(settings.embeddings_dir, champion.embedder)
        emb = champion.embedder.embed_bytes(champion.image_bytes(gold), cache)
    metrics, preds = score_parts(champion, gold, emb)
    return metrics["system"], preds["system"]


def _point_reference_at(settings: Settings, version: str, data_hash: str | None) -> None:
    """``monitoring/reference/v<version>`` → the snapshot of its data (readers that go by version)."""
    if not data_hash:
        return
    target = data_snapshot_dir(settings, data_hash)
    link = target.parent / f"v{version}"
    if target.is_dir() and not link.exists():
        link.symlink_to(target.name, target_is_directory=True)


def promote(
    work: WorkDir, settings: Settings, params: Params, progress: Progress | None = None
) -> dict[str, Any]:
    """Give the new version the `champion` alias if it passes the gate; record the decision as tags.

    The gate compares gold weighted F1 strictly (see :mod:`rakuten_mlops.lifecycle.promotion`)
    and states the paired bootstrap interval of the gain. A version that already holds the
    alias is not promoted again (``promote`` false, ``unchanged`` true), except when replaying
    this run's own promotion (a retried task).
    """
    progress = progress or NullProgress()
    registered = read_json(work.registry_dir / "registered.json", "register")
    report = gate_report(work)
    version = str(registered["version"])
    configure_mlflow(settings)
    c = client(settings)
    champ = get_champion(c, settings.model_name)
    decision_path = work.registry_dir / "promotion.json"
    if champ is not None and str(champ.version) == version:
        done = read_json(decision_path, "promote") if decision_path.is_file() else None
        if done is not None and str(done.get("version")) == version and done.get("promote"):
            return dict(done)  # this run promoted it: a retried task replays the decision
        reasons = [f"version {version} already holds champion: nothing to promote"]
        if registered.get("note"):
            reasons.append(str(registered["note"]))
        result = {
            "version": version,
            "promote": False,
            "unchanged": True,
            "champion_before": version,
            "reasons": reasons,
        }
        write_json(decision_path, result)
        return result
    gold = load_splits(work)["gold"]
    challenger_model: ProductClassifier = joblib.load(final_model_path(work))
    _, challenger_pred = champion_gold_metrics(challenger_model, gold, settings, params)
    champion_metrics, champion_pred = None, None
    if champ is not None:
        progress.log(f"scoring champion v{champ.version} on the gold set")
        champion_model = load_product_classifier(f"models:/{settings.model_name}/{champ.version}")
        champion_metrics, champion_pred = champion_gold_metrics(champion_model, gold, settings, params)
    interval = bootstrap_gain_interval(
        gold[LABEL].to_numpy(), challenger_pred, champion_pred, challenger_model.classes_, params.seed
    )
    decision = decide_promotion(report["gold"]["system"], champion_metrics, params.promotion, interval)
    result = {
        "version": version,
        "champion_before": str(champ.version) if champ is not None else None,
        **decision.as_dict(),
    }
    record_gate(c, settings.model_name, version, result)  # kept across later promotions and rollbacks
    if decision.promote and params.promotion.shadow and champ is not None:
        # Safe rollout: the version answers nobody yet; the API scores it beside the champion.
        reasons = [
            *decision.reasons,
            f"promotion.shadow is on: version {version} is challenger beside champion v{champ.version} "
            "(`rakuten-mlops models promote --challenger` applies the live rule)",
        ]
        result.update(promote=False, challenger=True, reasons=reasons)
        write_json(decision_path, result)
        set_challenger(c, settings.model_name, version, reasons, "challenger")
        _point_reference_at(settings, version, registered.get("data_hash"))  # for its promotion later
        log_model_card(work, settings, version, gate=result)
        return result
    write_json(decision_path, result)  # before the alias moves: a retry then replays it
    if decision.promote:
        set_champion(c, settings.model_name, version, decision.reasons, "promoted")
        before = str(champ.version) if champ is not None else None
        record_history(
            settings, username="pipeline", action="gate promotion", from_version=before,
            to_version=version, reasons="; ".join(decision.reasons),
        )  # fmt: skip
        _point_reference_at(settings, version, registered.get("data_hash"))
    else:
        c.set_model_version_tag(settings.model_name, version, "promotion.decision", "rejected")
        c.set_model_version_tag(
            settings.model_name, version, "promotion.reasons", "; ".join(decision.reasons)[:4900]
        )
    log_model_card(work, settings, version, gate=result)
    return result
