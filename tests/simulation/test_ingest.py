"""Ingestion of the next batch: validated, appended once, a new data version; idempotent after a crash."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from rakuten_mlops.config import Params, Settings
from rakuten_mlops.data.loader import load_dataset
from rakuten_mlops.data.schema import X_TRAIN, Y_TRAIN
from rakuten_mlops.pipelines.ingest import ingest
from rakuten_mlops.pipelines.layout import WorkDir
from rakuten_mlops.simulation.replay import steps as streams_step
from rakuten_mlops.simulation.replay.steps import ingest_next, make_streams, streams_status
from tests.services import require


@pytest.fixture
def streams_dir(sample_dir: Path, settings: Settings, params: Params, tmp_path: Path) -> Path:
    out = tmp_path / "streams"
    make_streams(sample_dir, out, 3, None, settings, params)
    return out


def _snapshot(root: Path) -> tuple[pd.DataFrame, list[str], list[str]]:
    state = json.loads((root / "state.json").read_text())
    return load_dataset(root / "pool").frame, state["ingested"], [v["data_hash"] for v in state["versions"]]


def test_batches_are_ingested_in_order_then_exhausted(
    streams_dir: Path, settings: Settings, params: Params
) -> None:
    initial = load_dataset(streams_dir / "initial").frame
    sizes = []
    for expected in ("batch_001", "batch_002", "batch_003"):
        result = ingest_next(streams_dir, settings, params)
        assert result["batch"] == expected
        sizes.append(result["accepted"])
    pool = load_dataset(streams_dir / "pool").frame
    assert len(pool) == len(initial) + sum(sizes)
    assert not pool.index.duplicated().any()
    assert ingest_next(streams_dir, settings, params)["status"] == "exhausted"
    status = streams_status(streams_dir)
    assert status["current"] == "batch_003" and status["pending"] == []
    assert len({v["data_hash"] for v in status["versions"]}) == 4  # every ingestion is a new data version
    assert _snapshot(streams_dir)[0].equals(pool)  # the exhausted call changed nothing


def test_data_version_is_the_core_pipelines_data_hash(
    streams_dir: Path, settings: Settings, params: Params, tmp_path: Path
) -> None:
    result = ingest_next(streams_dir, settings, params)
    core = ingest(streams_dir / "pool", WorkDir(tmp_path / "work"))
    assert core["data_hash"] == result["data_hash"]


@pytest.mark.parametrize("crash_in", ["_rebuild_pool", "pool_hash", "_dvc_add"])
def test_crash_mid_ingestion_then_rerun_gives_the_same_state(
    crash_in: str,
    streams_dir: Path,
    settings: Settings,
    params: Params,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clean_run = tmp_path / "clean"
    shutil.copytree(streams_dir, clean_run)
    ingest_next(clean_run, settings, params)
    ingest_next(clean_run, settings, params)

    ingest_next(streams_dir, settings, params)
    real = getattr(streams_step, crash_in)

    def crash(*args: object, **kwargs: object) -> object:
        if crash_in != "_rebuild_pool":
            real(*args, **kwargs)  # the work is done, the crash comes right after
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(streams_step, crash_in, crash)
    with pytest.raises(KeyboardInterrupt):
        ingest_next(streams_dir, settings, params)
    assert streams_status(streams_dir)["unfinished"] == "batch_002"
    monkeypatch.setattr(streams_step, crash_in, real)
    again = ingest_next(streams_dir, settings, params)
    assert again["batch"] == "batch_002"  # redone, not skipped
    pool, ingested, hashes = _snapshot(streams_dir)
    clean_pool, clean_ingested, clean_hashes = _snapshot(clean_run)
    assert ingested == clean_ingested == ["batch_001", "batch_002"]
    assert hashes == clean_hashes
    pd.testing.assert_frame_equal(pool.drop(columns="image_path"), clean_pool.drop(columns="image_path"))
    assert streams_status(streams_dir)["unfinished"] is None


def test_invalid_rows_are_rejected_with_reasons(
    streams_dir: Path, settings: Settings, params: Params
) -> None:
    batch = streams_dir / "batches" / "batch_001"
    x = pd.read_csv(batch / X_TRAIN, index_col=0, dtype=str, keep_default_na=False)
    y = pd.read_csv(batch / Y_TRAIN, index_col=0, dtype=str, keep_default_na=False)
    pool_x = pd.read_csv(streams_dir / "pool" / X_TRAIN, index_col=0, dtype=str, keep_default_na=False)
    rows = x.index[:3]
    x.loc[rows[0], "designation"] = ""
    y.loc[rows[1], "prdtypecode"] = "99999"
    x.loc[rows[2], "productid"] = pool_x["productid"].iloc[0]  # already in the pool
    x.to_csv(batch / X_TRAIN)
    y.to_csv(batch / Y_TRAIN)
    result = ingest_next(streams_dir, settings, params)
    assert result["rejected"] == 3
    assert result["reject_reasons"] == {"empty_designation": 1, "unknown_code": 1, "duplicated_productid": 1}
    rejects = pd.read_csv(streams_dir / "ingested" / "batch_001" / "rejects.csv", index_col=0)
    assert sorted(rejects.index) == sorted(rows.astype(int))
    pool = load_dataset(streams_dir / "pool").frame
    assert not pool.index.isin(rows.astype(int)).any()
    assert not pool["productid"].duplicated().any()


def test_rejects_csvs_hold_no_formula(
    streams_dir: Path, settings: Settings, params: Params, tmp_path: Path
) -> None:
    """A rejected row whose designation starts with `=` is written quoted, by the stream ingestion
    and by the pipeline's ingest step."""
    batch = streams_dir / "batches" / "batch_001"
    x = pd.read_csv(batch / X_TRAIN, index_col=0, dtype=str, keep_default_na=False)
    y = pd.read_csv(batch / Y_TRAIN, index_col=0, dtype=str, keep_default_na=False)
    row = x.index[0]
    x.loc[row, "designation"] = '=HYPERLINK("http://evil.example","prix")'
    y.loc[row, "prdtypecode"] = "99999"  # rejected: unknown code
    x.to_csv(batch / X_TRAIN)
    y.to_csv(batch / Y_TRAIN)
    assert ingest_next(streams_dir, settings, params)["rejected"] == 1
    work = WorkDir(tmp_path / "work")
    assert ingest(batch, work)["rejected"] == 1
    for path in (streams_dir / "ingested" / "batch_001" / "rejects.csv", work.rejects_path):
        rejects = pd.read_csv(path, index_col=0, dtype=str, keep_default_na=False)
        assert rejects.loc[row, "designation"] == """'=HYPERLINK("http://evil.example","prix")""", path
        assert rejects.loc[row, "reason"] == "unknown_code"


def test_missing_streams_folder_says_what_to_run(tmp_path: Path, settings: Settings, params: Params) -> None:
    with pytest.raises(FileNotFoundError, match="streams make"):
        ingest_next(tmp_path / "nothing", settings, params)


def test_pool_is_dvc_tracked_inside_a_dvc_repository(
    sample_dir: Path, settings: Settings, params: Params, tmp_path: Path
) -> None:
    import subprocess
    import sys

    dvc = Path(sys.executable).parent / "dvc"
    require(dvc.is_file() and shutil.which("git") is not None, "dvc (the 'dvc' extra) and git are needed")
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([str(dvc), "init", "-q"], cwd=repo, check=True)
    make_streams(sample_dir, repo / "streams", 2, None, settings, params)
    result = ingest_next(repo / "streams", settings, params)
    assert result["dvc"] == "tracked: streams/pool.dvc"
    assert "path: pool" in (repo / "streams" / "pool.dvc").read_text()
    never = Params.model_validate({**params.model_dump(), "streams": {"dvc": "never"}})
    assert ingest_next(repo / "streams", settings, never)["dvc"] == "disabled"
