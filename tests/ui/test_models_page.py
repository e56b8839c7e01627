"""Models page: versions and metrics for everyone, through the API; promote and rollback for admins."""

from __future__ import annotations

import re

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
    assert any("Confusion matrix, test set (" in spec for spec in chart_specs(at))
    assert not at.get("image"), "the interactive matrix replaces the static image"
    assert "Promoting a version and rolling back are for admins." in page
    assert not [b for b in at.button if b.key in ("promote", "rollback")]


def test_english_labels_in_per_class_f1(make_app):
    at = make_app(page="models_page.py")
    at.radio(key="lang").set_value("en").run()
    f1 = next(f for f in chart_frames(at) if "f1" in f.columns)
    assert len(f1) == 27
    pools = f1[f1["category"].str.startswith("Pools and spas (2583) · ")].iloc[0]
    assert pools["category"] == f"Pools and spas (2583) · {pools['rows']} rows" and pools["rows"] > 0
    cells = next(f for f in chart_frames(at) if "predicted" in f.columns)
    assert len(cells) == 27 * 27 and "Pools and spas (2583)" in set(cells["true"])
    matrix = next(spec for spec in chart_specs(at) if "Confusion matrix" in spec)
    assert re.search(r'"labelOverlap":\s*false', matrix), "Vega would hide every other class name"


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
    assert _champion(stack) == stack.version, "a click alone must not promote: confirmation first"
    page = texts(at)
    assert f"Confirm: make version {challenger} champion (now version {stack.version})" in page
    assert f"The gate never compared version {challenger}" in page
    at.button(key="cancel_change").click().run()
    assert _champion(stack) == stack.version and not [b for b in at.button if b.key == "confirm_change"]
    at.button(key="promote").click().run()
    at.text_input(key="change_reason").input("hotfix for the pool listings")
    at.button(key="confirm_change").click().run()
    assert not at.error, [e.value for e in at.error]
    message = at.success[0].value
    assert f"Version {challenger} is champion (was {stack.version})." in message
    assert f"The API now serves version {challenger}" in message
    assert _champion(stack) == challenger
    assert stack.call("GET", "/v1/model").json()["version"] == challenger
    assert f"Champion: version {challenger}" in texts(at)

    at.button(key="rollback").click().run()
    assert _champion(stack) == challenger, "a click alone must not roll back: confirmation first"
    assert f"Rolling back: version {challenger} gives the alias back to version {stack.version}." in texts(at)
    at.button(key="confirm_change").click().run()
    message = at.success[0].value
    assert f"Champion moved from version {challenger} back to version {stack.version}." in message
    assert f"The API now serves version {stack.version}" in message
    assert _champion(stack) == stack.version
    assert stack.call("GET", "/v1/model").json()["version"] == stack.version

    history = at.dataframe[-1].value
    assert list(history["from → to"][:2]) == [
        f"v{challenger} → v{stack.version}",
        f"v{stack.version} → v{challenger}",
    ]
    assert list(history["who"][:2]) == ["root", "root"]
    assert "hotfix for the pool listings" in history["why"].iloc[1]
    events = stack.call("GET", "/v1/models/history").json()["events"]
    assert [e["action"] for e in events[:2]] == ["rollback", "manual promotion"]
    assert events[-1]["action"] == "gate promotion" and events[-1]["username"] == "pipeline"


def test_the_gate_comparison_on_the_same_gold_rows_is_shown_for_a_constructed_pair(make_app, stack):
    from rakuten_mlops.lifecycle.registry import record_gate

    c = MlflowClient(tracking_uri=stack.settings.tracking_uri, registry_uri=stack.settings.registry_uri)
    source = c.get_model_version(stack.settings.model_name, stack.version)
    version = str(
        c.create_model_version(stack.settings.model_name, source.source, run_id=source.run_id).version
    )
    gate = {
        "version": version, "champion_before": stack.version, "promote": False,
        "challenger_gold_weighted_f1": 0.7123, "champion_gold_weighted_f1": 0.6543,
        "interval": {"rows": 43, "low": -0.01, "high": 0.12, "level": 0.95},
        "reasons": ["largest per-class F1 drop +0.3000 (class 10) > max_class_drop 0.1"],
    }  # fmt: skip
    record_gate(c, stack.settings.model_name, version, gate)

    at = make_app(page="models_page.py")
    table = at.dataframe[0].value
    row = table[table["version"] == version].iloc[0]
    assert row["gate: F1 vs champion, same gold rows"] == f"0.712 vs v{stack.version} 0.654 (43 gold rows)"
    at.selectbox(key="models_version").set_value(version).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert (
        f"Gate rejected: version {version} 0.7123 vs champion v{stack.version} 0.6543 on the same 43 rows "
        "of gold (gain +0.0580, 95% interval [-0.0100, +0.1200])."
    ) in [w.value for w in at.warning]
    shown = {m.label: m.value for m in at.metric}
    assert shown[f"Version {version}"] == "0.7123" and shown[f"Champion then (v{stack.version})"] == "0.6543"
    assert shown["Gain"] == "+0.0580" and shown["Gold rows"] == "43"
    assert "largest per-class F1 drop" in texts(at)


def test_the_champion_numbers_say_how_many_rows_they_were_measured_on(make_app, stack):
    at = make_app(page="models_page.py")
    evaluation = stack.call("GET", f"/v1/models/versions/{stack.version}/evaluation").json()
    assert evaluation["gold_rows"] > 0 and evaluation["test_rows"] > 0
    assert sum(c["support"] for c in evaluation["per_class"]) == evaluation["test_rows"]
    assert evaluation["gate"]["verdict"] == "passed" and evaluation["gate"]["champion_f1"] is None
    page = texts(at)
    assert f"measured on {evaluation['gold_rows']} rows" in page
    assert f"measured on {evaluation['test_rows']} rows" in page
    assert "there was no champion: it was judged against min_f1 alone" in page


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
