"""What the deep models need around them: the optional imports, the device, the precision, a tiny
backbone built locally, and ONNX export / ONNX Runtime sessions.

Nothing here imports torch or transformers at module level: a text-only TF-IDF install and a
CPU-only serving image (ONNX Runtime + tokenizers, no torch) import this module too.
"""

from __future__ import annotations

import io
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from rakuten_mlops.errors import InvalidInputError, RakutenError
from rakuten_mlops.features.images import select_torch_device

DEEP_EXTRA_HINT = "pip install 'rakuten-mlops[deep]' (torch==2.13.0 with pip)"
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


class MissingDeepExtraError(RakutenError, RuntimeError):
    """The `deep` optional dependency group is not installed."""


def require_torch() -> Any:
    """Import torch, or fail with a message naming the extra to install."""
    try:
        import torch
    except ImportError as exc:
        raise MissingDeepExtraError(f"transformer models need the 'deep' extra: {DEEP_EXTRA_HINT}") from exc
    return torch


def require_transformers() -> Any:
    """Import transformers (and torch), or fail naming the extra to install."""
    require_torch()
    try:
        import transformers
    except ImportError as exc:
        raise MissingDeepExtraError(f"transformer models need the 'deep' extra: {DEEP_EXTRA_HINT}") from exc
    # Progress bars and notices per weight file would bury the pipeline's own progress lines.
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    return transformers


def require_tokenizers() -> Any:
    try:
        import tokenizers
    except ImportError as exc:
        raise MissingDeepExtraError(
            f"transformer models need the 'tokenizers' package of the 'deep' extra: {DEEP_EXTRA_HINT}"
        ) from exc
    return tokenizers


def use_onnx(runtime: str, exported: bool) -> bool:
    """Whether a deep model predicts with ONNX Runtime: `runtime` auto (when exported and installed),
    torch (never) or onnx (always: an error without onnxruntime)."""
    if runtime == "torch" or not exported:
        return False
    if runtime == "onnx":
        if onnxruntime_or_none() is None:
            raise MissingDeepExtraError(f"runtime onnx needs onnxruntime: {DEEP_EXTRA_HINT}")
        return True
    return onnxruntime_or_none() is not None


def onnxruntime_or_none() -> Any:
    """onnxruntime when installed, else None (the model then runs on PyTorch)."""
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime


def select_device(preference: str, setting: str = "text.transformer.device") -> Any:
    """`auto`: CUDA, then Apple MPS, then CPU. An explicit device that is absent is an error."""
    return select_torch_device(require_torch(), preference, setting)


def resolve_precision(preference: str, device: Any) -> str:
    """`bf16`, `fp16` or `no`. auto: bf16 on a GPU that supports it, fp16 on other CUDA GPUs, else no."""
    torch = require_torch()
    if preference == "auto":
        if device.type != "cuda":
            return "no"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if preference == "fp16" and device.type == "cpu":
        raise InvalidInputError("text.transformer.precision fp16 needs a GPU: use bf16 or no on a CPU")
    return preference


def autocast_dtype(precision: str) -> Any:
    torch = require_torch()
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def train_wordpiece(texts: list[str], vocab_size: int) -> Any:
    """A BERT-style WordPiece tokenizer learned from `texts` (lower-cased, accents kept).

    The `tokenizers` library's BERT normaliser and pre-tokeniser cut the words; the vocabulary is
    the special tokens, every character seen (alone and as a `##` continuation), then the most
    frequent words and word endings (`##` + the last 2–4 characters, weighted by word counts),
    ties broken alphabetically. Built here rather than by the library's `WordPieceTrainer`, whose
    vocabulary changes from run to run on the same texts (ties broken in hash order): the same
    data and seed must give the same model.
    """
    tk = require_tokenizers()
    normalizer = tk.normalizers.BertNormalizer(lowercase=True, strip_accents=False)
    pre_tokenizer = tk.pre_tokenizers.BertPreTokenizer()
    words: Counter[str] = Counter()
    for text in texts:
        words.update(w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    endings: Counter[str] = Counter()
    for word, count in words.items():
        for k in range(2, 5):
            if len(word) > k:
                endings["##" + word[-k:]] += count
    chars = sorted({c for w in words for c in w})
    vocab = list(dict.fromkeys([*SPECIAL_TOKENS, *chars, *(f"##{c}" for c in chars)]))
    known = set(vocab)
    for token, _ in sorted([*words.items(), *endings.items()], key=lambda kv: (-kv[1], kv[0])):
        if len(vocab) >= vocab_size:
            break
        if token not in known:
            vocab.append(token)
            known.add(token)
    tok = tk.Tokenizer(tk.models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = tk.processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    tok.decoder = tk.decoders.WordPiece()
    return tok


def build_tiny_backbone(
    folder: Path, texts: list[str], n_labels: int, tiny: Any, max_length: int, seed: int
) -> Path:
    """Save a random-weight BERT-like classifier and its tokenizer as a Hugging Face folder.

    The folder loads with `from_pretrained(folder)` exactly like one downloaded from a hub.
    """
    transformers = require_transformers()
    torch = require_torch()
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=train_wordpiece(texts, tiny.vocab_size),
        unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
        model_max_length=max_length,
    )  # fmt: skip
    config = transformers.BertConfig(
        vocab_size=len(fast),
        hidden_size=tiny.hidden,
        num_hidden_layers=tiny.layers,
        num_attention_heads=tiny.heads,
        intermediate_size=tiny.intermediate,
        max_position_embeddings=max(max_length, 32),
        num_labels=n_labels,
    )
    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    transformers.BertForSequenceClassification(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def export_onnx(model: Any, max_length: int) -> bytes:
    """The classifier as ONNX (inputs `input_ids`, `attention_mask`; output `logits`), CPU float32."""
    torch = require_torch()

    class Logits(torch.nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    wrapper = Logits(model).to("cpu").float().eval()
    length = min(16, max_length)
    ids = torch.ones((2, length), dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, length // 2 :] = 0  # a padded row, so the mask is traced as data, not a constant
    buf = io.BytesIO()
    with warnings.catch_warnings():  # tracer notes on Python-side shape checks: the test compares outputs
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper, (ids, mask), buf,
            input_names=["input_ids", "attention_mask"], output_names=["logits"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                "logits": {0: "batch"},
            },
            opset_version=17, dynamo=False,
        )  # fmt: skip
    return buf.getvalue()


def export_image_onnx(net: Any, image_size: int) -> bytes:
    """An image network as ONNX (input `images`: N×3×size×size float32; output `logits`), CPU float32."""
    torch = require_torch()
    net = net.to("cpu").float().eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (torch.zeros((2, 3, image_size, image_size)),), buf,
            input_names=["images"], output_names=["logits"],
            dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=17, dynamo=False,
        )  # fmt: skip
    return buf.getvalue()


def onnx_session(model_bytes: bytes, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session, or None when onnxruntime is not installed."""
    ort = onnxruntime_or_none()
    if ort is None:
        return None
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
