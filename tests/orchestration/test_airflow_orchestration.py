"""The glue between DAG tasks and pipeline steps, without Airflow: config resolution, API calls,
per-run idempotent ingestion, and the local AIRFLOW_HOME set-up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from rakuten_mlops.api_client import ApiError
from rakuten_mlops.orchestration import steps
from rakuten_mlops.orchestration.api import (
    ApiTarget,
    reload_model,
    resolve_target,
    target_from_connection,
)
from rakuten_mlops.orchestration.home import (
    AirflowHome,
    default_parallelism,
    find_dags_folder,
    init_airflow_home,
)
from rakuten_mlops.orchestration.runtime import no_variables, resolve
from rakuten_mlops.pipelines.monitoring_store import MonitoringDir
from tests.helpers import make_settings
from tests.orchestration.airflow_helpers import DAGS_FOLDER, REPO, AirflowSite, write_test_params


# ----------------------------------------------------------------------------- runtime
def test_dag_params_win_over_variables_which_win_over_settings(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    variables = {
        "rakuten_data_dir": str(tmp_path / "from-variable"),
        "rakuten_streams_dir": str(tmp_path / "s"),
    }
    cfg = resolve({"data_dir": str(tmp_path / "from-param")}, variables.get, settings)
    assert cfg.data_dir == tmp_path / "from-param"
    assert cfg.streams_dir == tmp_path / "s"
    assert cfg.work.root == settings.home / "pipeline"
    defaults = resolve({"data_dir": None, "streams_dir": ""}, no_variables, settings)
    assert defaults.data_dir == settings.home / "sample"
    assert defaults.streams_dir == settings.home / "streams"
    assert defaults.pool_dir == settings.home / "streams" / "pool"


def test_params_path_param_is_loaded_and_validated(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    params_path = write_test_params(tmp_path / "params.yaml")
    cfg = resolve({"params_path": str(params_path)}, no_variables, settings)
    assert cfg.params.text.calibration_cv == 2
    assert cfg.params_source == str(params_path)
    (tmp_path / "bad.yaml").write_text("seed: [not, an, int]\n")
    with pytest.raises(ValueError, match="seed"):
        resolve({"params_path": str(tmp_path / "bad.yaml")}, no_variables, settings)


def test_training_step_without_data_says_where_to_put_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAKUTEN_HOME", str(tmp_path / "home"))
    with pytest.raises(FileNotFoundError, match="rakuten_data_dir"):
        steps.training_step("ingest", {}, variable=no_variables)


# ----------------------------------------------------------------------------- API
def connection(**fields: Any) -> SimpleNamespace:
    """What the Task SDK's Connection offers: host, port, schema, conn_type, login, password, extra."""
    base = {"host": None, "port": None, "schema": None, "conn_type": "http", "login": None, "password": None}
    base.update({"extra": None, **fields})
    return SimpleNamespace(**base, extra_dejson=json.loads(base["extra"]) if base["extra"] else {})


@pytest.mark.parametrize(
    ("fields", "url"),
    [
        ({"host": "api.internal", "port": 8000}, "http://api.internal:8000"),
        ({"host": "api.example.com", "conn_type": "https"}, "https://api.example.com"),
        ({"host": "api.example.com", "schema": "https", "port": 443}, "https://api.example.com:443"),
        ({"host": "http://127.0.0.1:8000/"}, "http://127.0.0.1:8000"),
    ],
)
def test_connection_gives_the_api_url(fields: dict[str, Any], url: str) -> None:
    assert target_from_connection(connection(**fields)).url == url


def test_api_target_prefers_the_connection_then_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conn = connection(host="a", port=1, login="admin", password="pw", extra='{"token": "t"}')
    target = resolve_target(conn, make_settings(tmp_path))
    assert (target.url, target.username, target.password, target.token) == ("http://a:1", "admin", "pw", "t")
    assert "pw" not in repr(target)
    assert resolve_target(None, make_settings(tmp_path)) is None
    monkeypatch.setenv("RAKUTEN_API_TOKEN", "env-token")
    target = resolve_target(None, make_settings(tmp_path, api_url="http://b:2/"))
    assert (target.url, target.token) == ("http://b:2", "env-token")


def fake_api(seen: list[httpx.Request], reload_status: int = 200) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/v1/auth/token":
            ok = b"username=admin" in request.content and b"password=pw" in request.content
            return httpx.Response(200, json={"access_token": "fresh"}) if ok else httpx.Response(401, json={})
        if request.headers.get("authorization") not in ("Bearer fresh", "Bearer static"):
            return httpx.Response(401, json={"detail": "no"})
        return httpx.Response(reload_status, json={"changed": True, "version": "3", "message": "loaded"})

    return httpx.MockTransport(handle)


def test_reload_logs_in_then_posts_reload_with_the_fresh_token() -> None:
    seen: list[httpx.Request] = []
    answer = reload_model(ApiTarget("http://api", username="admin", password="pw"), transport=fake_api(seen))
    assert answer == {"url": "http://api", "changed": True, "version": "3", "message": "loaded"}
    assert [r.url.path for r in seen] == ["/v1/auth/token", "/v1/model/reload"]
    assert seen[1].headers["authorization"] == "Bearer fresh"


@pytest.mark.parametrize(
    ("target", "status", "message"),
    [
        (ApiTarget("http://api", username="admin", password="wrong"), 200, r"Logging in failed \(401\)"),
        (ApiTarget("http://api"), 200, "no credentials"),
        (ApiTarget("http://api", token="static"), 403, r"Reloading the API's model failed \(403\)"),
    ],
)
def test_reload_failures_say_why(target: ApiTarget, status: int, message: str) -> None:
    with pytest.raises(ApiError, match=message):
        reload_model(target, transport=fake_api([], reload_status=status))


def test_reload_task_is_a_no_op_without_an_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAKUTEN_HOME", str(tmp_path))
    monkeypatch.delenv("RAKUTEN_API_URL", raising=False)
    assert steps.reload_model(None)["reloaded"] is False


def test_reload_is_skipped_when_nothing_was_promoted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAKUTEN_HOME", str(tmp_path))
    monkeypatch.setenv("RAKUTEN_API_URL", "http://127.0.0.1:9")  # would fail if it were called
    answer = steps.reload_model(None, {"version": "4", "promote": False})
    assert answer == {"reloaded": False, "skipped": True, "reason": "version 4 was not promoted"}
    assert not MonitoringDir.of_home(tmp_path).reloads_log.exists()


def test_an_api_that_is_down_gives_a_warning_and_a_record_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from rakuten_mlops.infra import read_jsonl
    from rakuten_mlops.serving.exporter import MonitoringCollector
    from tests.helpers import free_port

    monkeypatch.setenv("RAKUTEN_HOME", str(tmp_path))
    monkeypatch.setenv("RAKUTEN_API_URL", f"http://127.0.0.1:{free_port()}")  # nobody listens there
    monkeypatch.setenv("RAKUTEN_API_TOKEN", "t")
    with caplog.at_level("WARNING"):
        answer = steps.reload_model(None, {"version": "4", "promote": True}, "run-1")
    assert answer["reloaded"] is False and answer["skipped"] is False
    assert "does not answer" in answer["error"]
    assert "v4 is promoted but the API did not reload it" in caplog.text
    [entry] = read_jsonl(MonitoringDir.of_home(tmp_path).reloads_log)
    assert entry["reloaded"] is False and entry["champion_version"] == "4"
    assert entry["airflow_run_id"] == "run-1" and "does not answer" in entry["error"]
    # ... and the API's /metrics counts it (the alert RakutenPipelineReloadFailed reads it).
    registry = CollectorRegistry(auto_describe=True)
    registry.register(MonitoringCollector(tmp_path))
    assert "rakuten_pipeline_reload_failures_total 1.0" in generate_latest(registry).decode()


def test_mlflow_messages_reach_its_logger_at_info_instead_of_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """MLflow prints "Created version ..." on stderr, which a task log shows as an error."""
    import logging

    from mlflow.utils.logging_utils import eprint

    from rakuten_mlops.orchestration.runtime import mlflow_messages_logged

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("mlflow")
    monkeypatch.setattr(logger, "handlers", [handler])  # as in a task: no handler of MLflow's own
    monkeypatch.setattr(logger, "level", logging.INFO)
    with mlflow_messages_logged():
        eprint("Successfully registered model 'm'.")
        eprint("Created version '2' of model 'm'.", end="")  # no newline yet: logged on leaving
    eprint("printed again")  # the stream is given back
    assert [(r.levelname, r.getMessage()) for r in records] == [
        ("INFO", "Successfully registered model 'm'."),
        ("INFO", "Created version '2' of model 'm'."),
    ]
    assert capsys.readouterr().err == "printed again\n"


# ----------------------------------------------------------------------------- stream ingestion
@pytest.fixture
def streams_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    from rakuten_mlops.config import load_params
    from rakuten_mlops.simulation.core.sample import generate_sample
    from rakuten_mlops.simulation.replay.steps import make_streams

    monkeypatch.setenv("RAKUTEN_HOME", str(tmp_path / "home"))
    params_path = write_test_params(tmp_path / "params.yaml")
    generate_sample(tmp_path / "sample", n_per_class=8, seed=1, with_images=False)
    streams = tmp_path / "streams"
    make_streams(
        tmp_path / "sample", streams, 2, None, make_settings(tmp_path / "home"), load_params(params_path)
    )
    return {"streams_dir": str(streams), "params_path": str(params_path)}


def test_a_retried_ingestion_returns_the_same_batch(streams_conf: dict[str, str]) -> None:
    first = steps.ingest_batch(streams_conf, "run-a", no_variables)
    again = steps.ingest_batch(streams_conf, "run-a", no_variables)
    assert first["batch"] == again["batch"] == "batch_001"
    assert again["replayed"] is True
    assert again["pool_rows"] == first["pool_rows"]  # the pool did not grow twice
    assert steps.ingest_batch(streams_conf, "run-b", no_variables)["batch"] == "batch_002"
    exhausted = steps.ingest_batch(streams_conf, "run-c", no_variables)
    assert exhausted["status"] == "exhausted"
    ledger = json.loads((Path(streams_conf["streams_dir"]) / steps.RUNS_LEDGER).read_text())
    assert sorted(ledger) == ["run-a", "run-b"]


def test_ingestion_without_streams_says_how_to_make_them(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="streams make"):
        steps.ingest_batch({"streams_dir": str(tmp_path / "none")}, "run", no_variables)
    assert not (tmp_path / "none").exists()


# ----------------------------------------------------------------------------- AIRFLOW_HOME
def test_init_writes_config_and_env_under_the_home_folder(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    result = init_airflow_home(settings, DAGS_FOLDER, REPO / "params.yaml", run_migrate=False)
    home = AirflowHome.of(settings)
    assert home.root == (tmp_path / "home" / "airflow").resolve()
    config = home.config_path.read_text()
    assert f"dags_folder = {home.root / 'dags'}" in config
    assert f"sql_alchemy_conn = sqlite:///{home.root / 'airflow.db'}" in config
    assert (
        f"parallelism = {default_parallelism()}" in config and "dags_are_paused_at_creation = True" in config
    )
    for name in (
        "rakuten_training.py",
        "rakuten_stream.py",
        "rakuten_traffic.py",
        "rakuten_batch_scoring.py",
    ):
        assert (home.root / "dags" / name).resolve() == DAGS_FOLDER / name  # links into the package
    env = home.env_path.read_text()
    assert f"export AIRFLOW_HOME={home.root}" in env
    assert f"export RAKUTEN_HOME={(tmp_path / 'home').resolve()}" in env
    assert f"export RAKUTEN_PARAMS_PATH={REPO / 'params.yaml'}" in env
    assert "migrate" not in result and "simple_auth_manager_passwords" in result["admin_password"]
    home.config_path.write_text("[core]\nparallelism = 3\n")
    (home.root / "dags" / "team_dag.py").write_text("# a team's own DAG\n")
    assert "(kept)" in init_airflow_home(settings, DAGS_FOLDER, run_migrate=False)["config"]
    assert home.config_path.read_text() == "[core]\nparallelism = 3\n"
    assert (home.root / "dags" / "team_dag.py").is_file()
    init_airflow_home(settings, DAGS_FOLDER, run_migrate=False, force=True)
    assert "dags_folder" in home.config_path.read_text()


def test_init_migrates_the_metadata_database(airflow_site: AirflowSite) -> None:
    assert airflow_site.init_result["migrate"] == "done"
    assert (airflow_site.airflow_home / "airflow.db").stat().st_size > 100_000
    assert airflow_site.init_result["pool"] == "rakuten_pipeline (1 slot)"


def test_the_dag_files_ship_inside_the_package(tmp_path: Path) -> None:
    import rakuten_mlops

    assert find_dags_folder() == DAGS_FOLDER == Path(rakuten_mlops.__file__).parent / "orchestration" / "dags"
    assert find_dags_folder(tmp_path) == DAGS_FOLDER  # from any working folder
    with pytest.raises(FileNotFoundError, match="rakuten DAG files"):
        init_airflow_home(make_settings(tmp_path / "home"), tmp_path, run_migrate=False)


def test_cli_init_prints_the_next_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rakuten_mlops.config import get_settings
    from rakuten_mlops.orchestration.cli import airflow_app

    monkeypatch.setenv("RAKUTEN_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(airflow_app, ["init", "--no-migrate", "--dags-folder", str(DAGS_FOLDER)])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "airflow standalone" in result.output
    assert (tmp_path / "home" / "airflow" / "env.sh").is_file()


def test_the_core_package_never_imports_airflow() -> None:
    code = (
        "import sys, rakuten_mlops.cli, rakuten_mlops.orchestration.cli, rakuten_mlops.orchestration.steps, "
        "rakuten_mlops.pipelines.runner, rakuten_mlops.pipelines.monitoring; "
        "sys.exit('airflow' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, check=False).returncode == 0


# ----------------------------------------------------------------------------- batch scoring
@pytest.mark.parametrize(
    ("conf", "event_version", "uri"),
    [
        ({}, None, None),  # a scheduled run: whatever holds the champion alias now
        ({}, "7", "models:/rakuten-product-classifier/7"),  # a champion event: exactly its version
        ({"model_uri": "models:/m/2"}, "7", "models:/m/2"),  # the param wins
    ],
)
def test_batch_scoring_scores_the_version_the_champion_event_named(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    conf: dict[str, Any],
    event_version: str | None,
    uri: str | None,
) -> None:
    import rakuten_mlops.pipelines.predict as predict

    monkeypatch.setenv("RAKUTEN_HOME", str(tmp_path / "home"))
    seen: dict[str, Any] = {}

    def fake_predict_file(
        catalog: Any, out: Path, settings: Any, images: Any, model_uri: Any, chunk: int
    ) -> dict:
        seen["model_uri"] = model_uri
        return {"output": str(out)}

    monkeypatch.setattr(predict, "predict_file", fake_predict_file)
    conf = {"catalog_path": str(tmp_path / "catalog.csv"), "engine": "local", **conf}
    steps.score_catalog(conf, "20261204T000000", variable=lambda _: None, event_version=event_version)
    assert seen["model_uri"] == uri


def test_the_champion_event_version_is_the_newest_events() -> None:
    from rakuten_mlops.orchestration.taskflow import CHAMPION_ASSET, champion_event_version

    def event(version: str | None) -> SimpleNamespace:
        return SimpleNamespace(extra={"version": version} if version else {})

    assert champion_event_version(None) is None
    assert champion_event_version({}) is None  # a scheduled run has no triggering events
    assert champion_event_version({CHAMPION_ASSET: [event("3"), event("4")]}) == "4"
    assert champion_event_version({CHAMPION_ASSET: [event(None)]}) is None
