"""`rakuten-mlops ui`: the streamlit command line it runs, and the API URL it passes on."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.resources import files

from typer.testing import CliRunner

from rakuten_mlops.cli import app
from rakuten_mlops.ui.cli import APP_PATH, streamlit_argv
from tests.ui.helpers import UI_DIR

runner = CliRunner()


def test_streamlit_runs_the_installed_app_headless_without_telemetry():
    argv = streamlit_argv("0.0.0.0", 8600)
    assert argv[:5] == [sys.executable, "-m", "streamlit", "run", str(APP_PATH)]
    options = dict(zip(argv[5::2], argv[6::2], strict=True))
    assert options["--server.address"] == "0.0.0.0" and options["--server.port"] == "8600"
    assert options["--server.headless"] == "true" and options["--browser.gatherUsageStats"] == "false"


def test_every_page_script_ships_with_the_package():
    from rakuten_mlops.ui.app import PAGES

    for script, _title, _icon in PAGES:
        assert (UI_DIR / script).is_file(), script
        assert files("rakuten_mlops.ui").joinpath(script).is_file(), script


def test_ui_command_passes_the_api_url_to_streamlit(monkeypatch):
    seen = {}

    def fake_exec(path, argv, env):  # POSIX: the command becomes streamlit (os.execve)
        seen["argv"], seen["env"] = argv, env
        assert path == argv[0] == sys.executable

    def fake_call(argv, env):  # elsewhere: a child process
        seen["argv"], seen["env"] = argv, env
        return 0

    monkeypatch.setattr(os, "execve", fake_exec)
    monkeypatch.setattr(subprocess, "call", fake_call)
    result = runner.invoke(app, ["ui", "--port", "8700", "--api-url", "http://api.internal:8000"])
    assert result.exit_code == 0, result.output
    assert "UI on http://127.0.0.1:8700 (prediction API: http://api.internal:8000" in result.output
    assert seen["env"]["RAKUTEN_API_URL"] == "http://api.internal:8000"
    assert seen["argv"][seen["argv"].index("--server.port") + 1] == "8700"
