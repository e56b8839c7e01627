"""Where each pipeline step reads and writes inside a work folder (one folder per pipeline run)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rakuten_mlops.errors import MissingInputError
from rakuten_mlops.infra import write_json_atomic


@dataclass(frozen=True)
class WorkDir:
    root: Path

    @property
    def ingest(self) -> Path:
        return self.root / "ingest"

    @property
    def clean_path(self) -> Path:
        return self.ingest / "clean.parquet"

    @property
    def rejects_path(self) -> Path:
        return self.ingest / "rejects.csv"

    @property
    def splits(self) -> Path:
        return self.root / "splits"

    def split_path(self, part: str) -> Path:
        return self.splits / f"{part}.parquet"

    @property
    def embeddings_path(self) -> Path:
        return self.root / "features" / "image_embeddings.npz"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def refit_dir(self) -> Path:
        """The model refitted on every labelled row except gold (the one that is registered)."""
        return self.root / "refit"

    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

    @property
    def metrics_path(self) -> Path:
        return self.eval_dir / "metrics.json"

    @property
    def registry_dir(self) -> Path:
        return self.root / "registry"


def write_json(path: Path, data: Any) -> Path:
    """A step's JSON output, replaced atomically (see `rakuten_mlops.infra.write_json_atomic`)."""
    return write_json_atomic(path, data)


def read_json(path: Path, step_hint: str) -> Any:
    if not path.is_file():
        raise MissingInputError(f"{path} is missing: run the `{step_hint}` step first")
    return json.loads(path.read_text(encoding="utf-8"))


def read_frame(path: Path, step_hint: str) -> pd.DataFrame:
    if not path.is_file():
        raise MissingInputError(f"{path} is missing: run the `{step_hint}` step first")
    return pd.read_parquet(path)
