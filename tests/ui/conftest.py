"""A real test API for the UI: a tiny trained champion, users, and uvicorn on a free port in a thread.

The UI reaches the API through RAKUTEN_API_URL only, as in production: its own RAKUTEN_HOME is an
empty folder, so every model, monitoring and data summary it shows came through the API (which
reads the registry, the pipeline splits, the monitoring files and the app database).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from rakuten_mlops.config import Settings, get_settings
from tests.helpers import free_port
from tests.ui.helpers import APP_PATH, PASSWORD, log_in

ENV_VARS = (
    "RAKUTEN_HOME", "RAKUTEN_API_URL", "RAKUTEN_MLFLOW_TRACKING_URI", "RAKUTEN_MLFLOW_REGISTRY_URI",
    "RAKUTEN_DATABASE_URL", "RAKUTEN_PARAMS_PATH", "RAKUTEN_MODEL_NAME", "RAKUTEN_MAX_BATCH_SIZE",
    "RAKUTEN_MAX_IMAGE_BYTES",
)  # fmt: skip


# Everything in the home folder, whatever the developer's environment says.
LOCAL: dict[str, Any] = {
    "mlflow_tracking_uri": None, "mlflow_registry_uri": None, "database_url": None,
    "model_name": "rakuten-product-classifier", "env": "development",
}  # fmt: skip


@dataclass
class Stack:
    """The running test API and the home folder it shares with the UI."""

    home: Path
    data_dir: Path
    settings: Settings
    url: str
    version: str

    def token(self, user: str = "alice") -> str:
        r = httpx.post(f"{self.url}/v1/auth/token", data={"username": user, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    def call(self, method: str, path: str, user: str = "alice", **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(user)}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def ui_env(self, ui_home: Path, url: str | None = None) -> dict[str, str]:
        """What the UI process needs to see this stack: the API's address (its home is not the API's)."""
        return {
            "RAKUTEN_HOME": str(ui_home),
            "RAKUTEN_API_URL": url or self.url,
            "RAKUTEN_MAX_BATCH_SIZE": str(self.settings.max_batch_size),
            "RAKUTEN_MAX_IMAGE_BYTES": str(self.settings.max_image_bytes),
        }


def _train(home: Path, data_dir: Path) -> str:
    from rakuten_mlops.pipelines.runner import run_pipeline
    from rakuten_mlops.simulation.core.sample import generate_sample
    from tests.helpers import fast_params, make_settings

    generate_sample(data_dir, n_per_class=8, seed=11, with_images=True, image_size=48)
    params = fast_params(image={"enabled": False}, fusion={"enabled": False}, promotion={"min_f1": 0.0})
    cwd = os.getcwd()
    os.chdir(home)  # MLflow may write a ./mlruns for its default experiment: keep it out of the checkout
    try:
        summary = run_pipeline(data_dir, settings=make_settings(home, **LOCAL), params=params)
    finally:
        os.chdir(cwd)
    assert summary["promote"]["promote"], summary["promote"]
    return str(summary["register"]["version"])


def _add_users(settings: Settings) -> None:
    from rakuten_mlops.appdb import create_schema, make_engine, session_factory, session_scope
    from rakuten_mlops.serving.users import create_user

    engine = make_engine(settings.app_database_url)
    create_schema(engine)
    with session_scope(session_factory(engine)) as session:
        create_user(session, "alice", PASSWORD, "predictor")
        create_user(session, "root", PASSWORD, "admin")
    engine.dispose()


def _api_settings(home: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        home=home,
        **LOCAL,
        jwt_secret="ui-test-secret-" + secrets.token_hex(16),
        model_poll_seconds=0,
        auth_cache_seconds=0,
        prediction_log_flush_seconds=0.05,
        max_batch_size=8,
        max_image_bytes=200_000,
        login_max_failures=100,
    )


@contextmanager
def _serve(settings: Settings, ready_path: str = "/readyz") -> Iterator[str]:
    """The API of `settings` (users added) served by uvicorn in a thread; yields its URL."""
    import uvicorn

    from rakuten_mlops.serving.app import create_app

    _add_users(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="test-api", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}{ready_path}", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("the test API did not become ready in 60 s")
        time.sleep(0.2)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Train a tiny text-only champion (about 15 s), then serve it with uvicorn in a thread."""
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    home = tmp_path_factory.mktemp("ui-home")
    data_dir = tmp_path_factory.mktemp("ui-data")
    version = _train(home, data_dir)
    settings = _api_settings(home)
    with _serve(settings) as url:
        yield Stack(home, data_dir, settings, url, version)
    patch.undo()


@pytest.fixture(scope="session")
def empty_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """An API on a home folder holding nothing yet: no registry, no monitoring, no pipeline run."""
    home = tmp_path_factory.mktemp("empty-home")
    settings = _api_settings(home)
    with _serve(settings, ready_path="/healthz") as url:
        yield Stack(home, home / "data", settings, url, "")


@pytest.fixture
def ui_env(stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[..., None]]:
    """Point the in-process UI (AppTest) at the stack's API, or at another API URL."""
    ui_home = tmp_path / "ui-home"  # never created: the UI has no files of its own

    def apply(url: str | None = None) -> None:
        for var in ENV_VARS:
            monkeypatch.delenv(var, raising=False)
        for key, value in stack.ui_env(ui_home, url).items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()

    apply()
    yield apply
    get_settings.cache_clear()
    assert not ui_home.exists(), "the UI wrote into its home folder: it must need none"


@pytest.fixture
def make_app(ui_env: Callable[..., None]) -> Callable[..., Any]:
    """An AppTest of the whole app, optionally logged in and on a page."""
    from streamlit.testing.v1 import AppTest

    def make(user: str | None = "alice", page: str | None = None, password: str = PASSWORD) -> AppTest:
        at = AppTest.from_file(str(APP_PATH), default_timeout=60).run()
        assert not at.exception, at.exception
        if user is not None:
            log_in(at, user, password)
            assert not at.error, [e.value for e in at.error]
        if page is not None:
            at.switch_page(page).run()
            assert not at.exception, at.exception
        return at

    return make
