"""What a DAG task works on: DAG params first, then Airflow Variables, then Settings defaults.

Every DAG task rebuilds its :class:`RunConfig` from the run's params, so a retried task, or a
task on another Celery worker, sees the same paths as the first try (given the same environment).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rakuten_mlops.config import Params, Settings, load_params
from rakuten_mlops.pipelines.layout import WorkDir

VARIABLE_PREFIX = "rakuten_"
PATH_KEYS = ("data_dir", "streams_dir", "work_dir", "params_path")

Lookup = Callable[[str], str | None]


def airflow_variable(name: str) -> str | None:
    """An Airflow Variable, None when undefined (imports the Task SDK: call it inside a task only)."""
    from airflow.sdk import Variable

    value = Variable.get(name, default=None)
    return None if value in (None, "") else str(value)


def no_variables(name: str) -> str | None:
    return None


@dataclass(frozen=True)
class RunConfig:
    settings: Settings
    params: Params
    params_source: str
    work: WorkDir
    data_dir: Path
    streams_dir: Path

    @property
    def pool_dir(self) -> Path:
        """The training pool of the streams folder (initial data + accepted batches)."""
        return self.streams_dir / "pool"


def _path(value: str) -> Path:
    return Path(value).expanduser().resolve()


def pick(conf: Mapping[str, Any], key: str, variable: Lookup) -> str | None:
    """`conf[key]` when set, else the Airflow Variable ``rakuten_<key>``, else None."""
    value = conf.get(key)
    if value not in (None, ""):
        return str(value)
    return variable(VARIABLE_PREFIX + key)


def resolve(
    conf: Mapping[str, Any], variable: Lookup = airflow_variable, settings: Settings | None = None
) -> RunConfig:
    """Paths and params for one task.

    Defaults: data ``<home>/sample``, streams ``<home>/streams``, work ``<home>/pipeline``
    (the folder the drift reference reads), params from Settings (RAKUTEN_PARAMS_PATH, then
    ./params.yaml, then built-in defaults).
    """
    from rakuten_mlops.pipelines.runner import default_work_dir
    from rakuten_mlops.simulation.replay.steps import default_streams_dir

    settings = settings or Settings()
    values = {key: pick(conf, key, variable) for key in PATH_KEYS}
    if values["params_path"] is not None:
        params_path = _path(values["params_path"])
        params, source = load_params(params_path), str(params_path)
    else:
        params = settings.resolve_params()
        source = str(settings.params_path or ("params.yaml" if Path("params.yaml").is_file() else "defaults"))
    work = WorkDir(_path(values["work_dir"])) if values["work_dir"] else default_work_dir(settings)
    return RunConfig(
        settings=settings,
        params=params,
        params_source=source,
        work=work,
        data_dir=_path(values["data_dir"]) if values["data_dir"] else settings.home / "sample",
        streams_dir=_path(values["streams_dir"]) if values["streams_dir"] else default_streams_dir(settings),
    )


def jsonable(value: Any) -> Any:
    """A JSON-safe copy (numpy numbers, paths, dates become plain values) fit for an XCom."""
    return json.loads(json.dumps(value, default=_plain))


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


class _LineLogger(io.TextIOBase):
    """A text stream that logs each complete line at INFO on `logger`."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        lines = (self.pending + text).split("\n")
        self.pending = lines.pop()
        for line in lines:
            if line.strip():
                self.logger.info("%s", line.rstrip())
        return len(text)

    def flush(self) -> None:
        if self.pending.strip():
            self.logger.info("%s", self.pending.rstrip())
        self.pending = ""


@contextlib.contextmanager
def mlflow_messages_logged() -> Iterator[None]:
    """Send MLflow's printed messages ("Created version '2' of model ...") to the `mlflow` logger.

    MLflow prints them on stderr, which an Airflow task log shows at error level; through the
    logger they come out at INFO, like MLflow's log records (left to Airflow's logging by
    ``MLFLOW_CONFIGURE_LOGGING=false``).
    """
    from mlflow.utils import logging_utils

    saved = logging_utils.MLFLOW_LOGGING_STREAM
    stream = _LineLogger(logging.getLogger("mlflow"))
    logging_utils.MLFLOW_LOGGING_STREAM = stream  # type: ignore[assignment]  # eprint reads it per call
    try:
        yield
    finally:
        stream.flush()
        logging_utils.MLFLOW_LOGGING_STREAM = saved
