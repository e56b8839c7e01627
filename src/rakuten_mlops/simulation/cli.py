"""`rakuten-mlops streams make|next|status`: replay a data folder as ordered daily batches."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from rakuten_mlops.cli_support import (
    JsonOpt,
    ParamsOpt,
    StreamsOpt,
    console,
    friendly_errors,
    print_json,
    resolve_params,
)
from rakuten_mlops.config import get_settings

streams_app = typer.Typer(
    help="Replay data as ordered daily batches: make them, ingest the next one.", no_args_is_help=True
)


def _streams_dir(path: Path | None) -> Path:
    from rakuten_mlops.simulation.replay.steps import default_streams_dir

    return path if path is not None else default_streams_dir(get_settings())


@streams_app.command("make")
@friendly_errors
def streams_make(
    data_dir: Annotated[Path, typer.Option("--data-dir", help="labelled data in the challenge layout")],
    out: Annotated[Path | None, typer.Option("--out", help="streams folder (default <home>/streams)")] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="number of batches")] = 5,
    drift: Annotated[
        str | None,
        typer.Option(help="injected drift, e.g. '3' or '3:class_mix+language;5:dark_images=0.3'"),
    ] = None,
    params_path: ParamsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Cut a data folder into an initial training pool and N ordered batches (optionally drifted)."""
    from rakuten_mlops.simulation.replay.steps import make_streams

    result = make_streams(data_dir, _streams_dir(out), n, drift, get_settings(), resolve_params(params_path))
    if as_json:
        print_json(result)
        return
    table = Table(title=f"streams in {result['streams_dir']}")
    for col in ("batch", "rows", "injected drift"):
        table.add_column(col)
    table.add_row("pool (initial)", str(result["initial_rows"]), "")
    for b in result["batches"]:
        table.add_row(b["name"], str(b["rows"]), ", ".join(b["drift"]))
    console.print(table)
    console.print(f"pool data version {result['data_hash']}; next: rakuten-mlops streams next")


@streams_app.command("next")
@friendly_errors
def streams_next(
    streams_dir: StreamsOpt = None, params_path: ParamsOpt = None, as_json: JsonOpt = False
) -> None:
    """Validate the next batch, append it to the training pool (new data version) and mark it current."""
    from rakuten_mlops.simulation.replay.steps import ingest_next

    result = ingest_next(_streams_dir(streams_dir), get_settings(), resolve_params(params_path))
    if as_json:
        print_json(result)
    elif result["status"] == "exhausted":
        console.print(f"every batch is ingested (current: {result['current']})")
    else:
        reasons = f" {result['reject_reasons']}" if result["reject_reasons"] else ""
        console.print(
            f"ingested [bold]{result['batch']}[/]: {result['accepted']} rows accepted, "
            f"{result['rejected']} rejected{reasons}; pool {result['pool_rows']} rows, "
            f"data version {result['data_hash']} ({result['remaining']} batches left; DVC: {result['dvc']})"
        )


@streams_app.command("status")
@friendly_errors
def streams_status_command(streams_dir: StreamsOpt = None, as_json: JsonOpt = False) -> None:
    """Batches ingested and pending, the current batch and the pool's data version."""
    from rakuten_mlops.simulation.replay.steps import streams_status

    result = streams_status(_streams_dir(streams_dir))
    if as_json:
        print_json(result)
        return
    console.print(
        f"{len(result['ingested'])}/{result['batches']} batches ingested; current {result['current']}; "
        f"pool {result['pool_rows']} rows, data version {result['data_hash']}"
        + (f"; [bold red]unfinished ingestion of {result['unfinished']}[/]" if result["unfinished"] else "")
    )
