"""`friendly_errors`: a user error is one message and exit code 2; a library bug keeps its traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import typer
from click.testing import Result
from typer.testing import CliRunner

from rakuten_mlops.cli_support import friendly_errors
from rakuten_mlops.config import ConfigError, Params, Settings
from rakuten_mlops.data.schema import LayoutError
from rakuten_mlops.errors import InvalidInputError, MissingInputError, RakutenError
from rakuten_mlops.pipelines.layout import WorkDir, read_frame
from rakuten_mlops.pipelines.runner import run_step

runner = CliRunner()


def _invoke(failure: BaseException | Callable[[], object]) -> Result:
    app = typer.Typer()

    @app.command()
    @friendly_errors
    def command() -> None:
        if isinstance(failure, BaseException):
            raise failure
        failure()

    return runner.invoke(app, [])


def _pandas_bug() -> None:
    pd.DataFrame({"a": [1, 2]}, index=[0])  # pandas raises a ValueError: length mismatch


@pytest.mark.parametrize(
    "error",
    [
        InvalidInputError("no valid rows in data/"),
        MissingInputError("clean.parquet is missing: run the `ingest` step first"),
        ConfigError("params file not found: p.yaml"),
        LayoutError("data folder does not exist", path="/nowhere"),
    ],
)
def test_project_errors_are_one_message_and_exit_code_2(error: RakutenError) -> None:
    result = _invoke(error)
    assert result.exit_code == 2
    assert str(error).splitlines()[0] in result.output
    assert "Traceback" not in result.output


def test_errors_stay_compatible_with_the_builtin_types_callers_catch(tmp_path: Path) -> None:
    assert issubclass(ConfigError, ValueError) and issubclass(ConfigError, RakutenError)
    with pytest.raises(FileNotFoundError, match="run the `ingest` step first"):
        read_frame(WorkDir(tmp_path).clean_path, "ingest")


def test_a_value_error_from_inside_pandas_is_a_bug_not_a_user_error() -> None:
    result = _invoke(_pandas_bug)
    assert result.exit_code == 1
    assert isinstance(result.exception, ValueError)
    assert not isinstance(result.exception, RakutenError)


def test_a_value_error_raised_on_purpose_by_project_code_is_still_a_message(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, _env_file=None)  # type: ignore[call-arg]
    result = _invoke(lambda: run_step("no-such-step", WorkDir(tmp_path), settings, Params()))
    assert result.exit_code == 2
    assert "unknown step 'no-such-step'" in result.output


def test_other_exceptions_are_not_swallowed() -> None:
    result = _invoke(RuntimeError("boom"))
    assert result.exit_code == 1
    assert isinstance(result.exception, RuntimeError)
