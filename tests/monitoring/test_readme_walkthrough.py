"""The README's monitoring walkthrough, run as written up to the first champion: the batches are
cut first and no batch row is in the first champion's training data (an honest demo)."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from rakuten_mlops.cli import app
from rakuten_mlops.config import get_settings
from tests.orchestration.airflow_helpers import REPO

pytestmark = pytest.mark.slow
# Only to keep the test short: a smaller text-only sample and a quick text model.
FASTER = {"data sample": ["--n-per-class", "12", "--no-images"]}


def walkthrough_commands() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Monitoring and continuous training", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None, "no bash block in the README's monitoring walkthrough"
    lines = [line.split("  #", 1)[0].strip() for line in block.group(1).splitlines()]
    commands = [line for line in lines if line]
    first_champion = next(i for i, c in enumerate(commands) if c.startswith("rakuten-mlops pipeline run"))
    return commands[: first_champion + 1]


def test_the_first_champion_never_saw_a_stream_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RAKUTEN_HOME", "RAKUTEN_MLFLOW_TRACKING_URI", "RAKUTEN_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    params = tmp_path / "params.yaml"
    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    raw["text"].update(calibration_cv=2, min_df=1)
    params.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("RAKUTEN_PARAMS_PATH", str(params))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PWD", str(tmp_path))  # as a shell started there would have it
    commands = walkthrough_commands()
    assert [c.split()[1:3] for c in commands if c.startswith("rakuten-mlops")][-2:] == [
        ["streams", "make"],
        ["pipeline", "run"],
    ]  # the batches are cut before the first champion trains
    get_settings.cache_clear()
    try:
        for command in commands:
            words = shlex.split(os.path.expandvars(command))
            if words[0] == "export":
                key, value = words[1].split("=", 1)
                monkeypatch.setenv(key, value)
                get_settings.cache_clear()
                continue
            assert words[0] == "rakuten-mlops", command
            args = words[1:] + FASTER.get(" ".join(words[1:3]), [])
            result = CliRunner().invoke(app, args)
            assert result.exit_code == 0, f"{command}\n{result.output}"
        home = get_settings().home
    finally:
        get_settings.cache_clear()
    assert "PROMOTED" in result.output
    trained = set(pd.read_csv(home / "pipeline" / "refit" / "train_rows.csv")["productid"])
    gold = set(pd.read_parquet(home / "pipeline" / "splits" / "gold.parquet")["productid"])
    batches = sorted((home / "streams" / "batches").iterdir())
    assert len(batches) == 3
    batch_ids = set().union(
        *(set(pd.read_csv(next(b.glob("X_*.csv")), usecols=["productid"])["productid"]) for b in batches)
    )
    assert trained and batch_ids
    assert not (trained | gold) & batch_ids
