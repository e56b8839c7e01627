"""The Airflow quick starts of docs/airflow.md and the README.

The server-less quick start of docs/airflow.md (between its `quickstart:begin` and
`quickstart:end` markers) is run as written, with bash, in a clean temporary project folder;
the server-based steps are checked for what a new user would otherwise miss (their commands run
in the other Airflow tests: `airflow init` in the session fixture, triggered runs under
`dag.test()`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.orchestration.airflow_helpers import DAG_IDS, REPO, clean_environ

DOC = REPO / "docs" / "airflow.md"
BEGIN, END = "<!-- quickstart:begin -->", "<!-- quickstart:end -->"
# MLflow's own handler writes `2026/01/31 12:00:00 INFO mlflow.x: ...` to stderr, which a task
# log shows at error level; through Airflow's logging its records read `[info ...] ... [mlflow.x]`.
MLFLOW_OWN_FORMAT = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR) mlflow", re.M)
AIRFLOW_RECORD = re.compile(r"^\S+ \[(?P<level>[a-z]+)\s*\] .*\[(?P<logger>[\w.]+)\]", re.M)


def commands(markdown: str, heading: str) -> list[str]:
    section = markdown.split(heading, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        joined = block.replace("\\\n", " ")
        lines += [line.split("  #", 1)[0].strip() for line in joined.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def quick_start_block(markdown: str) -> str:
    """The bash block between the quick-start markers (exactly one)."""
    if markdown.count(BEGIN) != 1 or markdown.count(END) != 1:
        raise AssertionError(f"expected one {BEGIN} ... {END} pair in {DOC}")
    between = markdown.split(BEGIN, 1)[1].split(END, 1)[0]
    [block] = re.findall(r"```bash\n(.*?)```", between, re.S)
    return block


SERVER_STEPS = {
    "docs/airflow.md": "### With the scheduler and the UI (`airflow standalone`)",
    "README.md": "## Orchestration (Airflow 3)",
}


@pytest.mark.parametrize("doc", sorted(SERVER_STEPS))
def test_the_server_steps_put_the_venv_on_path_and_unpause_before_triggering(doc: str) -> None:
    lines = commands((REPO / doc).read_text(encoding="utf-8"), SERVER_STEPS[doc])
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


def test_the_quick_start_block_is_found_and_trains_on_the_pool_after_cutting_the_batches() -> None:
    lines = [line.split("#", 1)[0].strip() for line in quick_start_block(DOC.read_text()).splitlines()]
    lines = [line for line in lines if line]
    assert lines[0].startswith("export PATH=$PWD/.venv/bin:")
    cut = next(i for i, line in enumerate(lines) if line.startswith("rakuten-mlops streams make"))
    train = next(i for i, line in enumerate(lines) if line.startswith("airflow dags test rakuten_training"))
    assert cut < train and "streams/pool" in lines[train]
    assert lines[-1] == "rakuten-mlops models list"


@pytest.mark.slow
def test_the_quick_start_runs_as_written_in_a_clean_home(tmp_path: Path) -> None:
    """The block, run by bash in a project folder with no home yet, promotes a first champion."""
    from rakuten_mlops.config import Settings
    from rakuten_mlops.lifecycle.registry import client, configure_mlflow, get_champion

    project = tmp_path / "project"
    project.mkdir()
    (project / ".venv").symlink_to(Path(sys.prefix))  # the quick start puts ./.venv/bin on PATH
    shutil.copy(REPO / "params.yaml", project / "params.yaml")  # the project folder's params
    script = "set -euo pipefail\n" + quick_start_block(DOC.read_text(encoding="utf-8"))
    # No RAKUTEN_* or AIRFLOW* from this process: the block must set up everything it uses.
    env = clean_environ()
    log_path = tmp_path / "quickstart.log"
    with log_path.open("w", encoding="utf-8") as log:
        done = subprocess.run(
            ["bash", "-c", script], cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT,
            timeout=1500, check=False,
        )  # fmt: skip
    output = log_path.read_text(encoding="utf-8", errors="replace")
    assert done.returncode == 0, output[-6000:]

    home = project / ".rakuten"
    settings = Settings(_env_file=None, home=home)
    configure_mlflow(settings)
    champion = get_champion(client(settings), settings.model_name)
    assert champion is not None and str(champion.version) == "1", output[-3000:]
    assert champion.tags["promotion.decision"] == "promoted"
    assert "state=success" in output
    # An honest first champion: no row of a stream batch in its training or gold data.
    trained = set(pd.read_csv(home / "pipeline" / "refit" / "train_rows.csv")["productid"])
    gold = set(pd.read_parquet(home / "pipeline" / "splits" / "gold.parquet")["productid"])
    batch_ids = set().union(
        *(
            set(pd.read_csv(next(b.glob("X_*.csv")), usecols=["productid"])["productid"])
            for b in sorted((home / "streams" / "batches").iterdir())
        )
    )
    assert trained and batch_ids and not (trained | gold) & batch_ids
    assert re.search(r"│ 1\s+│ champion\s+│.*│ promoted", output), output[-3000:]

    # Log levels: MLflow's records go through Airflow's logging at their own level.
    records = [(m["level"], m["logger"]) for m in AIRFLOW_RECORD.finditer(output)]
    assert any(level == "info" and logger.startswith("mlflow.") for level, logger in records), (
        "no MLflow INFO record in the task logs"
    )
    assert not MLFLOW_OWN_FORMAT.search(output), MLFLOW_OWN_FORMAT.search(output)
    errors = [(level, logger) for level, logger in records if level in ("error", "critical")]
    assert errors == [], errors
