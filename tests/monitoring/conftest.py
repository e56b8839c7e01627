"""Fixtures of the monitoring tests: small samples, isolated settings, fast params."""

from __future__ import annotations

from pathlib import Path

import pytest

from rakuten_mlops.config import Params, Settings
from rakuten_mlops.simulation.core.sample import generate_sample
from tests.helpers import make_settings
from tests.monitoring.helpers import make_params


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Text-only sample, big enough for per-batch drift tests (~970 rows)."""
    out = tmp_path_factory.mktemp("monitoring-sample")
    generate_sample(out, n_per_class=30, seed=7, with_images=False)
    return out


@pytest.fixture(scope="session")
def small_image_sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("monitoring-image-sample")
    generate_sample(out, n_per_class=8, seed=11, with_images=True, image_size=48)
    return out


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "home")


@pytest.fixture
def params() -> Params:
    return make_params()
