"""`rakuten-mlops`: the command line. Each command is a thin wrapper over a step function."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from rakuten_mlops.cli_support import ParamsOpt, RichProgress, console, friendly_errors, resolve_params
from rakuten_mlops.config import get_settings

app = typer.Typer(help=__doc__, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
data_app = typer.Typer(
    help="Sample generation, validation and import of Rakuten data folders.", no_args_is_help=True
)
pipeline_app = typer.Typer(help="Run the training pipeline, whole or step by step.", no_args_is_help=True)
models_app = typer.Typer(
    help="Model registry: list versions, promote, roll back, read model cards.", no_args_is_help=True
)
batch_app = typer.Typer(
    help="Score a whole catalog: streamed in this process, or on Apache Spark.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(models_app, name="models")
app.add_typer(batch_app, name="batch")


# ---------------------------------------------------------------- data
@data_app.command("sample")
@friendly_errors
def data_sample(
    out: Annotated[Path, typer.Option("--out", help="folder to write the dataset to")],
    n_per_class: Annotated[int, typer.Option(help="average rows per class (real class proportions)")] = 40,
    seed: Annotated[int, typer.Option(help="random seed: same seed, same files")] = 42,
    images: Annotated[bool, typer.Option("--images/--no-images", help="write JPEG images")] = True,
    image_size: Annotated[int, typer.Option(help="image side in pixels (the challenge uses 500)")] = 500,
) -> None:
    """Write a realistic sample dataset in the exact challenge layout (CSVs + JPEG images)."""
    from rakuten_mlops.simulation.core.sample import class_sizes, generate_sample

    total = round(sum(class_sizes(n_per_class).values()))
    with RichProgress() as progress:
        advance = progress.task("writing images", total=total if images else 0)
        summary = generate_sample(
            out, n_per_class, seed, with_images=images, image_size=image_size, on_image=lambda: advance(1)
        )
    console.print(
        f"wrote {summary.n_train} labelled + {summary.n_test} unlabelled listings and "
        f"{summary.n_images} images to [bold]{summary.out_dir}[/]"
    )


@data_app.command("validate")
@friendly_errors
def data_validate(
    data_dir: Annotated[Path, typer.Option("--data-dir", help="folder in the challenge layout")],
    rejects: Annotated[Path | None, typer.Option(help="where to write rejected rows (CSV)")] = None,
) -> None:
    """Check a data folder: layout, columns, every row and every image. Exit 1 when rows are rejected."""
    from rakuten_mlops.data.csv_export import write_csv_for_users
    from rakuten_mlops.data.loader import load_dataset
    from rakuten_mlops.data.validation import validate

    raw = load_dataset(data_dir)
    with RichProgress() as progress:
        advance = progress.task("checking rows and images", total=len(raw.frame))
        last = [0]

        def on_progress(done: int) -> None:
            advance(done - last[0])
            last[0] = done

        result = validate(raw.frame, check_images=raw.has_images, on_progress=on_progress)
    table = Table(title=f"validation of {data_dir}")
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    for key, value in result.summary().items():
        table.add_row(key, str(value))
    console.print(table)
    if not raw.has_images:
        console.print("no images folder: the pipeline will train text only")
    if len(result.rejects):
        target = rejects or Path(data_dir) / "rejects.csv"
        write_csv_for_users(result.rejects, target)
        console.print(
            f"[yellow]{len(result.rejects)} rows rejected[/]; written with their reason to {target}"
        )
        raise typer.Exit(code=1)
    console.print("[green]all rows valid[/]")


@data_app.command("import")
@friendly_errors
def data_import(
    sources: Annotated[list[Path], typer.Option("--from", help="downloaded files or a folder holding them")],
    out: Annotated[Path, typer.Option("--out", help="data folder to create")],
) -> None:
    """Lay out the challenge downloads (X_train, Y_train, X_test CSVs and images.zip) as a data folder."""
    from rakuten_mlops.data.importer import import_challenge_files

    with RichProgress() as progress:
        advance = progress.task("unpacking images", total=None)
        summary = import_challenge_files(sources, out, on_image=lambda: advance(1))
    for name, n in summary.files.items():
        console.print(f"{name}: {n} rows")
    for folder, n in summary.images.items():
        console.print(f"images/{folder}: {n} images")
    if not summary.images:
        console.print("no images.zip found: the folder is valid for text-only training")
    console.print(
        f"data folder ready: [bold]{summary.out_dir}[/] (check it with `rakuten-mlops data validate`)"
    )


# ---------------------------------------------------------------- pipeline
def _print_run(summary: dict[str, Any]) -> None:
    scores = summary["evaluate"]["scores"]
    table = Table(title=f"evaluation ({summary['evaluate']['modalities']})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in scores.items():
        table.add_row(key, f"{value:.4f}")
    console.print(table)
    ing = summary["ingest"]
    console.print(
        f"rows: {ing['accepted']} accepted, {ing['rejected']} rejected; splits: {summary['split']['sizes']}"
    )
    choice = summary["train"].get("text_model")
    if choice and choice.get("kind") == "transformer":
        console.print(
            f"text model: [bold]transformer[/] ({choice['backbone']}; best epoch {choice['best_epoch']} "
            f"of {choice['epochs_run']} on {choice['device']}, precision {choice['precision']})"
        )
    elif choice:
        from rakuten_mlops.models.text import selection_line

        console.print(f"text model: [bold]{choice['chosen']}[/] ({selection_line(choice)}, on train)")
    refit = summary["refit"]
    learned = " + ".join(refit["parts"])
    console.print(
        f"registered model learned from {refit['rows']} rows ({learned}); "
        f"gold weighted F1 {refit['gold_weighted_f1']:.4f}"
        + ("" if refit["enabled"] else f" (refit off: {refit.get('reason', 'split.refit is false')})")
    )
    reg, pro = summary["register"], summary["promote"]
    verdict = "[green]PROMOTED to champion[/]" if pro["promote"] else "[yellow]not promoted[/]"
    if pro.get("challenger"):
        verdict = "[cyan]passed the gate: CHALLENGER in shadow[/]"
    console.print(f"model version {reg['version']}: {verdict}")
    for reason in pro["reasons"]:
        console.print(f"  - {reason}")
    console.print(f"plots and metrics: {summary['work_dir']}/eval  ({summary['total_seconds']:.0f} s)")


@pipeline_app.command("run")
@friendly_errors
def pipeline_run(
    data_dir: Annotated[Path, typer.Option("--data-dir", help="folder in the challenge layout")],
    params: ParamsOpt = None,
    work_dir: Annotated[
        Path | None, typer.Option(help="where step outputs go (default <home>/pipeline)")
    ] = None,
) -> None:
    """Ingest → validate → split → train → evaluate → refit → register → promote, with a summary."""
    from rakuten_mlops.pipelines.layout import WorkDir
    from rakuten_mlops.pipelines.runner import default_work_dir, run_pipeline

    settings = get_settings()
    p = resolve_params(params)
    work = WorkDir(work_dir) if work_dir else default_work_dir(settings)
    with RichProgress() as progress:
        summary = run_pipeline(data_dir, settings, p, work, progress)
    _print_run(summary)


@pipeline_app.command("step")
@friendly_errors
def pipeline_step(
    name: Annotated[
        str,
        typer.Argument(
            help="ingest | split | embed | train (or train_text, train_image, fuse) | evaluate | "
            "refit | register | promote"
        ),
    ],
    work_dir: Annotated[
        Path | None, typer.Option(help="where step outputs go (default <home>/pipeline)")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="data folder (ingest only)")] = None,
    params: ParamsOpt = None,
) -> None:
    """Run one step of the pipeline (DVC stages and Airflow tasks call these)."""
    import json

    from rakuten_mlops.pipelines.layout import WorkDir
    from rakuten_mlops.pipelines.runner import default_work_dir, run_step

    settings = get_settings()
    work = WorkDir(work_dir) if work_dir else default_work_dir(settings)
    with RichProgress() as progress:
        result = run_step(name, work, settings, resolve_params(params), data_dir, progress)
    console.print_json(json.dumps(result, default=str))


# ---------------------------------------------------------------- predict
@app.command("predict")
@friendly_errors
def predict(
    input: Annotated[
        Path,
        typer.Option(
            "--input",
            help="listings (X_*_update.csv columns): a CSV or Parquet file, or a folder of part files",
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", help="a .csv file, a .parquet file, or a folder (no suffix) for Parquet part files"
        ),
    ],
    images: Annotated[
        Path | None, typer.Option("--images", help="folder of image_<imageid>_product_<productid>.jpg")
    ] = None,
    model_uri: Annotated[str | None, typer.Option(help="default: models:/<model name>@champion")] = None,
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", help="rows read, predicted and written at a time (bounds memory)")
    ] = 10_000,
) -> None:
    """Batch prediction with the champion, streamed: keeps the input's index, adds prdtypecode,
    probability, category, modalities and model_version."""
    from rakuten_mlops.pipelines.predict import predict_file

    with RichProgress() as progress:
        result = predict_file(input, output, get_settings(), images, model_uri, chunk_size, progress)
    console.print(
        f"wrote {result['predicted']} predictions to [bold]{escape(result['output'])}[/] "
        f"({result['format']}) with model {escape(result['model_uri'])} "
        f"(version {escape(result['model_version'])})"
        + (
            f"; {result['rejected']} rows rejected → {escape(result['rejects_path'])}"
            if result["rejected"]
            else ""
        )
    )


@batch_app.command("score")
@friendly_errors
def batch_score(
    input: Annotated[
        str,
        typer.Option(
            "--input", help="listings: a CSV or Parquet file or a folder of part files (Spark: any URI)"
        ),
    ],
    output: Annotated[
        str,
        typer.Option(
            "--output", help="local: as `predict`; spark: a new folder of Parquet partitioned by code"
        ),
    ],
    engine: Annotated[str, typer.Option("--engine", help="local (streamed here) | spark")] = "local",
    master: Annotated[
        str,
        typer.Option("--master", help="Spark master: local[*], local[2], spark://host:7077, k8s://https://…"),
    ] = "local[*]",
    images: Annotated[
        str | None, typer.Option("--images", help="folder of image_<imageid>_product_<productid>.jpg")
    ] = None,
    model_uri: Annotated[str | None, typer.Option(help="default: models:/<model name>@champion")] = None,
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", help="rows per chunk (local) or per Arrow batch (spark)")
    ] = 10_000,
) -> None:
    """Score a catalog with the champion: `--engine local` streams it here (as `predict`),
    `--engine spark` runs the model in Spark executors (mlflow.pyfunc.spark_udf)."""
    from rakuten_mlops.errors import InvalidInputError

    if engine == "local":
        predict(Path(input), Path(output), Path(images) if images else None, model_uri, chunk_size)
        return
    if engine != "spark":
        raise InvalidInputError(f"--engine must be 'local' or 'spark', not {engine!r}")
    from rakuten_mlops.pipelines.spark_scoring import score_with_spark

    result = score_with_spark(input, output, get_settings(), images, model_uri, master, chunk_size)
    console.print(
        f"wrote {result['predicted']} predictions to [bold]{escape(result['output'])}[/] "
        f"({escape(result['format'])}) with model {escape(result['model_uri'])} "
        f"(version {escape(result['model_version'])}) on {escape(result['master'])}"
        + (
            f"; {result['rejected']} rows rejected → {escape(result['rejects_path'])}"
            if result["rejected"]
            else ""
        )
    )


# ---------------------------------------------------------------- models
@models_app.command("list")
@friendly_errors
def models_list() -> None:
    """Registered versions with their metrics, aliases and promotion decisions."""
    from rakuten_mlops.lifecycle.registry import client, configure_mlflow, list_versions

    settings = get_settings()
    configure_mlflow(settings)
    rows = list_versions(client(settings), settings.model_name)
    if not rows:
        console.print(
            f"no version of {settings.model_name} registered yet (run `rakuten-mlops pipeline run`)"
        )
        return
    table = Table(title=settings.model_name)
    for col in ("version", "aliases", "modalities", "gold wF1", "test wF1", "decision", "reasons"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r.version,
            ",".join(r.aliases),
            r.tags.get("modalities", ""),
            r.tags.get("gold_weighted_f1", ""),
            r.tags.get("test_weighted_f1", ""),
            r.tags.get("promotion.decision", ""),
            r.tags.get("promotion.reasons", "")[:90],
        )
    console.print(table)


@models_app.command("promote")
@friendly_errors
def models_promote(
    version: Annotated[str | None, typer.Argument(help="version number to make champion")] = None,
    challenger: Annotated[
        bool,
        typer.Option(
            "--challenger",
            help="promote the challenger if the live rule holds (params.yaml promotion.shadow_*); "
            "otherwise say why not",
        ),
    ] = False,
    params: ParamsOpt = None,
) -> None:
    """Give `champion` to a version by hand, or to the challenger by the live rule (`--challenger`)."""
    from rakuten_mlops.lifecycle.registry import client, configure_mlflow, set_champion
    from rakuten_mlops.pipelines.history import local_user, record_history

    settings = get_settings()
    if challenger == (version is not None):
        raise typer.BadParameter("give a VERSION, or --challenger (not both)")
    if challenger:
        _promote_challenger(settings, resolve_params(params))
        return
    assert version is not None
    configure_mlflow(settings)
    previous = set_champion(client(settings), settings.model_name, version, ["manual promotion"], "manual")
    record_history(
        settings, username=local_user(), action="manual promotion", from_version=previous,
        to_version=version, reasons="manual promotion with `rakuten-mlops models promote`",
    )  # fmt: skip
    console.print(f"version {version} is champion (was {previous or 'none'})")


def _promote_challenger(settings: Any, params: Any) -> None:
    from rakuten_mlops.pipelines.history import local_user, record_history
    from rakuten_mlops.pipelines.monitoring_shadow import promote_challenger

    record = promote_challenger(settings, params)
    if record["promote"]:
        record_history(
            settings, username=local_user(), action="promotion from shadow",
            from_version=record.get("champion_before"), to_version=str(record["version"]),
            reasons="; ".join(record["reasons"]),
        )  # fmt: skip
        console.print(
            f"[green]challenger version {record['version']} is champion[/] (was {record['champion_before']})"
        )
    else:
        console.print(
            f"[yellow]challenger version {record['version']} stays in shadow[/]: the live rule does not hold"
        )
    for reason in record["reasons"]:
        console.print(f"  - {reason}", highlight=False)
    if not record["promote"]:
        raise typer.Exit(code=1)


@models_app.command("challenge")
@friendly_errors
def models_challenge(
    version: Annotated[
        str | None, typer.Argument(help="version to score in shadow beside the champion")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="take the challenger alias away")] = False,
) -> None:
    """Put a version in shadow (`challenger` alias): the API scores it on live traffic, answering no one."""
    from rakuten_mlops.pipelines.monitoring_shadow import challenge, clear_challenge

    settings = get_settings()
    if clear == (version is not None):
        raise typer.BadParameter("give a VERSION, or --clear (not both)")
    if clear:
        previous = clear_challenge(settings)
        console.print(
            f"no challenger now (was version {previous})" if previous else "there was no challenger"
        )
        return
    assert version is not None
    previous = challenge(settings, version)
    console.print(
        f"version {version} is challenger (was {previous or 'none'}): the API scores it in shadow at its "
        "next alias check (`POST /v1/model/reload` now); watch it with `rakuten-mlops monitor live`"
    )


@models_app.command("rollback")
@friendly_errors
def models_rollback() -> None:
    """Give `champion` back to the version the current champion replaced."""
    from rakuten_mlops.lifecycle.registry import client, configure_mlflow, rollback
    from rakuten_mlops.pipelines.history import local_user, record_history

    settings = get_settings()
    configure_mlflow(settings)
    old, new = rollback(client(settings), settings.model_name)
    record_history(
        settings, username=local_user(), action="rollback", from_version=old, to_version=new,
        reasons="rollback with `rakuten-mlops models rollback`",
    )  # fmt: skip
    console.print(f"champion moved from version {old} back to version {new}")


@models_app.command("card")
@friendly_errors
def models_card(
    version: Annotated[str, typer.Argument(help="registered version number")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="save to FILE.md or FILE.html instead of printing")
    ] = None,
) -> None:
    """Print a version's model card (Markdown), or save it as Markdown or self-contained HTML."""
    from rakuten_mlops.errors import InvalidInputError
    from rakuten_mlops.lifecycle.registry import model_card

    kinds = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}
    if not version.isdigit():
        raise InvalidInputError(f"{version!r} is not a version number (see `rakuten-mlops models list`)")
    kind = kinds.get(output.suffix.lower()) if output is not None else "markdown"
    if output is not None and kind is None:
        raise InvalidInputError(f"{output}: the card is saved as .md or .html")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # stdout is the card
    text = model_card(get_settings(), version, kind or "markdown")
    if output is None:
        typer.echo(text)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    console.print(f"wrote the model card of version {version} to [bold]{escape(str(output))}[/]")


# sub-commands from other modules
from rakuten_mlops.cli_extras import register_extras  # noqa: E402

register_extras(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
