"""Models page, challenger in shadow (admins): put a version in shadow, watch its comparison, stop it."""

from __future__ import annotations

import time

from mlflow.tracking import MlflowClient

from tests.ui.helpers import texts


def test_predictors_do_not_see_the_comparison(make_app):
    at = make_app(page="models_page.py")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "The challenger's comparison with the champion is for admins." in texts(at)
    assert not [b for b in at.button if b.key in ("challenge", "promote_challenger", "clear_challenger")]


def test_admin_puts_a_version_in_shadow_and_sees_it_against_the_champion(make_app, stack):
    c = MlflowClient(tracking_uri=stack.settings.tracking_uri, registry_uri=stack.settings.registry_uri)
    name = stack.settings.model_name
    champion = str(c.get_model_version_by_alias(name, "champion").version)
    source = c.get_model_version(name, champion)
    version = str(c.create_model_version(name, source.source, run_id=source.run_id).version)
    try:
        at = make_app(user="root", page="models_page.py")
        assert "No challenger in shadow." in texts(at)
        at.selectbox(key="models_version").set_value(version).run()
        at.button(key="challenge").click().run()
        assert not at.error, [e.value for e in at.error]
        assert f"Version {version} is in shadow; the API scores version {version}." in at.success[0].value
        for d in ("Piscine tubulaire ronde", "Coussin velours bleu", "Figurine Goku"):
            assert stack.call("POST", "/v1/predict", json={"designation": d}).status_code == 200
        deadline = time.monotonic() + 20
        while True:  # shadow predictions are scored and logged in the background
            shadow = stack.call("GET", "/v1/monitoring/shadow", user="root").json()
            if shadow["comparisons"] and shadow["comparisons"][0]["predictions"] >= 3:
                break
            assert time.monotonic() < deadline, shadow
            time.sleep(0.1)
        at.run()
        page = texts(at)
        assert f"Challenger: version {version}" in page and f"beside champion version {champion}" in page
        table = at.dataframe[-1].value
        row = table[table["challenger"] == version].iloc[0]
        assert row["champion"] == champion and row["shadow listings"] >= 3
        assert row["agreement"] == 1.0  # a copy of the champion: same answers on the same listings
        at.button(key="promote_challenger").click().run()
        assert any(f"Version {version} stays in shadow" in w.value for w in at.warning)  # no feedback yet
        at.button(key="clear_challenger").click().run()
        assert any(f"No challenger now (was version {version})." in s.value for s in at.success)
    finally:
        if "challenger" in c.get_registered_model(name).aliases:
            c.delete_registered_model_alias(name, "challenger")
