"""The DAG files load without errors and each DAG has the shape the orchestration issue describes."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from tests.orchestration.airflow_helpers import DAG_IDS, DAGS_FOLDER, AirflowSite, run_dags

# ingest → split → (train_text ‖ embed → train_image) → fuse → evaluate → register → promote → reload
TRAINING_UPSTREAM = {
    "ingest": [],
    "split": ["ingest"],
    "train_text": ["split"],
    "embed": ["split"],
    "train_image": ["embed"],
    "fuse": ["train_image", "train_text"],
    "evaluate": ["fuse"],
    "refit": ["evaluate"],
    "register": ["refit"],
    "promote": ["register"],
    "reload_model": ["promote"],
}


@pytest.fixture(scope="module")
def dags(airflow_site: AirflowSite, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = run_dags(airflow_site.env, {"inspect": True}, tmp_path_factory.mktemp("inspect"), timeout_s=120)
    assert out["import_errors"] == {}
    return out["dags"]


def upstream(dag: dict[str, Any], task_id: str) -> list[str]:
    return dag["tasks"][task_id]["upstream"]


def test_dagbag_holds_the_three_dags_without_import_errors(dags: dict[str, Any]) -> None:
    assert sorted(dags) == sorted(DAG_IDS)


def test_every_task_has_retries_and_a_timeout(dags: dict[str, Any]) -> None:
    for dag_id, dag in dags.items():
        for task_id, task in dag["tasks"].items():
            assert task["retries"] >= 1, f"{dag_id}.{task_id} has no retries"
            assert task["timeout_s"] and task["timeout_s"] > 0, f"{dag_id}.{task_id} has no execution_timeout"


def test_training_dag_trains_text_beside_images_then_reloads_the_api(dags: dict[str, Any]) -> None:
    from rakuten_mlops.pipelines.runner import STEPS, TRAIN_PARTS

    # every pipeline step reaches the DAG (`train` as its three parts)
    expected = [s for s in STEPS if s != "train"] + list(TRAIN_PARTS) + ["reload_model"]
    assert sorted(TRAINING_UPSTREAM) == sorted(expected)
    dag = dags["rakuten_training"]
    assert set(dag["tasks"]) == set(TRAINING_UPSTREAM)
    for task_id, before in TRAINING_UPSTREAM.items():
        assert sorted(upstream(dag, task_id)) == before, task_id
    assert dag["schedule"] is None
    assert dag["max_active_runs"] == 1
    assert dag["paused_upon_creation"] is True
    assert {"data_dir", "params_path", "work_dir"} <= set(dag["params"])


def test_steps_that_write_the_work_folder_share_a_one_slot_pool(dags: dict[str, Any]) -> None:
    from rakuten_mlops.orchestration.home import POOL

    for dag_id, prefix in (("rakuten_training", ""), ("rakuten_stream", "retrain.")):
        tasks = dags[dag_id]["tasks"]
        for step in TRAINING_UPSTREAM:
            if step != "reload_model":
                assert tasks[prefix + step]["pool"] == POOL, (dag_id, step)
                assert tasks[prefix + step]["weight_rule"] == "upstream", (dag_id, step)
    assert dags["rakuten_stream"]["tasks"]["drift_report"]["pool"] != POOL


def test_stream_dag_branches_between_retrain_and_skip_then_records(dags: dict[str, Any]) -> None:
    dag = dags["rakuten_stream"]
    assert dag["timetable"] == "CronTriggerTimetable" and dag["cron"] == "0 0 * * *"  # daily at midnight UTC
    assert dag["run_immediately"] is False  # unpausing waits for the next midnight
    assert dag["paused_upon_creation"] is True
    assert dag["catchup"] is False
    assert dag["max_active_runs"] == 1
    assert upstream(dag, "ingest_batch") == []
    assert upstream(dag, "drift_report") == ["ingest_batch"]
    assert upstream(dag, "decide_retrain") == ["drift_report"]
    assert upstream(dag, "retrain_or_skip") == ["decide_retrain"]
    assert dag["tasks"]["retrain_or_skip"]["operator"] == "_BranchPythonDecoratedOperator"
    # the retrain branch is the training chain, prefixed by its task group
    assert upstream(dag, "retrain.ingest") == ["retrain_or_skip"]
    for task_id, before in TRAINING_UPSTREAM.items():
        if before:
            assert sorted(upstream(dag, f"retrain.{task_id}")) == [f"retrain.{b}" for b in before], task_id
    assert "retrain_or_skip" in upstream(dag, "skip_retrain")
    record = dag["tasks"]["record_decision"]
    assert {"retrain.reload_model", "skip_retrain"} <= set(record["upstream"])
    assert record["trigger_rule"] == "none_failed_min_one_success"


def test_traffic_dag_is_manual_with_rate_and_duration(dags: dict[str, Any]) -> None:
    dag = dags["rakuten_traffic"]
    assert dag["schedule"] is None
    assert list(dag["tasks"]) == ["send_traffic"]
    assert {"rate", "duration"} <= set(dag["params"])


@pytest.mark.parametrize("path", sorted(DAGS_FOLDER.glob("rakuten_*.py")), ids=lambda p: p.name)
def test_dag_files_hold_scheduling_only(path: Path) -> None:
    """DAG files import only the Task SDK and the orchestration glue: no ML library, no pipeline step."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    allowed = {"__future__", "typing", "airflow.sdk", "rakuten_mlops.orchestration.taskflow"}
    assert modules <= allowed, f"{path.name} imports {sorted(modules - allowed)}"
    code = tree.body[1:] if ast.get_docstring(tree) else tree.body
    constants = [
        n.value
        for stmt in code
        for n in ast.walk(stmt)
        if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]
    assert not [c for c in constants if c.startswith(("/", "~"))], f"{path.name} holds a hard-coded path"
