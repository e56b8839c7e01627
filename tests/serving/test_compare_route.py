"""`GET /v1/models/versions/{v}/compare`: any version against today's champion on its own gold rows.

Two versions trained on the built-in sample (text only) in a registry of this module's own: the
route's numbers must equal scoring both models here on the gold rows logged with the version's
run; the 404 and 409s carry their reason.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from types import SimpleNamespace

import mlflow
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import f1_score

from rakuten_mlops.config import Params, Settings
from rakuten_mlops.lifecycle.promotion import bootstrap_gain_interval
from rakuten_mlops.lifecycle.registry import CHAMPION, client, configure_mlflow
from rakuten_mlops.models.pyfunc import load_product_classifier
from rakuten_mlops.pipelines.register import GOLD_ARTIFACT
from rakuten_mlops.pipelines.runner import run_pipeline
from rakuten_mlops.serving.app import create_app
from rakuten_mlops.simulation.core.sample import generate_sample


def _params(**promotion: float) -> Params:
    return Params.model_validate(
        {
            "image": {"enabled": False},
            "fusion": {"enabled": False},
            "text": {"calibration_cv": 2},
            "promotion": {"min_f1": 0.0, **promotion},
        }
    )


@pytest.fixture(scope="module")
def reg(tmp_path_factory: pytest.TempPathFactory, kit) -> Iterator[SimpleNamespace]:
    """v1 champion; v2 trained on other data and rejected by the gate; v3 registered without gold rows."""
    home = tmp_path_factory.mktemp("compare-registry")
    train = Settings(_env_file=None, home=home, mlflow_tracking_uri=None, mlflow_registry_uri=None)
    # Training points MLflow's process-wide URIs at this registry: give the session's back after,
    # the other serving tests register their versions through them.
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        mp.chdir(home)
        for n, seed, params in ((1, 7, _params()), (2, 11, _params(min_gain=1.0))):
            data_dir = home / f"data{n}"
            generate_sample(data_dir, n_per_class=12, seed=seed, with_images=False)
            run_pipeline(data_dir, settings=train, params=params)
        configure_mlflow(train)
        c = client(train)
        with mlflow.start_run(
            run_name="by-hand"
        ) as run:  # a version as registered before gold rows were kept
            mlflow.set_tag("note", "no gold rows")
        source = c.get_model_version(train.model_name, "2").source
        c.create_model_version(train.model_name, source, run_id=run.info.run_id)
    settings = Settings(
        _env_file=None, env="development", home=tmp_path_factory.mktemp("compare-api"),
        mlflow_tracking_uri=train.tracking_uri, mlflow_registry_uri=train.registry_uri,
        model_name=train.model_name, database_url=None, jwt_secret=kit.JWT_SECRET, model_poll_seconds=0,
        auth_cache_seconds=0, prediction_log_flush_seconds=0.05,
    )  # fmt: skip
    kit.add_user(settings, "alice")
    try:
        with TestClient(create_app(settings)) as api:
            headers = kit.bearer(kit.login(api, "alice"))
            yield SimpleNamespace(api=api, headers=headers, train=train, c=c)
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])


def _get(reg: SimpleNamespace, version: str):
    return reg.api.get(f"/v1/models/versions/{version}/compare", headers=reg.headers)


def test_numbers_equal_scoring_both_models_on_the_logged_gold_rows(reg):
    assert str(reg.c.get_model_version_by_alias(reg.train.model_name, CHAMPION).version) == "1"
    response = _get(reg, "2")
    assert response.status_code == 200, response.text
    body = response.json()
    run_id = reg.c.get_model_version(reg.train.model_name, "2").run_id
    with tempfile.TemporaryDirectory() as tmp:
        gold = pd.read_parquet(reg.c.download_artifacts(run_id, GOLD_ARTIFACT, tmp))
    assert {"designation", "description", "productid", "imageid", "prdtypecode"} <= set(gold.columns)
    name = reg.train.model_name
    mine = load_product_classifier(f"models:/{name}/2").predict_frame(gold)["prdtypecode"].to_numpy()
    theirs = load_product_classifier(f"models:/{name}/1").predict_frame(gold)["prdtypecode"].to_numpy()
    y = gold["prdtypecode"].to_numpy()
    f1_mine = f1_score(y, mine, average="weighted", zero_division=0)
    f1_theirs = f1_score(y, theirs, average="weighted", zero_division=0)
    assert (body["version"], body["champion_version"], body["gold_of_version"]) == ("2", "1", "2")
    assert body["rows"] == len(gold) > 0
    assert body["version_f1"] == pytest.approx(f1_mine, abs=1e-4)
    assert body["champion_f1"] == pytest.approx(f1_theirs, abs=1e-4)
    assert body["difference"] == pytest.approx(f1_mine - f1_theirs, abs=2e-4)
    labels = load_product_classifier(f"models:/{name}/2").classes_
    interval = bootstrap_gain_interval(y, mine, theirs, labels, reg.train.resolve_params().seed)
    assert (body["interval"]["low"], body["interval"]["high"]) == (interval["low"], interval["high"])
    assert body["interval"]["low"] <= body["difference"] <= body["interval"]["high"]
    per_class = {
        c: f1_score(y, theirs, labels=[c], average="micro", zero_division=0)
        - f1_score(y, mine, labels=[c], average="micro", zero_division=0)
        for c in set(y.tolist())
    }
    worst = max(per_class, key=lambda c: per_class[c])
    assert body["worst_class_drop"]["drop"] == pytest.approx(per_class[worst], abs=1e-4)
    assert body["worst_class_drop"]["rows"] == int((y == body["worst_class_drop"]["code"]).sum())
    assert body["inputs"] == "text" and "text only" in body["images_note"]
    assert _get(reg, "2").json() == body  # a refresh answers the same (from the cache)


def test_the_champion_itself_is_409(reg):
    response = _get(reg, "1")
    assert response.status_code == 409
    assert "nothing to compare" in response.json()["detail"]


def test_a_version_without_logged_gold_rows_is_409_with_the_reason(reg):
    response = _get(reg, "3")
    assert response.status_code == 409
    assert "gold rows were not kept" in response.json()["detail"]


def test_unknown_version_is_404(reg):
    response = _get(reg, "999")
    assert response.status_code == 404
    assert "no version 999" in response.json()["detail"]


def test_without_a_champion_it_is_409(reg):
    name = reg.train.model_name
    reg.c.delete_registered_model_alias(name, CHAMPION)
    try:
        response = _get(reg, "2")
        assert response.status_code == 409
        assert "champion" in response.json()["detail"]
    finally:
        reg.c.set_registered_model_alias(name, CHAMPION, "1")


def test_needs_a_token(reg):
    assert reg.api.get("/v1/models/versions/2/compare").status_code == 401
