"""The Airflow quick start of docs/airflow.md and the README, checked for the steps a new user
would otherwise miss (the commands themselves run in the other Airflow tests: `airflow init`
in the session fixture, triggered runs under `dag.test()`)."""

from __future__ import annotations

import re

import pytest

from tests.orchestration.airflow_helpers import DAG_IDS, REPO


def commands(markdown: str, heading: str) -> list[str]:
    section = markdown.split(heading, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        joined = block.replace("\\\n", " ")
        lines += [line.split("  #", 1)[0].strip() for line in joined.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


QUICK_STARTS = {
    "docs/airflow.md": "### Quick start (one machine)",
    "README.md": "## Orchestration (Airflow 3)",
}


@pytest.mark.parametrize("doc", sorted(QUICK_STARTS))
def test_the_quick_start_puts_the_venv_on_path_and_unpauses_before_triggering(doc: str) -> None:
    lines = commands((REPO / doc).read_text(encoding="utf-8"), QUICK_STARTS[doc])
    text = "\n".join(lines)
    assert lines[0].startswith("export PATH=$PWD/.venv/bin:"), lines[0]
    order = [
        next(i for i, line in enumerate(lines) if needle in line)
        for needle in ("rakuten-mlops airflow init", "source .rakuten/airflow/env.sh", "airflow standalone")
    ]
    assert order == sorted(order)
    for dag_id in DAG_IDS:
        triggers = [i for i, line in enumerate(lines) if f"airflow dags trigger {dag_id}" in line]
        unpauses = [i for i, line in enumerate(lines) if f"airflow dags unpause {dag_id}" in line]
        if triggers:
            assert unpauses and min(unpauses) <= min(triggers), f"{doc}: {dag_id} triggered while paused"
    # An honest first champion: the batches are cut before it trains, on the initial pool.
    cut = next(i for i, line in enumerate(lines) if line.startswith("rakuten-mlops streams make"))
    first = next(i for i, line in enumerate(lines) if "airflow dags trigger rakuten_training" in line)
    assert cut < first and "streams/pool" in lines[first]
    assert "simple_auth_manager_passwords.json.generated" in (REPO / doc).read_text(encoding="utf-8")
    if doc == "docs/airflow.md":
        assert "/api/v2/dags/rakuten_training/dagRuns" in text and "/auth/token" in text
