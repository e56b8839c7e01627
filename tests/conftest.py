"""Shared fixtures: isolated home folders, tiny generated datasets, settings and fast params of the
streams and monitoring tests (tests/simulation, tests/monitoring, tests/pipelines, tests/integration)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rakuten_mlops.config import Params, Settings, get_settings
from tests.helpers import SHARED, make_params, make_settings
from tests.services import require


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh RAKUTEN_HOME for one test, also seen by the CLI."""
    h = tmp_path / "home"
    monkeypatch.setenv("RAKUTEN_HOME", str(h))
    for var in ("RAKUTEN_MLFLOW_TRACKING_URI", "RAKUTEN_DATABASE_URL", "RAKUTEN_PARAMS_PATH"):
        monkeypatch.delenv(var, raising=False)
    get_settings.cache_clear()
    yield h
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def text_sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small labelled sample without images (all 27 classes)."""
    from rakuten_mlops.simulation.core.sample import generate_sample

    out = tmp_path_factory.mktemp("text-sample")
    generate_sample(out, n_per_class=14, seed=3, with_images=False)
    return out


@pytest.fixture(scope="session")
def image_sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small labelled sample with small JPEG images."""
    from rakuten_mlops.simulation.core.sample import generate_sample

    out = tmp_path_factory.mktemp("image-sample")
    generate_sample(out, n_per_class=10, seed=5, with_images=True, image_size=96)
    return out


@pytest.fixture(scope="session")
def shared_rakuten() -> Path:
    require(SHARED.is_dir(), f"real Rakuten rows not available at {SHARED} (development data, not shipped)")
    return SHARED


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Text-only sample, big enough for per-batch drift tests (~970 rows)."""
    from rakuten_mlops.simulation.core.sample import generate_sample

    out = tmp_path_factory.mktemp("monitoring-sample")
    generate_sample(out, n_per_class=30, seed=7, with_images=False)
    return out


@pytest.fixture(scope="session")
def small_image_sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rakuten_mlops.simulation.core.sample import generate_sample

    out = tmp_path_factory.mktemp("monitoring-image-sample")
    generate_sample(out, n_per_class=8, seed=11, with_images=True, image_size=48)
    return out


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with every default under ``<tmp>/home``."""
    return make_settings(tmp_path / "home")


@pytest.fixture
def params() -> Params:
    """Params without MLflow logging nor champion predictions (see `tests.helpers.make_params`)."""
    return make_params()
