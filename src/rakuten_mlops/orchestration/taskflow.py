"""TaskFlow tasks shared by the DAG files (imports the Airflow Task SDK: DAG files import this, nothing else).

Each task is a one-line call into :mod:`rakuten_mlops.orchestration.steps`; every task has
retries and an execution timeout, set here next to what it runs. Retries are for transient
errors only: a configuration or data-contract error (the project's `RakutenError`: a missing
folder, an invalid params.yaml, data with no valid rows) fails the task at once with
`AirflowFailException`, since a retry would meet the same error.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar

import pendulum
from airflow.sdk import Asset, AssetAlias, Param, TaskGroup, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException, AirflowSkipException

from rakuten_mlops.api_client import ApiError
from rakuten_mlops.errors import RakutenError
from rakuten_mlops.orchestration import steps
from rakuten_mlops.orchestration.api import CONNECTION_ID
from rakuten_mlops.orchestration.home import POOL
from rakuten_mlops.orchestration.steps import DataSource

# MLflow writes its INFO lines to stderr through its own handler, which task logs show as
# errors; left unconfigured, its records go through Airflow's logging at their own level
# (its printed messages too: `steps.training_step` routes them to the `mlflow` logger). Its
# download progress bar would also land on stderr.
os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

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
# A new champion, as an Airflow Asset: `promote` adds an event through the alias only when it
# promoted (a task's plain `outlets=[Asset]` would emit on every success, rejections included).
CHAMPION_ASSET = Asset("rakuten_champion")
CHAMPION_ALIAS = AssetAlias("rakuten_champion_promotions")
# Project errors that a retry may cure: the API being down or restarting.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (ApiError,)

P = ParamSpec("P")
R = TypeVar("R")


def fail_fast(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a configuration or data-contract error into `AirflowFailException` (no retries)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except TRANSIENT_ERRORS:
            raise
        except RakutenError as exc:
            raise AirflowFailException(f"{type(exc).__name__}: {exc} (not retried)") from exc

    return wrapper


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
BATCH_SCORING_PARAMS = {
    "engine": Param(
        "local", enum=["local", "spark"], description="local: streamed in the task; spark: Spark executors"
    ),
    "master": Param(
        "local[*]",
        type="string",
        description="Spark master (engine spark): local[*], spark://host:7077, k8s://…",
    ),
    "catalog_path": path_param(
        "listings to score: CSV/Parquet file or folder (default: Variable rakuten_catalog_path)"
    ),
    "images_dir": path_param(
        "folder of image_<imageid>_product_<productid>.jpg (default: Variable, else none)"
    ),
    "scores_dir": path_param(
        "where each run writes its scores folder (default: Variable, then <home>/scores)"
    ),
    "model_uri": path_param("model to score with (default: models:/<model name>@champion)"),
    "chunk_size": Param(10_000, type="integer", minimum=1, maximum=1_000_000, description="rows per chunk"),
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
    """The training steps wired as TRAINING_EDGES: each step's XComArg.

    They run in the one-slot pool :data:`~rakuten_mlops.orchestration.home.POOL`, so a training
    run and a stream retrain never write the work folder at once (text and image embedding then
    take turns instead of running side by side; give the pool more slots only with separate
    work folders).
    """
    chain: dict[str, Any] = {}
    for step in TRAINING_STEPS:

        @task(
            task_id=step,
            execution_timeout=STEP_TIMEOUTS[step],
            doc_md=f"Runs the `{step}` pipeline step.",
            # One slot for every step that writes the work folder, in both DAGs; "upstream"
            # weights let a started run's next step go before another run's first one.
            pool=POOL,
            weight_rule="upstream",
            outlets=[CHAMPION_ALIAS] if step == "promote" else [],
        )
        @fail_fast
        def run(step: str = step) -> dict[str, Any]:
            result = steps.training_step(step, _conf(), source)
            if step == "promote":
                announce_champion(result, get_current_context()["outlet_events"])
            return result

        chain[step] = run()
    for before, after in TRAINING_EDGES:
        chain[before] >> chain[after]
    return chain


def announce_champion(promoted: dict[str, Any], outlet_events: Any) -> bool:
    """Emit :data:`CHAMPION_ASSET` (extra: the version) when `promote` promoted; nothing otherwise."""
    if not promoted.get("promote"):
        return False
    outlet_events[CHAMPION_ALIAS].add(CHAMPION_ASSET, extra={"version": str(promoted.get("version"))})
    return True


@task(execution_timeout=SHORT)
@fail_fast
def reload_model(promoted: dict[str, Any]) -> dict[str, Any]:
    """Ask the prediction API to swap in the new champion, best effort.

    Skipped when nothing was promoted; an API that is down gives a warning and a recorded
    failure (``<home>/monitoring/reloads.jsonl``), never a failed run: the model is already
    registered and promoted, and the API polls the champion alias on its own.
    """
    return steps.reload_model(_api_connection(), promoted, _run_id())


# ----------------------------------------------------------------------------- stream
@task(execution_timeout=timedelta(hours=1))
@fail_fast
def ingest_batch() -> dict[str, Any]:
    """Validate the next batch and add its clean rows to the pool (skips the run when none is left)."""
    result = steps.ingest_batch(_conf(), _run_id())
    if result["status"] != "ingested":
        raise AirflowSkipException(f"no batch left to ingest in {result['streams_dir']}")
    return result


@task(execution_timeout=timedelta(hours=1))
@fail_fast
def drift_report(batch: dict[str, Any]) -> dict[str, Any]:
    return steps.drift_report(_conf(), batch, _run_stamp())


@task(execution_timeout=timedelta(minutes=30))
@fail_fast
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
        reload_model(steps["promote"])
    return group


@task(execution_timeout=timedelta(minutes=30), trigger_rule="none_failed_min_one_success")
@fail_fast
def record_decision(decision: dict[str, Any]) -> dict[str, Any]:
    """Record the decision, with the version the retrain registered and whether it was promoted."""
    registered = promoted = None
    if decision["retrain"]:  # pulled only on this branch: skipped tasks have no XCom
        ti = get_current_context()["ti"]
        registered = ti.xcom_pull(task_ids="retrain.register")
        promoted = ti.xcom_pull(task_ids="retrain.promote")
    return steps.record_decision(_conf(), decision, _run_id(), registered, promoted)


# ----------------------------------------------------------------------------- batch scoring
@task(execution_timeout=timedelta(hours=6))
@fail_fast
def score_catalog() -> dict[str, Any]:
    """Score the catalog with the champion, locally or on Spark, into ``<scores_dir>/<run stamp>``.

    A run the champion Asset triggered scores the version its event names, not whatever holds the
    alias when the task starts (a later promotion, or a rollback, may have moved it since).
    """
    events = get_current_context().get("triggering_asset_events")
    return steps.score_catalog(_conf(), _run_stamp(), event_version=champion_event_version(events))


def champion_event_version(events: Any) -> str | None:
    """The version in the newest `rakuten_champion` event that triggered this run; None when none did."""
    if not events:
        return None
    try:
        found = events[CHAMPION_ASSET]
    except KeyError:
        return None
    versions = [str(e.extra["version"]) for e in found if (e.extra or {}).get("version")]
    return versions[-1] if versions else None


# ----------------------------------------------------------------------------- traffic
@task(execution_timeout=timedelta(minutes=75), retries=1)
@fail_fast
def send_traffic() -> dict[str, Any]:
    """Run the traffic generator against the configured API (one retry: each try sends the whole load)."""
    return steps.send_traffic(_conf(), _api_connection(), _run_id())
