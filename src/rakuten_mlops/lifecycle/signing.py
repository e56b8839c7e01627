"""Model signatures: an HMAC over the digests of every file of a registered model's artefacts.

The trainer signs each version at registration with a key only it and the API hold, and records
the signature as the version tag `signature`. The API recomputes it over the files it downloaded
and refuses a version whose signature is missing or does not match: someone who can move the
`champion` alias (or swap artefacts in the store) but lacks the key cannot make the API load code.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from rakuten_mlops.infra import file_sha256

SIGNATURE_TAG = "signature"
SCHEME = "hmac-sha256-v1"
IGNORED = frozenset({"registered_model_meta"})  # written by some MLflow downloads, not by the trainer


class SignatureError(Exception):
    """A model version is unsigned or its signature does not verify; `reason` is a metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def manifest(model_dir: Path) -> str:
    """One `relative/path<TAB>sha256` line per file, sorted: what the signature covers."""
    files = sorted(
        p for p in model_dir.rglob("*") if p.is_file() and not p.is_symlink() and p.name not in IGNORED
    )
    if not files:
        raise SignatureError("empty", f"no files under {model_dir}")
    return "\n".join(f"{p.relative_to(model_dir).as_posix()}\t{file_sha256(p)}" for p in files)


def sign(model_dir: Path, key: str) -> str:
    """The signature of the model files under `model_dir`."""
    mac = hmac.new(key.encode(), manifest(model_dir).encode(), hashlib.sha256).hexdigest()
    return f"{SCHEME}:{mac}"


def verify(model_dir: Path, key: str, signature: str | None) -> None:
    """Raise SignatureError unless `signature` is the signature of `model_dir` under `key`."""
    if not signature:
        raise SignatureError("unsigned", "the version carries no signature tag")
    if not signature.startswith(f"{SCHEME}:"):
        raise SignatureError("bad_signature", "the version's signature uses an unknown scheme")
    if not hmac.compare_digest(sign(model_dir, key), signature):
        raise SignatureError(
            "bad_signature", "the version's signature does not match its files (tampered, or another key)"
        )
