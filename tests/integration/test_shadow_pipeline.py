"""`promotion.shadow: true`: a version that passes the offline gate becomes challenger, not champion."""

from __future__ import annotations

from pathlib import Path

import pytest

from rakuten_mlops.lifecycle.challenger import get_challenger
from rakuten_mlops.lifecycle.promotion import Decision
from rakuten_mlops.lifecycle.registry import client, get_champion, model_card
from rakuten_mlops.pipelines import register
from rakuten_mlops.pipelines.layout import WorkDir
from rakuten_mlops.pipelines.runner import run_pipeline
from tests.helpers import fast_params, make_settings

pytestmark = pytest.mark.slow


def test_with_shadow_on_a_version_that_passes_the_gate_becomes_challenger(
    home: Path, text_sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(home)
    shadow_on = {"min_f1": 0.0, "shadow": True}
    first = run_pipeline(
        text_sample_dir,
        settings,
        fast_params(image={"enabled": False}, promotion=shadow_on),
        WorkDir(tmp_path / "first"),
    )
    # No champion yet: nothing to run beside, so the first version is promoted as before.
    assert first["promote"]["promote"] is True and not first["promote"].get("challenger")

    # Whatever the gold scores of this tiny sample, the second version passes the gate here: what is
    # tested is what happens to a version that passes it.
    monkeypatch.setattr(
        register, "decide_promotion", lambda *a, **k: Decision(True, ["passes the gate (test)"], 0.9, 0.8)
    )
    params = fast_params(seed=7, image={"enabled": False}, promotion=shadow_on)
    second = run_pipeline(text_sample_dir, settings, params, WorkDir(tmp_path / "second"))
    version = second["register"]["version"]
    assert version == "2"
    assert second["promote"]["promote"] is False and second["promote"]["challenger"] is True
    assert any("is challenger beside champion v1" in r for r in second["promote"]["reasons"])
    c = client(settings)
    assert str(get_champion(c, settings.model_name).version) == "1"  # type: ignore[union-attr]
    assert str(get_challenger(c, settings.model_name).version) == "2"  # type: ignore[union-attr]
    tags = c.get_model_version(settings.model_name, "2").tags
    assert (
        tags["promotion.decision"] == "challenger" and "passes the gate (test)" in tags["promotion.reasons"]
    )
    card = model_card(settings, "2", "markdown")  # the version's model card states the decision too
    assert "passed the gate; challenger in shadow beside the champion" in card
