"""Fail fast, finish what is done: under `dag.test()`, a configuration error fails the task on
its first try, and an API that is down never fails a training run that registered and promoted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import free_port
from tests.orchestration.airflow_helpers import AirflowSite, run_dags, write_test_params

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(airflow_site: AirflowSite, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from rakuten_mlops.simulation.core.sample import generate_sample

    root = tmp_path_factory.mktemp("fail-fast")
    home = root / "home"  # its own registry: version numbers do not depend on other tests
    params_path = str(write_test_params(root / "params.yaml"))
    generate_sample(root / "sample", n_per_class=20, seed=4, with_images=False)
    env = {
        **airflow_site.env,
        "RAKUTEN_HOME": str(home),
        # An API nobody listens on, with credentials: the reload must try, fail, and say so.
        "AIRFLOW_CONN_RAKUTEN_API": f"http://admin:secret@127.0.0.1:{free_port()}",
    }
    spec = {
        "runs": [
            {
                "dag_id": "rakuten_training",
                "conf": {"data_dir": str(root / "no-such-folder"), "params_path": params_path},
            },
            {
                "dag_id": "rakuten_training",
                "conf": {"data_dir": str(root / "sample"), "params_path": params_path},
            },
        ]
    }
    out = run_dags(env, spec, root / "runner", timeout_s=420)
    wrong, api_down = out["runs"]
    return {"wrong_data_dir": wrong, "api_down": api_down, "home": home}


def test_a_wrong_data_dir_fails_the_task_on_its_first_try(runs: dict[str, Any]) -> None:
    run = runs["wrong_data_dir"]
    assert run["state"] == "failed"
    assert run["tasks"]["ingest"] == "failed"  # not up_for_retry: a retry would meet the same error
    assert run["tries"]["ingest"] == 1
    assert run["tasks"]["split"] == "upstream_failed"


def test_with_the_api_down_the_training_run_succeeds_and_records_the_failed_reload(
    runs: dict[str, Any],
) -> None:
    from rakuten_mlops.infra import read_jsonl
    from rakuten_mlops.pipelines.monitoring_store import MonitoringDir

    run = runs["api_down"]
    assert run["state"] == "success", run["tasks"]
    assert run["xcom"]["promote"]["promote"] is True
    reload = run["xcom"]["reload_model"]
    assert reload["reloaded"] is False and reload["skipped"] is False
    assert "does not answer" in reload["error"]
    [record] = read_jsonl(MonitoringDir.of_home(Path(runs["home"])).reloads_log)
    assert record["reloaded"] is False and record["champion_version"] == run["xcom"]["register"]["version"]
    assert record["airflow_run_id"] == run["run_id"]
