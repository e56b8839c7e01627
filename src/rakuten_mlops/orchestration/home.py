"""A local AIRFLOW_HOME under the project home folder: config, environment file, metadata database."""

from __future__ import annotations

import base64
import importlib.util
import os
import secrets
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from rakuten_mlops.config import Settings
from rakuten_mlops.errors import MissingInputError

PACKAGE_DAGS = Path(__file__).resolve().parent / "dags"  # shipped inside the package
DAG_FILES = ("rakuten_training.py", "rakuten_stream.py", "rakuten_traffic.py", "rakuten_batch_scoring.py")
POOL = "rakuten_pipeline"  # one slot: the steps that write the pipeline work folder, one at a time


@dataclass(frozen=True)
class AirflowHome:
    """Where the local Airflow keeps its config, database and logs (``<home>/airflow``)."""

    root: Path

    @classmethod
    def of(cls, settings: Settings) -> AirflowHome:
        return cls(settings.home.expanduser().resolve() / "airflow")

    @property
    def config_path(self) -> Path:
        return self.root / "airflow.cfg"

    @property
    def env_path(self) -> Path:
        return self.root / "env.sh"

    @property
    def database_path(self) -> Path:
        return self.root / "airflow.db"

    @property
    def sql_alchemy_conn(self) -> str:
        return f"sqlite:///{self.database_path}"


def find_dags_folder(start: Path | None = None) -> Path:
    """The DAG files of the installed package (``rakuten_mlops/orchestration/dags``).

    `start` is ignored (kept for callers of the former project-folder search): the DAGs travel
    with the package, so an installed wheel, an editable checkout and a Celery image run the
    same DAG code as the steps they call.
    """
    return PACKAGE_DAGS


def link_dags(source: Path, target: Path) -> list[str]:
    """Symlink the rakuten DAG files of `source` into `target` (Airflow's dags_folder); returns them.

    A link to another place is replaced; other files in `target` (a team's own DAGs) are kept.
    """
    target.mkdir(parents=True, exist_ok=True)
    linked = []
    for name in DAG_FILES:
        link = target / name
        if link.is_symlink() or link.exists():
            if link.resolve() == (source / name).resolve():
                linked.append(name)
                continue
            link.unlink()
        link.symlink_to(source / name)
        linked.append(name)
    return linked


def default_parallelism() -> int:
    """Task slots for this machine: one per core (at least 2), not Airflow's 32."""
    return max(2, os.cpu_count() or 2)


def render_config(home: AirflowHome, dags_folder: Path, parallelism: int | None = None) -> str:
    """A minimal airflow.cfg; Airflow fills every other key with its defaults.

    The keys are generated once and written here, as Airflow does in the airflow.cfg it writes
    itself: without a shared `jwt_secret`, each process of `airflow standalone` would pick its
    own and the API server would refuse the scheduler's task tokens.
    """
    fernet_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    slots = parallelism or default_parallelism()
    return (
        "# Written by `rakuten-mlops airflow init`; AIRFLOW__<SECTION>__<KEY> variables override it.\n"
        "[core]\n"
        f"dags_folder = {dags_folder}\n"
        "load_examples = False\n"
        "dags_are_paused_at_creation = True\n"
        "# Sized to this machine's cores: the LocalExecutor starts this many worker processes.\n"
        f"parallelism = {slots}\n"
        f"max_active_tasks_per_dag = {slots}\n"
        f"fernet_key = {fernet_key}\n\n"
        "[database]\n"
        f"sql_alchemy_conn = {home.sql_alchemy_conn}\n\n"
        "[api]\n"
        f"secret_key = {secrets.token_urlsafe(32)}\n\n"
        "[api_auth]\n"
        f"jwt_secret = {secrets.token_urlsafe(64)}\n\n"
        "[celery]\n"
        f"worker_concurrency = {slots}\n"
    )


def render_env(home: AirflowHome, settings: Settings, params_path: Path | None) -> str:
    """Shell exports that point Airflow and the DAG tasks at this project (``source env.sh``)."""
    values = {
        "AIRFLOW_HOME": str(home.root),
        # Tasks run in processes started by Airflow, from any folder: give them absolute paths.
        "RAKUTEN_HOME": str(settings.home.expanduser().resolve()),
    }
    if params_path is not None:
        values["RAKUTEN_PARAMS_PATH"] = str(params_path.resolve())
    lines = ["# Written by `rakuten-mlops airflow init`: source it before any `airflow` command."]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def airflow_environment(home: AirflowHome) -> dict[str, str]:
    """The current environment with AIRFLOW_HOME set, for `airflow` subprocesses."""
    env = dict(os.environ)
    env["AIRFLOW_HOME"] = str(home.root)
    return env


def _airflow(home: AirflowHome, *args: str) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec("airflow") is None:
        raise RuntimeError("Airflow is not installed: pip install 'rakuten-mlops[airflow]'")
    return subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        env=airflow_environment(home),
        capture_output=True,
        text=True,
        check=False,
    )


def migrate(home: AirflowHome) -> subprocess.CompletedProcess[str]:
    """Run `airflow db migrate` for this home (creates or upgrades the metadata database)."""
    return _airflow(home, "db", "migrate")


def create_pool(home: AirflowHome) -> subprocess.CompletedProcess[str]:
    """The one-slot pool of the steps that write the pipeline work folder (see docs/airflow.md)."""
    return _airflow(home, "pools", "set", POOL, "1", "training steps write the pipeline work folder")


def init_airflow_home(
    settings: Settings,
    dags_folder: Path | None = None,
    params_path: Path | None = None,
    *,
    run_migrate: bool = True,
    force: bool = False,
) -> dict[str, str]:
    """Write airflow.cfg and env.sh under ``<home>/airflow``, then migrate the metadata database.

    An existing airflow.cfg is kept unless `force` (it may hold the user's own settings).

    Raises:
        FileNotFoundError: the DAGs folder cannot be found.
        RuntimeError: `airflow db migrate` failed (its output is in the message).
    """
    home = AirflowHome.of(settings)
    source = (dags_folder or find_dags_folder()).resolve()
    if not (source / "rakuten_training.py").is_file():
        raise MissingInputError(f"{source} does not hold the rakuten DAG files")
    dags = home.root / "dags"
    if params_path is None and settings.params_path is not None:
        params_path = settings.params_path
    if params_path is None and Path("params.yaml").is_file():
        params_path = Path("params.yaml")
    home.root.mkdir(parents=True, exist_ok=True)
    link_dags(source, dags)
    config_written = force or not home.config_path.is_file()
    if config_written:
        home.config_path.write_text(render_config(home, dags), encoding="utf-8")
        home.config_path.chmod(0o600)  # it holds the keys
    home.env_path.write_text(render_env(home, settings, params_path), encoding="utf-8")
    result = {
        "airflow_home": str(home.root),
        "config": str(home.config_path) + ("" if config_written else " (kept)"),
        "env_file": str(home.env_path),
        "dags_folder": f"{dags} (links to {source})",
        "params": str(params_path.resolve()) if params_path else "defaults",
        "database": home.sql_alchemy_conn,
        "admin_password": str(home.root / "simple_auth_manager_passwords.json.generated"),
    }
    if run_migrate:
        done = migrate(home)
        if done.returncode != 0:
            raise RuntimeError(f"`airflow db migrate` failed:\n{(done.stdout + done.stderr)[-3000:]}")
        result["migrate"] = "done"
        pool = create_pool(home)
        if pool.returncode != 0:
            raise RuntimeError(f"`airflow pools set {POOL}` failed:\n{(pool.stdout + pool.stderr)[-3000:]}")
        result["pool"] = f"{POOL} (1 slot)"
    return result
