"""The fine-tuning loop of :class:`~rakuten_mlops.models.transformer.TransformerTextClassifier`.

Reproducible and resumable: the starting weights are saved once as a Hugging Face folder
(`<work>/base`, loaded back with `from_pretrained`), every epoch's shuffling and dropout draw from
generators seeded by (seed, epoch), and after every epoch the network, optimiser, scheduler,
scaler and early-stopping state go to `<work>/state.pt`. A rerun with the same data and
parameters (same fingerprint) resumes after the last finished epoch and ends with the same
weights as an uninterrupted run; anything else starts again from scratch.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.metrics import f1_score

from rakuten_mlops.models import deep_runtime as rt

if TYPE_CHECKING:
    from rakuten_mlops.models.transformer import TransformerTextClassifier

STATE_FILE = "state.pt"
FINGERPRINT_FILE = "fingerprint.txt"


@dataclass
class TrainingResult:
    net: Any
    files: dict[str, bytes]
    tokenizer_json: str
    pad_id: int
    best_epoch: int
    history: list[dict[str, float]]
    device: str
    precision: str


def fingerprint(
    clf: TransformerTextClassifier, texts: list[str], y: np.ndarray, val: Any, epochs: Any
) -> str:
    """Equal only for the same parameters, seed, rows and labels: when a checkpoint may be resumed."""
    h = hashlib.sha256()
    h.update(json.dumps([clf.params.model_dump(mode="json"), clf.seed, epochs], sort_keys=True).encode())
    for part_texts, part_y in [(texts, y), *([val] if val is not None else [])]:
        h.update("\x00".join(part_texts).encode())
        h.update(np.asarray(part_y).astype(str).tobytes())
    return h.hexdigest()


def _prepare_base(clf: TransformerTextClassifier, base: Path, texts: list[str], n_labels: int) -> None:
    """The starting weights and tokenizer as a Hugging Face folder (tiny random, or a hub/local model)."""
    p = clf.params
    if p.tiny is not None:
        rt.build_tiny_backbone(base, texts, n_labels, p.tiny, p.max_length, clf.seed)
        return
    transformers = rt.require_transformers()
    rt.require_torch().manual_seed(clf.seed)  # the new classification head's initial weights
    tokenizer = transformers.AutoTokenizer.from_pretrained(p.model)
    net = transformers.AutoModelForSequenceClassification.from_pretrained(
        p.model, num_labels=n_labels, ignore_mismatched_sizes=True
    )
    net.save_pretrained(base)
    tokenizer.save_pretrained(base)


def _pad(rows: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)], mask[i, : len(r)] = r, 1
    return ids, mask


def _log_mlflow(metrics: dict[str, float], epoch: int) -> None:
    try:
        import mlflow
    except ImportError:  # a training process without MLflow has no run to log to
        return
    if mlflow.active_run() is not None:
        mlflow.log_metrics({f"transformer_{k}": v for k, v in metrics.items()}, step=epoch)


def _folder_files(net: Any, tokenizer: Any) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        net.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        return {f.name: f.read_bytes() for f in Path(tmp).iterdir() if f.is_file()}


def train_transformer(
    clf: TransformerTextClassifier,
    texts: list[str],
    y: np.ndarray,
    val: tuple[list[str], np.ndarray] | None,
    work: Path,
    epochs: int | None,
) -> TrainingResult:
    """Fine-tune (or resume fine-tuning) and return the best epoch's network and its files."""
    torch = rt.require_torch()
    transformers = rt.require_transformers()
    p, seed = clf.params, clf.seed
    n_epochs = epochs or p.epochs
    classes = clf.classes_
    labels = np.searchsorted(classes, y)
    base, state_path, fp_path = work / "base", work / STATE_FILE, work / FINGERPRINT_FILE
    fp = fingerprint(clf, texts, y, val, epochs)
    if not fp_path.is_file() or fp_path.read_text() != fp:
        shutil.rmtree(base, ignore_errors=True)
        state_path.unlink(missing_ok=True)
        work.mkdir(parents=True, exist_ok=True)
        _prepare_base(clf, base, texts, len(classes))
        fp_path.write_text(fp)

    tokenizer = transformers.AutoTokenizer.from_pretrained(base)
    net = transformers.AutoModelForSequenceClassification.from_pretrained(base)
    backend = rt.require_tokenizers().Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.enable_truncation(p.max_length)
    pad_id = int(tokenizer.pad_token_id)
    rows = [e.ids for e in backend.encode_batch(texts)]

    device = rt.select_device(p.device)
    precision = rt.resolve_precision(p.precision, device)
    dtype = rt.autocast_dtype(precision)
    net.to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=p.lr, weight_decay=p.weight_decay)
    batches = math.ceil(len(rows) / p.batch_size)
    total_steps = max(1, math.ceil(batches / p.grad_accumulation) * n_epochs)
    scheduler = transformers.get_linear_schedule_with_warmup(
        optimizer, int(p.warmup * total_steps), total_steps
    )
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    state: dict[str, Any] = {
        "epoch": 0,
        "best_f1": -1.0,
        "best_epoch": 0,
        "bad": 0,
        "history": [],
        "best": None,
    }
    if state_path.is_file():
        saved = torch.load(state_path, map_location="cpu", weights_only=False)
        net.load_state_dict(saved["net"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        scaler.load_state_dict(saved["scaler"])
        state = saved["progress"]

    while state["epoch"] < n_epochs and not (val is not None and state["bad"] >= p.patience):
        epoch = state["epoch"] + 1
        order = torch.randperm(
            len(rows), generator=torch.Generator().manual_seed(seed * 1009 + epoch)
        ).numpy()
        torch.manual_seed(seed * 1013 + epoch)  # dropout draws
        net.train()
        started, loss_sum = time.perf_counter(), 0.0
        optimizer.zero_grad()
        for b in range(batches):
            idx = order[b * p.batch_size : (b + 1) * p.batch_size]
            ids, mask = _pad([rows[i] for i in idx], pad_id)
            target = torch.from_numpy(labels[idx]).to(device)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                out = net(
                    input_ids=torch.from_numpy(ids).to(device),
                    attention_mask=torch.from_numpy(mask).to(device),
                )
                loss = torch.nn.functional.cross_entropy(out.logits.float(), target)
            scaler.scale(loss / p.grad_accumulation).backward()
            loss_sum += float(loss.detach()) * len(idx)
            if (b + 1) % p.grad_accumulation == 0 or b + 1 == batches:
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                optimizer.zero_grad()
        seconds = time.perf_counter() - started
        metrics = {"train_loss": loss_sum / len(rows), "train_samples_per_second": len(rows) / seconds}
        if val is not None:
            probs = _val_proba(clf, net, val[0], backend, pad_id)
            metrics["val_weighted_f1"] = float(f1_score(val[1], classes[probs.argmax(1)], average="weighted"))
            v_idx = np.searchsorted(classes, val[1])
            known = np.isin(val[1], classes)
            metrics["val_loss"] = (
                float(-np.log(probs[known, v_idx[known]] + 1e-12).mean()) if known.any() else 0.0
            )
        improved = val is None or metrics["val_weighted_f1"] > state["best_f1"]
        if improved:
            state["best"] = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
            state["best_epoch"], state["bad"] = epoch, 0
            state["best_f1"] = metrics.get("val_weighted_f1", -1.0)
        else:
            state["bad"] += 1
        state["epoch"] = epoch
        state["history"].append({"epoch": epoch, **{k: round(v, 6) for k, v in metrics.items()}})
        _log_mlflow(metrics, epoch)
        tmp_path = state_path.with_suffix(".tmp")
        torch.save(
            {"net": net.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "progress": state},
            tmp_path,
        )  # fmt: skip
        tmp_path.replace(state_path)  # a crash mid-write leaves the previous epoch's checkpoint
        if clf.on_epoch is not None:
            clf.on_epoch(state["history"][-1])

    net.load_state_dict(state["best"])
    net.eval()
    return TrainingResult(
        net=net, files=_folder_files(net, tokenizer), tokenizer_json=backend.to_str(), pad_id=pad_id,
        best_epoch=int(state["best_epoch"]), history=state["history"], device=str(device),
        precision=precision,
    )  # fmt: skip


def _val_proba(clf: Any, net: Any, texts: list[str], backend: Any, pad_id: int) -> np.ndarray:
    """Validation probabilities from the network being trained (PyTorch, no ONNX yet)."""
    torch = rt.require_torch()
    net.eval()
    device = next(net.parameters()).device
    out = []
    step = clf.params.inference_batch_size
    encoded = [e.ids for e in backend.encode_batch(texts)]
    with torch.inference_mode():
        for start in range(0, len(encoded), step):
            ids, mask = _pad(encoded[start : start + step], pad_id)
            logits = net(
                input_ids=torch.from_numpy(ids).to(device), attention_mask=torch.from_numpy(mask).to(device)
            )
            out.append(logits.logits.float().cpu().numpy())
    logits_all = np.concatenate(out) if out else np.zeros((0, len(clf.classes_)))
    z = logits_all - logits_all.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]
