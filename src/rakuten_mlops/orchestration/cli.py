"""`rakuten-mlops airflow`: prepare a local Airflow for the project's DAGs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rakuten_mlops.cli_support import console, friendly_errors
from rakuten_mlops.config import get_settings

airflow_app = typer.Typer(
    help="Local Airflow for the rakuten DAGs (training, stream, traffic).", no_args_is_help=True
)


@airflow_app.callback()
def airflow_group() -> None:
    """Local Airflow for the rakuten DAGs: `init`, then `airflow standalone` (see docs/airflow.md)."""


@airflow_app.command("init")
@friendly_errors
def init_command(
    dags_folder: Annotated[
        Path | None,
        typer.Option(help="folder of the DAG files to link (default: the ones shipped in the package)"),
    ] = None,
    params: Annotated[
        Path | None, typer.Option("--params", help="params.yaml the tasks use (default: the project's)")
    ] = None,
    migrate: Annotated[bool, typer.Option("--migrate/--no-migrate", help="run `airflow db migrate`")] = True,
    force: Annotated[bool, typer.Option("--force", help="rewrite an existing airflow.cfg")] = False,
) -> None:
    """Write AIRFLOW_HOME under the home folder (config, env.sh, dags/ linking the package's DAG files),
    migrate its database and create the one-slot pool of the training steps."""
    from rakuten_mlops.orchestration.home import init_airflow_home

    try:
        with console.status("preparing AIRFLOW_HOME and running `airflow db migrate`"):
            result = init_airflow_home(get_settings(), dags_folder, params, run_migrate=migrate, force=force)
    except RuntimeError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(code=1) from None
    for key, value in result.items():
        console.print(f"{key:<13} {value}")
    console.print(
        "\nnext (with this virtualenv's bin/ on PATH):\n"
        f"  source {result['env_file']}\n"
        "  airflow standalone          # UI on http://localhost:8080; user admin, password in:\n"
        f"                              #   {result['admin_password']}\n"
        "  airflow dags unpause rakuten_training     # in another shell, after `source` again\n"
        '  airflow dags trigger rakuten_training --conf \'{"data_dir": "/abs/path/to/data"}\''
    )
