"""Models page: versions and metrics for everyone, through the API; promote and rollback for admins."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from rakuten_mlops.lifecycle.registry import CHAMPION
from tests.helpers import free_port
from tests.ui.helpers import chart_frames, chart_specs, texts


def _champion(stack) -> str:
    c = MlflowClient(tracking_uri=stack.settings.tracking_uri, registry_uri=stack.settings.registry_uri)
    return str(c.get_model_version_by_alias(stack.settings.model_name, CHAMPION).version)


def test_versions_metrics_and_decisions_are_shown_without_admin_buttons(make_app, stack):
    at = make_app(page="models_page.py")
    assert not at.exception and not at.error, [e.value for e in at.error]
    page = texts(at)
    assert f"Champion: version {stack.version}" in page
    assert "Decision: promoted. Reasons: no champion yet and gold weighted F1" in page
    table = at.dataframe[0].value
    row = table[table["version"] == stack.version].iloc[0]
    assert row["aliases"] == "champion" and row["decision"] == "promoted"
    assert 0.0 <= row["gold weighted F1"] <= 1.0 and 0.0 <= row["test weighted F1"] <= 1.0
    assert any("Per-class F1" in spec for spec in chart_specs(at))
    images = at.get("image")
    assert len(images) == 1, "the confusion matrix image is missing"
    assert "Confusion matrix, test set (evaluation/confusion_text.png)" in str(images[0].proto)
    assert "Promoting a version and rolling back are for admins." in page
    assert not [b for b in at.button if b.key in ("promote", "rollback")]


def test_english_labels_in_per_class_f1(make_app):
    at = make_app(page="models_page.py")
    at.radio(key="lang").set_value("en").run()
    f1 = next(f for f in chart_frames(at) if "f1" in f.columns)
    assert len(f1) == 27
    assert "Pools and spas (2583)" in set(f1["category"])


@pytest.mark.slow
def test_admin_promotes_then_rolls_back_and_the_api_follows(make_app, stack):
    c = MlflowClient(tracking_uri=stack.settings.tracking_uri, registry_uri=stack.settings.registry_uri)
    source = c.get_model_version(stack.settings.model_name, stack.version)
    challenger = str(
        c.create_model_version(stack.settings.model_name, source.source, run_id=source.run_id).version
    )

    at = make_app(user="root", page="models_page.py")
    assert "Logged in as **root** (admin)" in texts(at)
    at.selectbox(key="models_version").set_value(challenger).run()
    at.button(key="promote").click().run()
    assert not at.error, [e.value for e in at.error]
    message = at.success[0].value
    assert f"Version {challenger} is champion (was {stack.version})." in message
    assert f"The API now serves version {challenger}" in message
    assert _champion(stack) == challenger
    assert stack.call("GET", "/v1/model").json()["version"] == challenger
    assert f"Champion: version {challenger}" in texts(at)

    at.button(key="rollback").click().run()
    message = at.success[0].value
    assert f"Champion moved from version {challenger} back to version {stack.version}." in message
    assert f"The API now serves version {stack.version}" in message
    assert _champion(stack) == stack.version
    assert stack.call("GET", "/v1/model").json()["version"] == stack.version


def test_empty_registry_says_how_to_train(make_app, ui_env, empty_stack):
    ui_env(url=empty_stack.url)
    at = make_app(page="models_page.py")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "is registered yet: train one with `rakuten-mlops pipeline run" in texts(at)


def test_api_going_down_is_reported_on_the_models_page(make_app, ui_env):
    at = make_app()
    ui_env(url=f"http://127.0.0.1:{free_port()}")
    at.switch_page("models_page.py").run()
    assert not at.exception
    message = " ".join(str(e.value) for e in at.error)
    assert "Reading the model registry failed: the API at" in message and "does not answer" in message


def test_the_model_card_of_the_chosen_version_is_shown(make_app, stack):
    at = make_app(page="models_page.py")
    assert not at.exception and not at.error, [e.value for e in at.error]
    card = stack.call("GET", f"/v1/models/versions/{stack.version}/card").text
    shown = [m.value for m in at.markdown if m.value.startswith("# Model card")]
    assert [s.strip() for s in shown] == [card.strip()]
    assert "weakest classes" in shown[0] and "## Promotion gate" in shown[0]
    download = next(e for e in at.get("download_button"))
    assert "Download the card (HTML)" in str(download.proto)
