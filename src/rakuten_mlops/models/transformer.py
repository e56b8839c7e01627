"""Text model: a Hugging Face sequence-classification backbone fine-tuned on title + description.

It answers like :class:`~rakuten_mlops.models.text.TextClassifier` (`classes_`, `predict_proba`
on a frame, `refit`, `chosen_`, `selection_`), so :class:`~rakuten_mlops.models.product.ProductClassifier`,
the pyfunc model, the API, `predict` and Spark scoring serve it unchanged.

Training (see :mod:`rakuten_mlops.models.transformer_training`): AdamW with linear warmup and
decay, gradient accumulation, bf16/fp16 autocast, early stopping on the validation split's
weighted F1, a checkpoint after every epoch that a rerun resumes. The pickled model carries the
backbone's files (weights, config, tokenizer) and, when exported, an ONNX copy: at predict time
ONNX Runtime answers when it is installed (no torch needed), PyTorch otherwise.

Refit: the refitted model learns from every row it is given for the number of epochs early
stopping chose on the train split (`best_epoch_`), from the same starting weights, with no
validation (there is none left).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rakuten_mlops.config import TransformerParams
from rakuten_mlops.features.text import frame_descriptions, frame_titles
from rakuten_mlops.models import deep_runtime as rt

KIND = "transformer"


def listing_texts(frame: pd.DataFrame, description_max_chars: int) -> list[str]:
    """Cleaned `title . description` per row (the title alone when the description is empty)."""
    titles = frame_titles(frame)
    descriptions = frame_descriptions(frame, description_max_chars) if description_max_chars else None
    if descriptions is None:
        return titles
    return [f"{t} . {d}" if d else t for t, d in zip(titles, descriptions, strict=True)]


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


class TransformerTextClassifier:
    """A fine-tuned transformer behind the text model's interface.

    Not pickled: `checkpoint_dir` (where training keeps its base folder and epoch checkpoints),
    `runtime` (`auto`: ONNX Runtime when exported and installed; `torch` or `onnx` to force one)
    and the loaded network / session.
    """

    chosen_ = KIND
    uses_sentences = False
    linear_member = None
    oof_proba_: np.ndarray | None = None  # no out-of-fold probabilities: fusion uses `val_proba_`
    sentence_cache: Any = None
    embed_progress: Any = None
    on_epoch: Any = None  # called with each epoch's metrics (the pipeline's progress log)

    def __init__(
        self, params: TransformerParams, random_state: int = 42, checkpoint_dir: Path | None = None
    ) -> None:
        self.params = params
        self.random_state = random_state
        self.checkpoint_dir = checkpoint_dir
        self.runtime = "auto"
        self._net: Any = None
        self._session: Any = None
        self._tokenizer: Any = None

    @property
    def seed(self) -> int:
        return self.params.seed if self.params.seed is not None else self.random_state

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in (
            "checkpoint_dir",
            "_net",
            "_session",
            "_tokenizer",
            "sentence_cache",
            "embed_progress",
            "on_epoch",
        ):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.checkpoint_dir, self._net, self._session, self._tokenizer = None, None, None, None
        self.runtime = state.get("runtime", "auto")

    # ----- training
    def fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray | pd.Series,
        val: tuple[pd.DataFrame, np.ndarray] | None = None,
        epochs: int | None = None,
    ) -> TransformerTextClassifier:
        """Fine-tune on `X`; with `val`, stop early on its weighted F1 and keep the best epoch.

        Args:
            X, y: training listings and their codes.
            val: validation listings and codes (early stopping and `val_proba_` for the fusion).
            epochs: train exactly this many epochs (refit); default `params.epochs` at most.
        """
        from rakuten_mlops.models.transformer_training import train_transformer

        y = np.asarray(y)
        self.classes_ = np.unique(y)
        texts = listing_texts(X, self.params.description_max_chars)
        val_data = None
        if val is not None:
            val_data = (listing_texts(val[0], self.params.description_max_chars), np.asarray(val[1]))
        with tempfile.TemporaryDirectory() as tmp:
            work = self.checkpoint_dir or Path(tmp)
            result = train_transformer(self, texts, y, val_data, work, epochs)
        self.backbone_files_: dict[str, bytes] = result.files
        self.tokenizer_json_: str = result.tokenizer_json
        self.pad_id_: int = result.pad_id
        self.best_epoch_: int = result.best_epoch
        self.history_: list[dict[str, float]] = result.history
        self.device_: str = result.device
        self.precision_: str = result.precision
        self._net = result.net
        self.onnx_bytes_: bytes | None = (
            rt.export_onnx(result.net, self.params.max_length) if self.params.onnx else None
        )
        self.val_proba_ = self.predict_proba(val[0]) if val is not None else None
        self.selection_ = {
            "kind": KIND,
            "backbone": self.params.model if self.params.tiny is None else "tiny (random init)",
            "candidates": {},
            "best_epoch": self.best_epoch_,
            "epochs_run": len(self.history_),
            "device": self.device_,
            "precision": self.precision_,
            "history": self.history_,
        }
        return self

    def refit(self, X: pd.DataFrame, y: np.ndarray | pd.Series) -> TransformerTextClassifier:
        """A new model trained on `X` for `best_epoch_` epochs (no validation: see the module doc)."""
        new = TransformerTextClassifier(self.params, self.random_state, self.checkpoint_dir)
        if self.checkpoint_dir is not None:
            new.checkpoint_dir = self.checkpoint_dir / "refit"
        return new.fit(X, y, val=None, epochs=self.best_epoch_)

    # ----- inference
    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and attention mask (int64), padded to the longest row, cut at `max_length`."""
        if self._tokenizer is None:
            tok = rt.require_tokenizers().Tokenizer.from_str(self.tokenizer_json_)
            tok.enable_truncation(self.params.max_length)
            tok.enable_padding(pad_id=self.pad_id_)
            self._tokenizer = tok
        encoded = self._tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in encoded], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encoded], dtype=np.int64)
        return ids, mask

    def uses_onnx(self) -> bool:
        """Whether `predict_proba` runs on ONNX Runtime (exported, installed, not forced to torch)."""
        return rt.use_onnx(self.runtime, getattr(self, "onnx_bytes_", None) is not None)

    def network(self) -> Any:
        """The PyTorch network, loaded with `from_pretrained` from the carried files when needed."""
        if self._net is None:
            transformers = rt.require_transformers()
            with tempfile.TemporaryDirectory() as tmp:
                for name, data in self.backbone_files_.items():
                    (Path(tmp) / name).write_bytes(data)
                self._net = transformers.AutoModelForSequenceClassification.from_pretrained(tmp)
            self._net.eval()
        return self._net

    def logits(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.uses_onnx():
            if self._session is None:
                self._session = rt.onnx_session(self.onnx_bytes_)  # type: ignore[arg-type]
            out = self._session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
            return np.asarray(out)
        torch = rt.require_torch()
        net = self.network()
        device = next(net.parameters()).device
        with torch.inference_mode():
            out = net(
                input_ids=torch.from_numpy(ids).to(device), attention_mask=torch.from_numpy(mask).to(device)
            )
        return out.logits.float().cpu().numpy()  # type: ignore[no-any-return]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        texts = listing_texts(X, self.params.description_max_chars)
        out = np.zeros((len(texts), len(self.classes_)), dtype=np.float64)
        step = self.params.inference_batch_size
        order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths pad less
        for start in range(0, len(texts), step):
            rows = order[start : start + step]
            ids, mask = self.encode([texts[i] for i in rows])
            out[rows] = _softmax(self.logits(ids, mask))
        return out

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]  # type: ignore[no-any-return]
