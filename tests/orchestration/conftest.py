"""Fixtures for the Airflow tests: a migrated AIRFLOW_HOME made by `airflow init`, a stub prediction API."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.orchestration.airflow_helpers import (
    DAGS_FOLDER,
    REPO,
    AirflowSite,
    StubApi,
    StubServer,
    clean_environ,
)


@pytest.fixture(scope="session")
def airflow_site(tmp_path_factory: pytest.TempPathFactory) -> AirflowSite:
    """`rakuten-mlops airflow init` on a temporary home: airflow.cfg + env.sh + `airflow db migrate`."""
    from rakuten_mlops.orchestration.home import init_airflow_home
    from tests.helpers import make_settings

    home = tmp_path_factory.mktemp("airflow-site") / "home"
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("AIRFLOW")]:
            patch.delenv(key)
        result = init_airflow_home(make_settings(home), DAGS_FOLDER, REPO / "params.yaml")
    airflow_home = Path(result["airflow_home"])
    # Only AIRFLOW_HOME: dags_folder and the database come from the airflow.cfg that init wrote.
    env = clean_environ(AIRFLOW_HOME=str(airflow_home), RAKUTEN_HOME=str(home))
    return AirflowSite(home, airflow_home, result, env)


@pytest.fixture(scope="module")
def stub_api() -> Iterator[StubApi]:
    with StubServer() as stub:
        yield stub
