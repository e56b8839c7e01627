"""rakuten_stream (daily): ingest the next batch → drift report → retrain decision → retrain or skip → record.

The batch comes from the streams folder (param `streams_dir`, else the Variable
`rakuten_streams_dir`, else `<home>/streams`; cut it with `rakuten-mlops streams make`). The
retrain branch runs the training steps on the enlarged pool, then asks the API to reload; the
promotion gate still decides whether the new model becomes champion. A run with no batch left
is skipped.

Created paused; once unpaused it first runs at the next midnight UTC (no run for the day
already begun): trigger it by hand to ingest a batch now.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import CronTriggerTimetable, dag

from rakuten_mlops.orchestration.taskflow import (
    DEFAULT_ARGS,
    START_DATE,
    STREAM_PARAMS,
    decide_retrain,
    drift_report,
    ingest_batch,
    record_decision,
    retrain_group,
    retrain_or_skip,
    skip_retrain,
)


@dag(
    dag_id="rakuten_stream",
    schedule=CronTriggerTimetable("@daily", timezone="UTC", run_immediately=False),
    start_date=START_DATE,
    catchup=False,
    is_paused_upon_creation=True,
    max_active_runs=1,  # batches are ingested in order, one at a time
    default_args=DEFAULT_ARGS,
    params=STREAM_PARAMS,
    tags=["rakuten", "monitoring"],
    doc_md=__doc__,
)
def rakuten_stream() -> None:
    # TaskFlow passes XComArgs where the task functions declare the values they resolve to.
    batch: Any = ingest_batch()
    drift: Any = drift_report(batch)
    decision: Any = decide_retrain(drift)
    retrain, skipped = retrain_group(), skip_retrain(decision)
    retrain_or_skip(decision) >> [retrain, skipped]
    [retrain, skipped] >> record_decision(decision)


rakuten_stream()
