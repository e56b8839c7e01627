"""rakuten_traffic (manual): send listings to the prediction API at `rate` requests/s for `duration` seconds.

The API and its credentials come from the Connection `rakuten_api` (login/password of an admin
or a `token` in its extra), else RAKUTEN_API_URL + RAKUTEN_API_TOKEN. The JSON report is the
task's return value and is written under `<home>/traffic/`.
"""

from __future__ import annotations

from airflow.sdk import dag

from rakuten_mlops.orchestration.taskflow import DEFAULT_ARGS, START_DATE, TRAFFIC_PARAMS, send_traffic


@dag(
    dag_id="rakuten_traffic",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    is_paused_upon_creation=True,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params=TRAFFIC_PARAMS,
    tags=["rakuten", "serving"],
    doc_md=__doc__,
)
def rakuten_traffic() -> None:
    send_traffic()


rakuten_traffic()
