"""Fixtures for the API tests: one tiny real champion per session, apps built on it, real tokens."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rakuten_mlops.appdb import create_schema, make_engine, session_factory, session_scope
from rakuten_mlops.config import Params, Settings
from rakuten_mlops.serving.app import create_app
from rakuten_mlops.serving.users import create_user, set_disabled
from tests.helpers import port_open
from tests.services import require

PASSWORD = "correct-horse-battery-staple"
JWT_SECRET = "test-secret-" + secrets.token_hex(16)
PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class Champion:
    tracking_uri: str
    model_name: str
    version: str
    run_id: str
    data_dir: Path


@pytest.fixture(scope="session")
def champion(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Champion]:
    """A tiny real model: the training pipeline on a small text-only sample (about 15 s)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from rakuten_mlops.pipelines.runner import run_pipeline
    from rakuten_mlops.simulation.core.sample import generate_sample

    home = tmp_path_factory.mktemp("registry")
    data_dir = home / "data"
    generate_sample(data_dir, n_per_class=12, seed=7, with_images=False)
    settings = Settings(_env_file=None, home=home, mlflow_tracking_uri=None, mlflow_registry_uri=None)
    params = Params.model_validate(
        {
            "image": {"enabled": False},
            "fusion": {"enabled": False},
            "text": {"calibration_cv": 2},
            "promotion": {"min_f1": 0.0},
        }
    )
    with pytest.MonkeyPatch.context() as cwd:
        cwd.chdir(home)  # MLflow may write a ./mlruns (Default experiment): keep it out of the checkout
        summary = run_pipeline(data_dir, settings=settings, params=params)
    assert summary["promote"]["promote"], summary["promote"]
    yield Champion(
        settings.tracking_uri, settings.model_name, str(summary["register"]["version"]),
        str(summary["register"]["run_id"]), data_dir,
    )  # fmt: skip
    patch.undo()


@pytest.fixture(scope="session")
def make_settings(champion: Champion, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Settings]:
    """Settings for a fresh app home, pointed at the session champion; keyword overrides win."""

    def make(**overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "env": "development",
            "home": tmp_path_factory.mktemp("home"),
            "mlflow_tracking_uri": champion.tracking_uri,
            "mlflow_registry_uri": champion.tracking_uri,
            "model_name": champion.model_name,
            "database_url": None,
            "jwt_secret": JWT_SECRET,
            "model_poll_seconds": 0,
            "auth_cache_seconds": 0,
            "prediction_log_flush_seconds": 0.05,
            "registry_timeout_seconds": 30,
            "max_batch_size": 8,
            "max_image_bytes": 200_000,
            "max_image_pixels": 1_000_000,
            "max_request_bytes": 1_000_000,
            "login_max_failures": 3,
        }
        base.update(overrides)
        return Settings(_env_file=None, **base)

    return make


def add_user(settings: Settings, name: str, role: str = "predictor", disabled: bool = False) -> None:
    """Create a user directly in the app database of `settings`."""
    engine = make_engine(settings.app_database_url)
    create_schema(engine)
    with session_scope(session_factory(engine)) as session:
        create_user(session, name, PASSWORD, role)
        if disabled:
            set_disabled(session, name)
    engine.dispose()


def login(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """A real token from the login route."""
    response = client.post("/v1/auth/token", data={"username": name, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Api:
    """A running app with its client, settings and tokens."""

    client: TestClient
    app: FastAPI
    settings: Settings
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str = "alice") -> dict[str, str]:
        return bearer(self.tokens[who])


@pytest.fixture(scope="session")
def api(make_settings: Callable[..., Settings]) -> Iterator[Api]:
    """The shared app: users alice (predictor), root (admin), mallory (disabled after login)."""
    settings = make_settings()
    add_user(settings, "alice")
    add_user(settings, "root", "admin")
    add_user(settings, "mallory")
    app = create_app(settings)
    with TestClient(app) as client:
        api = Api(client, app, settings, {n: login(client, n) for n in ("alice", "root", "mallory")})
        with session_scope(app.state.serving.sessions) as session:
            set_disabled(session, "mallory")
        yield api


@pytest.fixture()
def copy_models() -> Callable[[Settings, Settings], None]:
    """Copy the local champion copies of one app home into another."""

    def copy(src: Settings, dst: Settings) -> None:
        shutil.copytree(src.serving_dir / "models", dst.serving_dir / "models", dirs_exist_ok=True)

    return copy


def postgres_available() -> bool:
    if not port_open("127.0.0.1", 5432):
        return False
    try:
        import psycopg2

        psycopg2.connect(
            host="127.0.0.1", port=5432, user="postgres", dbname="test", connect_timeout=2
        ).close()
    except Exception:
        return False
    return True


@pytest.fixture()
def pg_schema() -> Iterator[str]:
    """A throwaway schema in the real PostgreSQL at 127.0.0.1:5432 (skipped when it does not answer)."""
    require(
        postgres_available(), "PostgreSQL is not reachable at 127.0.0.1:5432 (user postgres, database test)"
    )
    import psycopg2

    schema = f"rk_api_{secrets.token_hex(4)}"
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test")
    conn.autocommit = True
    conn.cursor().execute(f"CREATE SCHEMA {schema}")
    yield schema
    conn.cursor().execute(f"DROP SCHEMA {schema} CASCADE")
    conn.close()


def pg_url(schema: str, port: int = 5432) -> str:
    return f"postgresql+psycopg2://postgres@127.0.0.1:{port}/test?options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def kit() -> SimpleNamespace:
    """The helpers above, for test modules (they cannot import conftest reliably)."""
    return SimpleNamespace(
        PASSWORD=PASSWORD, JWT_SECRET=JWT_SECRET, add_user=add_user, login=login, bearer=bearer, pg_url=pg_url
    )
