"""rakuten_batch_scoring under `dag.test()`, and the champion Asset that schedules it.

One runner process: `rakuten_training` promotes version 1 (the Asset `rakuten_champion` is
emitted, with the version); the same data trained again in another work folder is not promoted
(no event); `rakuten_batch_scoring` scores a catalog with the local engine; without a catalog it
fails at once, not retried.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rakuten_mlops.data.schema import X_TEST
from tests.orchestration.airflow_helpers import AirflowSite, run_dags, write_test_params

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dags(airflow_site: AirflowSite, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = run_dags(airflow_site.env, {"inspect": True}, tmp_path_factory.mktemp("inspect"), timeout_s=120)
    assert out["import_errors"] == {}
    return out["dags"]


def test_the_dag_runs_on_a_new_champion_or_weekly(dags: dict[str, Any]) -> None:
    dag = dags["rakuten_batch_scoring"]
    assert dag["timetable"] == "AssetOrTimeSchedule"
    assert "rakuten_champion" in dag["schedule"]
    assert dag["paused_upon_creation"] is True and dag["catchup"] is False and dag["max_active_runs"] == 1
    assert list(dag["tasks"]) == ["score_catalog"]
    assert {"engine", "master", "catalog_path", "images_dir", "scores_dir", "model_uri"} <= set(dag["params"])


@pytest.fixture(scope="module")
def story(airflow_site: AirflowSite, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from rakuten_mlops.simulation.core.sample import generate_sample

    root = tmp_path_factory.mktemp("batch-story")
    params_path = str(write_test_params(root / "params.yaml"))
    sample = root / "sample"
    generate_sample(sample, n_per_class=14, seed=3, with_images=False)
    train = {"data_dir": str(sample), "params_path": params_path}
    score = {"engine": "local", "catalog_path": str(sample / X_TEST), "scores_dir": str(root / "scores")}
    runs = [
        {"dag_id": "rakuten_training", "conf": {**train, "work_dir": str(root / "work-a")}},
        {"dag_id": "rakuten_training", "conf": {**train, "work_dir": str(root / "work-b")}},
        # before the run with a catalog: dag.test() in one process keeps a run's params for the next
        {"dag_id": "rakuten_batch_scoring", "conf": {"engine": "local"}},
        {"dag_id": "rakuten_batch_scoring", "conf": score},
    ]
    # A home of its own: the Airflow site's home is shared with the other DAG stories, whose
    # registry must start empty (their first version is 1).
    env = {**airflow_site.env, "RAKUTEN_HOME": str(root / "home")}
    out = run_dags(env, {"runs": runs}, root / "runner", timeout_s=480)
    names = ("promoted", "rejected", "no_catalog", "scored")
    return {**dict(zip(names, out["runs"], strict=True)), "root": root, "sample": sample}


def test_the_champion_asset_is_emitted_only_when_promote_promoted(story: dict[str, Any]) -> None:
    promoted, rejected = story["promoted"], story["rejected"]
    assert promoted["state"] == "success" and promoted["xcom"]["promote"]["promote"] is True
    assert promoted["asset_events"] == [
        {"asset": "rakuten_champion", "task_id": "promote", "extra": {"version": "1"}}
    ]
    assert rejected["state"] == "success", rejected["tasks"]
    assert rejected["xcom"]["promote"]["promote"] is False  # same inputs as the champion
    assert rejected["asset_events"] == []


def test_batch_scoring_runs_the_local_engine_end_to_end(story: dict[str, Any]) -> None:
    run = story["scored"]
    assert run["state"] == "success", run["tasks"]
    result = run["xcom"]["score_catalog"]
    assert result["engine"] == "local" and result["model_version"] == "1"
    out = Path(result["output"])
    assert out.parent == story["root"] / "scores" and result["format"] == "parts"
    catalog = pd.read_csv(story["sample"] / X_TEST, index_col=0)
    scores = pd.read_parquet(out)
    assert result["predicted"] == len(scores) == len(catalog)
    assert scores.index.tolist() == catalog.index.tolist()
    assert set(scores["model_version"]) == {"1"}


def test_batch_scoring_without_a_catalog_fails_at_once(story: dict[str, Any]) -> None:
    run = story["no_catalog"]
    assert run["state"] == "failed"
    assert run["tasks"] == {"score_catalog": "failed"}
    assert run["tries"]["score_catalog"] == 1  # a configuration error is not retried
