"""rakuten_batch_scoring: re-score the whole catalog with the champion.

Runs when a new champion is promoted (the Asset `rakuten_champion`, emitted by the `promote` task
of `rakuten_training` or of the stream's retrain only when it promoted) and every Sunday at 03:00
UTC. Params: `engine` (local: streamed in the task; spark: `mlflow.pyfunc.spark_udf` on `master`),
`catalog_path` (else the Variable `rakuten_catalog_path`), `images_dir`, `scores_dir` (else
`<home>/scores`), `model_uri` (else the version the champion event named, else the alias now).
Each run writes `<scores_dir>/<run stamp>` (Parquet).
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag

from rakuten_mlops.orchestration.taskflow import (
    BATCH_SCORING_PARAMS,
    CHAMPION_ASSET,
    DEFAULT_ARGS,
    START_DATE,
    score_catalog,
)


@dag(
    dag_id="rakuten_batch_scoring",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 3 * * 0", timezone="UTC", run_immediately=False),
        assets=CHAMPION_ASSET,
    ),
    start_date=START_DATE,
    catchup=False,
    is_paused_upon_creation=True,
    max_active_runs=1,  # two scorings of the same catalog would only compete for the cores
    default_args=DEFAULT_ARGS,
    params=BATCH_SCORING_PARAMS,
    tags=["rakuten", "batch"],
    doc_md=__doc__,
)
def rakuten_batch_scoring() -> None:
    score_catalog()


rakuten_batch_scoring()
