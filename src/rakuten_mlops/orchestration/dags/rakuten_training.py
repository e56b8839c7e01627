"""rakuten_training: ingest → split → embed → train → evaluate → refit → register → promote → reload.

Every task runs one step of `rakuten_mlops.pipelines` on the data folder (param `data_dir`,
else the Variable `rakuten_data_dir`, else `<home>/sample`). Manual: trigger it from the UI or
with `airflow dags trigger rakuten_training --conf '{"data_dir": "/abs/path"}'`.
"""

from __future__ import annotations

from airflow.sdk import dag

from rakuten_mlops.orchestration.taskflow import (
    DEFAULT_ARGS,
    START_DATE,
    TRAINING_PARAMS,
    reload_model,
    training_chain,
)


@dag(
    dag_id="rakuten_training",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    is_paused_upon_creation=True,
    max_active_runs=1,  # runs share the work folder
    default_args=DEFAULT_ARGS,
    params=TRAINING_PARAMS,
    tags=["rakuten", "training"],
    doc_md=__doc__,
)
def rakuten_training() -> None:
    steps = training_chain("data_dir")
    reload_model(steps["promote"])


rakuten_training()
