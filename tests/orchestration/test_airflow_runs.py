"""The DAGs end to end under `dag.test()` on SQLite, on a tiny generated text-only sample.

One runner process plays a short story (Airflow's start-up is paid once):

1. `rakuten_training` on the initial pool of a streams folder → version 1, champion, API reloaded;
2. `rakuten_training` again with every step before `register` marked done, as a retried
   `register` would see it → the same version 1 is reused, nothing new is registered;
3. `rakuten_stream`: batch 1 comes from the same source → no drift → the skip branch;
4. `rakuten_stream`: batch 2 has injected drift → the retrain branch registers version 2;
5. `rakuten_stream`: no batch left → the run is skipped;
6. `rakuten_traffic` for one second against a stub API.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.orchestration.airflow_helpers import AirflowSite, StubApi, run_dags, task_states, write_test_params

pytestmark = pytest.mark.slow
STEPS_BEFORE_REGISTER = "ingest|split|embed|train_text|train_image|fuse|evaluate|refit"


@pytest.fixture(scope="module")
def story(
    airflow_site: AirflowSite, stub_api: StubApi, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    from rakuten_mlops.config import load_params
    from rakuten_mlops.simulation.core.sample import generate_sample
    from rakuten_mlops.simulation.replay.steps import make_streams
    from tests.helpers import make_settings

    root = tmp_path_factory.mktemp("story")
    params_path = write_test_params(root / "params.yaml")
    generate_sample(root / "sample", n_per_class=30, seed=3, with_images=False)
    streams = root / "streams"  # found by the stream DAG through the Variable rakuten_streams_dir
    make_streams(root / "sample", streams, 2, "2", make_settings(airflow_site.home), load_params(params_path))
    pool = {"data_dir": str(streams / "pool"), "params_path": str(params_path)}
    stream = {"params_path": str(params_path)}
    runs = [
        {"dag_id": "rakuten_training", "conf": pool},
        {"dag_id": "rakuten_training", "conf": pool, "mark_success": STEPS_BEFORE_REGISTER},
        {"dag_id": "rakuten_stream", "conf": stream},
        {"dag_id": "rakuten_stream", "conf": stream},
        {"dag_id": "rakuten_stream", "conf": stream},
        {"dag_id": "rakuten_traffic", "conf": {"rate": 20, "duration": 1, "concurrency": 2}},
    ]
    env = {
        **airflow_site.env,
        "AIRFLOW_CONN_RAKUTEN_API": stub_api.connection_uri,
        "AIRFLOW_VAR_RAKUTEN_STREAMS_DIR": str(streams),
    }
    out = run_dags(env, {"runs": runs}, root / "runner", timeout_s=420)
    names = ("training", "retried", "same", "drifted", "exhausted", "traffic")
    return {**dict(zip(names, out["runs"], strict=True)), "home": airflow_site.home, "streams": streams}


def test_training_dag_registers_promotes_and_reloads_the_api(
    story: dict[str, Any], stub_api: StubApi
) -> None:
    run = story["training"]
    assert run["state"] == "success", run["tasks"]
    assert task_states(run) == {"success"}
    xcom = run["xcom"]
    assert xcom["ingest"]["data_dir"] == str((story["streams"] / "pool").resolve())
    assert xcom["register"]["version"] == "1" and xcom["register"]["reused"] is False
    assert xcom["promote"]["promote"] is True
    assert xcom["reload_model"]["reloaded"] is True and xcom["reload_model"]["changed"] is True
    assert stub_api.count("/v1/model/reload") >= 1  # with the token obtained from the login route


def test_a_retried_register_reuses_the_version(story: dict[str, Any]) -> None:
    from rakuten_mlops.lifecycle.registry import client
    from tests.helpers import make_settings

    run = story["retried"]
    assert run["state"] == "success", run["tasks"]
    assert run["xcom"]["register"]["version"] == "1"
    assert run["xcom"]["register"]["reused"] is True
    assert "already holds champion" in run["xcom"]["promote"]["reasons"][0]
    settings = make_settings(story["home"])
    versions = client(settings).search_model_versions(f"name='{settings.model_name}'")
    assert sorted(str(v.version) for v in versions) == [
        "1",
        "2",
    ]  # 1 from training (once), 2 from the retrain


def test_a_same_source_batch_takes_the_skip_branch(story: dict[str, Any]) -> None:
    run = story["same"]
    assert run["state"] == "success", run["tasks"]
    assert run["xcom"]["ingest_batch"]["batch"] == "batch_001"
    assert run["xcom"]["drift_report"]["drift_share"] < 0.3
    assert run["xcom"]["decide_retrain"]["retrain"] is False
    assert run["tasks"]["skip_retrain"] == "success"
    assert task_states(run, "retrain.") == {"skipped"}
    record = run["xcom"]["record_decision"]
    assert record["decision"] == "skip" and "retrained" not in record
    assert record["airflow_run_id"] == run["run_id"]


def test_a_drifted_batch_takes_the_retrain_branch(story: dict[str, Any]) -> None:
    run = story["drifted"]
    assert run["state"] == "success", run["tasks"]
    assert run["xcom"]["ingest_batch"]["batch"] == "batch_002"
    assert run["xcom"]["drift_report"]["drift_share"] >= 0.3
    assert run["xcom"]["decide_retrain"]["retrain"] is True
    assert task_states(run, "retrain.") == {"success"}
    assert run["tasks"]["skip_retrain"] == "skipped"
    assert run["xcom"]["retrain.ingest"]["data_dir"] == str((story["streams"] / "pool").resolve())
    record = run["xcom"]["record_decision"]
    assert record["decision"] == "retrain"
    assert record["retrained"]["registered_version"] == "2"
    # the retrain's promote announces a new champion (for rakuten_batch_scoring) only if it promoted
    promoted = run["xcom"]["retrain.promote"]["promote"]
    expected = [{"asset": "rakuten_champion", "task_id": "retrain.promote", "extra": {"version": "2"}}]
    assert run["asset_events"] == (expected if promoted else [])


def test_decisions_are_recorded_once_per_run(story: dict[str, Any]) -> None:
    from rakuten_mlops.infra import read_jsonl
    from rakuten_mlops.pipelines.monitoring_store import MonitoringDir

    records = read_jsonl(MonitoringDir.of_home(story["home"]).decisions_log)
    assert [r["decision"] for r in records] == ["skip", "retrain"]
    assert [r["airflow_run_id"] for r in records] == [story["same"]["run_id"], story["drifted"]["run_id"]]
    drift_dirs = sorted(p.name for p in MonitoringDir.of_home(story["home"]).drift.iterdir() if p.is_dir())
    assert [name.rsplit("-", 1)[1] for name in drift_dirs] == ["batch_001", "batch_002"]  # oldest first
    ledger = json.loads((story["streams"] / "airflow_runs.json").read_text())
    assert {run_id: entry["batch"] for run_id, entry in ledger.items()} == {
        story["same"]["run_id"]: "batch_001",
        story["drifted"]["run_id"]: "batch_002",
    }


def test_a_run_with_no_batch_left_is_skipped(story: dict[str, Any]) -> None:
    run = story["exhausted"]
    assert run["state"] == "success"
    assert run["tasks"]["ingest_batch"] == "skipped"
    assert task_states(run) == {"skipped"}


def test_traffic_dag_sends_predictions_to_the_api(story: dict[str, Any], stub_api: StubApi) -> None:
    run = story["traffic"]
    assert run["state"] == "success", run["tasks"]
    report = run["xcom"]["send_traffic"]
    assert report["ok"] > 0 and report["errors"] == {}
    assert stub_api.count("/v1/predict") == report["requests"]
    assert Path(report["report_path"]).is_file()
