"""TaskFlow tasks shared by the DAG files (imports the Airflow Task SDK: DAG files import this, nothing else).

Each task is a one-line call into :mod:`rakuten_mlops.orchestration.steps`; every task has
retries and an execution timeout, set here next to what it runs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Param, TaskGroup, get_current_context, task
from airflow.sdk.exceptions import AirflowNotFoundException, AirflowSkipException

from rakuten_mlops.orchestration import steps
from rakuten_mlops.orchestration.api import CONNECTION_ID
from rakuten_mlops.orchestration.steps import DataSource

START_DATE = pendulum.datetime(2024, 1, 1, tz="UTC")
DEFAULT_ARGS: dict[str, Any] = {
    "owner": "rakuten-mlops",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=15),
    "execution_timeout": timedelta(hours=1),
}
# The pipeline's `train` step split in three so that the text model trains while images embed:
# ingest → split → (train_text ‖ embed → train_image) → fuse → evaluate → refit → register → promote.
TRAINING_STEPS = (
    "ingest", "split", "train_text", "embed", "train_image", "fuse", "evaluate", "refit", "register",
    "promote",
)  # fmt: skip
TRAINING_EDGES = (
    ("ingest", "split"),
    ("split", "train_text"),
    ("split", "embed"),
    ("embed", "train_image"),
    ("train_text", "fuse"),
    ("train_image", "fuse"),
    ("fuse", "evaluate"),
    ("evaluate", "refit"),
    ("refit", "register"),
    ("register", "promote"),
)
# Sized for the full challenge data on 2 CPU cores (85k images take about an hour to embed, once).
STEP_TIMEOUTS = {
    "ingest": timedelta(hours=1),
    "split": timedelta(minutes=30),
    "embed": timedelta(hours=4),
    "train_text": timedelta(hours=2),
    "train_image": timedelta(hours=1),
    "fuse": timedelta(hours=1),
    "evaluate": timedelta(hours=1),
    "refit": timedelta(hours=2),
    "register": timedelta(minutes=30),
    "promote": timedelta(hours=1),
}
SHORT = timedelta(minutes=10)


def path_param(description: str) -> Param:
    return Param(None, type=["null", "string"], description=description)


def params_path_param() -> Param:
    return path_param("params.yaml to use (default: Variable rakuten_params_path, then RAKUTEN_PARAMS_PATH)")


TRAINING_PARAMS = {
    "data_dir": path_param(
        "challenge-layout data folder (default: Variable rakuten_data_dir, then <home>/sample)"
    ),
    "work_dir": path_param("pipeline work folder (default: Variable rakuten_work_dir, then <home>/pipeline)"),
    "params_path": params_path_param(),
}
STREAM_PARAMS = {
    "streams_dir": path_param("streams folder (default: Variable rakuten_streams_dir, then <home>/streams)"),
    "params_path": params_path_param(),
}
TRAFFIC_PARAMS = {
    "rate": Param(
        5.0, type="number", minimum=0, maximum=10_000, description="requests per second (0: flat out)"
    ),
    "duration": Param(60.0, type="number", minimum=1, maximum=3600, description="seconds to send for"),
    "concurrency": Param(4, type="integer", minimum=1, maximum=256, description="requests in flight"),
    "batch_size": Param(1, type="integer", minimum=1, maximum=64, description="listings per request"),
    "data_dir": path_param("folder whose listings are sent (default: generated listings)"),
}


def _conf() -> dict[str, Any]:
    return dict(get_current_context()["params"])


def _run_id() -> str:
    return str(get_current_context()["run_id"])


def _run_stamp() -> str:
    """When the DAG run was due (UTC, to the second): the same for every try of its tasks."""
    return get_current_context()["dag_run"].run_after.strftime("%Y%m%dT%H%M%S")


def _api_connection() -> Any | None:
    from airflow.sdk import Connection

    try:
        return Connection.get(CONNECTION_ID)
    except AirflowNotFoundException:
        return None


# ----------------------------------------------------------------------------- training
def training_chain(source: DataSource) -> dict[str, Any]:
    """The training steps wired as TRAINING_EDGES (text beside image embedding): each step's XComArg."""
    chain: dict[str, Any] = {}
    for step in TRAINING_STEPS:

        @task(task_id=step, execution_timeout=STEP_TIMEOUTS[step], doc_md=f"Runs the `{step}` pipeline step.")
        def run(step: str = step) -> dict[str, Any]:
            return steps.training_step(step, _conf(), source)

        chain[step] = run()
    for before, after in TRAINING_EDGES:
        chain[before] >> chain[after]
    return chain


@task(execution_timeout=SHORT)
def reload_model() -> dict[str, Any]:
    """Ask the prediction API to swap in the champion (a no-op that says so when none is configured)."""
    return steps.reload_model(_api_connection())


# ----------------------------------------------------------------------------- stream
@task(execution_timeout=timedelta(hours=1))
def ingest_batch() -> dict[str, Any]:
    """Validate the next batch and add its clean rows to the pool (skips the run when none is left)."""
    result = steps.ingest_batch(_conf(), _run_id())
    if result["status"] != "ingested":
        raise AirflowSkipException(f"no batch left to ingest in {result['streams_dir']}")
    return result


@task(execution_timeout=timedelta(hours=1))
def drift_report(batch: dict[str, Any]) -> dict[str, Any]:
    return steps.drift_report(_conf(), batch, _run_stamp())


@task(execution_timeout=timedelta(minutes=30))
def decide_retrain(drift: dict[str, Any]) -> dict[str, Any]:
    return steps.decide_retrain(_conf(), drift)


@task.branch(execution_timeout=SHORT)
def retrain_or_skip(decision: dict[str, Any]) -> str:
    return "retrain.ingest" if decision["retrain"] else "skip_retrain"


@task(execution_timeout=SHORT)
def skip_retrain(decision: dict[str, Any]) -> list[str]:
    return list(decision["reasons"])


def retrain_group() -> TaskGroup:
    """The training steps on the streams pool, then an API reload (task ids ``retrain.<step>``)."""
    with TaskGroup("retrain", tooltip="the training pipeline on the enlarged pool") as group:
        steps = training_chain("streams_pool")
        steps["promote"] >> reload_model()
    return group


@task(execution_timeout=timedelta(minutes=30), trigger_rule="none_failed_min_one_success")
def record_decision(decision: dict[str, Any]) -> dict[str, Any]:
    """Record the decision, with the version the retrain registered and whether it was promoted."""
    registered = promoted = None
    if decision["retrain"]:  # pulled only on this branch: skipped tasks have no XCom
        ti = get_current_context()["ti"]
        registered = ti.xcom_pull(task_ids="retrain.register")
        promoted = ti.xcom_pull(task_ids="retrain.promote")
    return steps.record_decision(_conf(), decision, _run_id(), registered, promoted)


# ----------------------------------------------------------------------------- traffic
@task(execution_timeout=timedelta(minutes=75), retries=1)
def send_traffic() -> dict[str, Any]:
    """Run the traffic generator against the configured API (one retry: each try sends the whole load)."""
    return steps.send_traffic(_conf(), _api_connection(), _run_id())
