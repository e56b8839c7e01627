"""Two configuration channels: params.yaml (validated) and Settings (environment)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rakuten_mlops.config import ConfigError, Params, Settings, load_params

ROOT = Path(__file__).resolve().parents[1]


def test_repository_params_are_valid() -> None:
    params = load_params(ROOT / "params.yaml")
    assert params == Params.model_validate(params.model_dump())
    assert "text.C" in params.flat() and "promotion.min_gain" in params.flat()


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("text:\n  C: -1\n", "text.C"),
        ("textt: {}\n", "textt"),
        ("split:\n  gold_fraction: 0.3\n  test_fraction: 0.3\n  val_fraction: 0.3\n", "less than 20%"),
        ("seed: [1\n", "not valid YAML"),
    ],
)
def test_invalid_params_name_the_problem(tmp_path: Path, yaml_text: str, message: str) -> None:
    p = tmp_path / "params.yaml"
    p.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message):
        load_params(p)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            "monitoring:\n  drift:\n    drift_shar: 0.3\n",
            r"monitoring\.drift\.drift_shar: Extra inputs are not permitted",
        ),
        ("monitoring:\n  decisions: {}\n", r"monitoring\.decisions: Extra inputs"),
        (
            "monitoring:\n  live:\n    window_days: 0\n",
            r"monitoring\.live\.window_days: Input should be greater than 0",
        ),
        ("streams:\n  drift:\n    language: fr\n", r"streams\.drift\.language"),
        ("streams:\n  batch_day: 2\n", r"streams\.batch_day: Extra inputs"),
    ],
)
def test_monitoring_and_streams_sections_fail_when_loaded(
    tmp_path: Path, yaml_text: str, message: str
) -> None:
    """A typo under `monitoring:` or `streams:` fails `load_params`, not a later step."""
    p = tmp_path / "params.yaml"
    p.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message):
        load_params(p)


def test_monitoring_and_streams_sections_are_typed(tmp_path: Path) -> None:
    p = tmp_path / "params.yaml"
    p.write_text("monitoring:\n  decision:\n    min_live_f1: 0.7\nstreams:\n  start_date: '2025-03-01'\n")
    params = load_params(p)
    assert params.monitoring.decision.min_live_f1 == 0.7
    assert params.monitoring.drift.reference_max_rows == 5000  # defaults fill the rest
    assert params.streams.start_date.isoformat() == "2025-03-01"
    assert params.flat()["streams.start_date"] == "2025-03-01"


def test_missing_params_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "absent.yaml")


def test_settings_defaults_live_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAKUTEN_MLFLOW_TRACKING_URI", raising=False)
    s = Settings(home=tmp_path / "h", _env_file=None)  # type: ignore[call-arg]
    assert s.tracking_uri == f"sqlite:///{(tmp_path / 'h').resolve()}/mlflow.db"
    assert s.app_database_url.endswith("/h/app.db")
    assert s.artifact_location.startswith("file://")
    assert s.model_name == "rakuten-product-classifier"


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAKUTEN_MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("RAKUTEN_JWT_SECRET", "change-me")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.tracking_uri == "http://mlflow:5000"
    assert s.jwt_secret_is_placeholder()
    assert "change-me" not in repr(s)
