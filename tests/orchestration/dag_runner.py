"""Run in a subprocess by the Airflow tests: `python dag_runner.py SPEC.json OUT.json`.

Airflow reads its configuration once, at import; running it in a child process whose
environment the test sets (AIRFLOW_HOME, database, executor) keeps the pytest process clean.

SPEC: {"inspect": bool, "runs": [{"dag_id", "conf", "mark_success", "use_executor"}]}.
OUT: import errors, each DAG's shape (with "inspect"), then per run: state, task states and tries, XComs
and the asset events its tasks emitted.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import timedelta
from typing import Any


def describe(dag: Any) -> dict[str, Any]:
    tasks = {}
    for task in dag.tasks:
        timeout = task.execution_timeout
        tasks[task.task_id] = {
            "upstream": sorted(task.upstream_task_ids),
            "retries": task.retries,
            "timeout_s": timeout.total_seconds() if isinstance(timeout, timedelta) else None,
            "trigger_rule": str(getattr(task.trigger_rule, "value", task.trigger_rule)),
            "operator": type(task).__name__,
            "pool": task.pool,
            "weight_rule": str(getattr(task.weight_rule, "value", task.weight_rule)),
        }
    return {
        "schedule": str(dag.schedule) if dag.schedule is not None else None,
        "timetable": type(dag.timetable).__name__,
        "cron": getattr(dag.timetable, "expression", None),
        "run_immediately": getattr(dag.timetable, "run_immediately", None),
        "paused_upon_creation": dag.is_paused_upon_creation,
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "params": sorted(dag.params.keys()),
        "tasks": tasks,
    }


def run(dag: Any, spec: dict[str, Any]) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from airflow.settings import Session

    started = time.perf_counter()
    dr = dag.test(
        run_conf=spec.get("conf") or {},
        mark_success_pattern=spec.get("mark_success"),
        use_executor=bool(spec.get("use_executor")),
    )
    seconds = round(time.perf_counter() - started, 2)
    session = Session()
    states = {
        ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances(session=session)
    }
    tries = {ti.task_id: ti.try_number for ti in dr.get_task_instances(session=session)}
    xcoms = {
        x.task_id: XComModel.deserialize_value(x)
        for x in session.scalars(XComModel.get_many(run_id=dr.run_id, dag_ids=dag.dag_id, key="return_value"))
    }
    state = str(getattr(dr.state, "value", dr.state))
    return {"dag_id": dag.dag_id, "run_id": dr.run_id, "state": state, "seconds": seconds, "tasks": states,
            "tries": tries, "xcom": xcoms, "asset_events": asset_events(session, dr.run_id)}  # fmt: skip


def asset_events(session: Any, run_id: str) -> list[dict[str, Any]]:
    """The asset events the run's tasks emitted: asset name, task, extra."""
    from airflow.models.asset import AssetEvent
    from sqlalchemy import select

    events = session.scalars(select(AssetEvent).where(AssetEvent.source_run_id == run_id)).all()
    return [{"asset": e.name, "task_id": e.source_task_id, "extra": e.extra} for e in events]


def main(spec_path: str, out_path: str) -> None:
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag()  # the configured dags_folder
    out: dict[str, Any] = {
        "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
        "runs": [],
    }
    if spec.get("inspect"):
        out["dags"] = {dag_id: describe(dag) for dag_id, dag in bag.dags.items()}
    for one in spec.get("runs", []):
        out["runs"].append(run(bag.get_dag(one["dag_id"]), one))
        with open(out_path, "w", encoding="utf-8") as handle:  # partial results survive a later crash
            json.dump(out, handle, indent=2, default=str)
    with open(out_path, "w", encoding="utf-8") as handle:
        json.dump(out, handle, indent=2, default=str)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
