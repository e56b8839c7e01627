"""Helpers shared by tests (import as `tests.helpers`)."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

import numpy as np
import pandas as pd

from rakuten_mlops.config import Params, Settings
from tests.services import unavailable

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared" / "rakuten"


def constraint_pin(package: str) -> str:
    """The version constraints.txt pins `package` to."""
    for line in (REPO_ROOT / "constraints.txt").read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep and name.lower() == package.lower():
            return version.strip()
    raise AssertionError(f"constraints.txt pins no version of {package}")


def make_settings(home: Path, **kwargs: object) -> Settings:
    """Settings pointing every default (MLflow DB, artifacts, app DB) into `home`."""
    return Settings(home=home, _env_file=None, **kwargs)  # type: ignore[call-arg]


def fast_params(**overrides: object) -> Params:
    """Params for tests: small CV, images on; override sections with dicts."""
    base = {"text": {"calibration_cv": 2, "min_df": 1}, "image": {"image_size": 64, "batch_size": 64}}
    for key, value in overrides.items():
        if isinstance(value, dict):
            base.setdefault(key, {}).update(value)  # type: ignore[union-attr]
        else:
            base[key] = value  # type: ignore[assignment]
    return Params.model_validate(base)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections at host:port (half a second to answer)."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def claim_empty_redis_db(host: str = "127.0.0.1", port: int = 6379) -> int:
    """An empty Redis database number (15 down to 1), claimed with a SET NX key so that two tests
    running at once (pytest-xdist workers, two checkouts) never share one. Flush it when done."""
    import redis

    for number in range(15, 0, -1):
        db = redis.Redis(host=host, port=port, db=number)
        if db.dbsize() == 0 and db.set("rakuten-test-claim", secrets.token_hex(8), nx=True):
            return number
    unavailable(f"no empty Redis database number (1-15) at {host}:{port}")


def make_params(**monitoring: object) -> Params:
    """Params without MLflow logging nor champion predictions unless asked (fast monitoring tests)."""
    drift = {"log_to_mlflow": False, "predictions": False, **monitoring.pop("drift", {})}  # type: ignore[dict-item]
    return Params.model_validate({"monitoring": {"drift": drift, **monitoring}})


def saved_pyfunc_model(root: Path, sample_dir: Path, with_image: bool) -> str:
    """A model trained by the pipeline's own steps on `sample_dir`, saved as the registry stores it
    (models from code + the project's code), under `root`; its path, usable as a model URI."""
    import joblib
    import mlflow

    from rakuten_mlops.models.pyfunc import MODEL_CODE_PATH, MODEL_SIGNATURE, input_example, package_code
    from rakuten_mlops.pipelines.layout import WorkDir
    from rakuten_mlops.pipelines.runner import run_step
    from rakuten_mlops.pipelines.train import model_path

    work, settings, params = WorkDir(root / "work"), make_settings(root / "home"), fast_params()
    for step in ("ingest", "split", "embed", "train"):
        run_step(step, work, settings, params, sample_dir)
    joblib.dump(joblib.load(model_path(work)), root / "model.joblib")
    target = root / "pyfunc"
    mlflow.pyfunc.save_model(
        str(target),
        python_model=str(MODEL_CODE_PATH),
        artifacts={"model": str(root / "model.joblib")},
        code_paths=[str(package_code(root))],
        signature=MODEL_SIGNATURE,
        input_example=input_example(with_image=with_image),
    )
    return str(target)


def word_listings(
    words: dict[int, str], n_per_class: int, seed: int, html_descriptions: bool
) -> pd.DataFrame:
    """`n_per_class` listings per code, titles of three of its words shuffled (+ a reference number),
    descriptions an HTML line of two of them or empty: a task a tiny model learns in seconds."""
    rng = np.random.default_rng(seed)
    rows = []
    for code, text in words.items():
        for i in range(n_per_class):
            ws = text.split()
            rng.shuffle(ws)
            description = f"<p>{ws[0]} &amp; {ws[-1]}</p>" if html_descriptions else ""
            rows.append((" ".join(ws[:3]) + f" ref {i}", description, code))
    return pd.DataFrame(rows, columns=["designation", "description", "prdtypecode"])
