"""CLI of monitoring and continuous training: `drift`, `monitor check|live|retrain|export`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from rakuten_mlops.cli_support import (
    JsonOpt,
    ParamsOpt,
    RichProgress,
    StreamsOpt,
    console,
    friendly_errors,
    print_json,
    resolve_params,
)
from rakuten_mlops.config import Params, get_settings

monitor_app = typer.Typer(help="Drift, live quality and the retrain decision.", no_args_is_help=True)


# ---------------------------------------------------------------- drift
@friendly_errors
def drift_command(
    reference: Annotated[
        str | None,
        typer.Option(help="data folder, .parquet or X_*.csv (default: the champion's training data)"),
    ] = None,
    current: Annotated[
        str | None,
        typer.Option(help="data folder, .parquet, X_*.csv or 'predictions[:N]' (default: the current batch)"),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="report folder (default <home>/monitoring/drift/...)")
    ] = None,
    params_path: ParamsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Drift report (Evidently): text, lengths, empty descriptions, language, images, predictions, labels."""
    from rakuten_mlops.pipelines.monitoring import drift_report

    summary = drift_report(reference, current, out, get_settings(), resolve_params(params_path))
    if as_json:
        print_json(summary)
    else:
        _print_drift(summary)


def _print_drift(summary: dict[str, Any]) -> None:
    table = Table(title=summary.get("title", "drift"))
    for col in ("column", "test", "score", "threshold", "drift"):
        table.add_column(col)
    for col, info in summary["columns"].items():
        score = info["score"]
        table.add_row(
            col,
            str(info["test"]),
            f"{score:.4g}" if score is not None else "-",
            f"{info['threshold']:.4g}",
            "[bold red]yes[/]" if info["drifted"] else "no",
        )
    console.print(table)
    _print_reference(summary.get("reference") or {})
    for col, why in summary.get("skipped_columns", {}).items():
        console.print(f"  skipped {col}: {why}", highlight=False)
    console.print(
        f"drift share [bold]{summary['drift_share']:.2f}[/] ({summary['n_drifted']}/{summary['n_columns']}); "
        f"report: {summary.get('html_path')}",
        highlight=False,
    )


def _print_reference(reference: dict[str, Any]) -> None:
    if reference.get("source"):
        console.print(f"reference: {reference['source']}", highlight=False)
    if reference.get("warning"):
        console.print(f"[bold red]warning: the drift reference is {reference['warning']}[/]", highlight=False)


# ---------------------------------------------------------------- monitor
@monitor_app.command("check")
@friendly_errors
def monitor_check_command(
    streams_dir: StreamsOpt = None,
    reference: Annotated[
        str | None, typer.Option(help="drift reference (default: champion's training data)")
    ] = None,
    current: Annotated[str | None, typer.Option(help="current data (default: the current batch)")] = None,
    retrain: Annotated[
        bool, typer.Option("--retrain", help="run the pipeline on the pool when the decision says so")
    ] = False,
    params_path: ParamsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Drift report + live F1 + new data → retrain decision with reasons (printed and recorded)."""
    from rakuten_mlops.pipelines.monitoring import monitor_check

    settings, params = get_settings(), resolve_params(params_path)
    if streams_dir is not None and current is None:
        from rakuten_mlops.simulation.replay.steps import current_batch_dir

        current = str(current_batch_dir(streams_dir))
    record = monitor_check(settings, params, streams_dir, reference, current)
    result: dict[str, Any] = {"decision": record}
    if retrain and record["retrain"]:
        result["retrain"] = _run_retrain(streams_dir, settings, params)
    if as_json:
        print_json(result)
        return
    drift = record.get("drift") or {}
    drifted = ", ".join(drift.get("drifted_columns") or []) or "none"
    share = drift.get("drift_share", 0)
    console.print(
        f"drift share {share:.2f}; drifted: {drifted}; report: {record.get('report_html')}", highlight=False
    )
    _print_reference(drift.get("reference") or {})
    verdict = "[bold red]RETRAIN[/]" if record["retrain"] else "[bold green]no retrain[/]"
    console.print(f"decision: {verdict}")
    for reason in record["reasons"]:
        console.print(f"  - {reason}", highlight=False)
    if "retrain" in result:
        r = result["retrain"]
        console.print(
            f"retrained on data version {r['data_hash']}: version {r['registered_version']} "
            f"{'promoted' if r['promoted'] else 'not promoted'} ({'; '.join(r['promotion_reasons'])})"
        )


def _run_retrain(streams_dir: Path | None, settings: Any, params: Params) -> dict[str, Any]:
    from rakuten_mlops.pipelines.monitoring import retrain

    with RichProgress() as progress:
        return retrain(streams_dir, settings, params, progress)


@monitor_app.command("retrain")
@friendly_errors
def monitor_retrain_command(
    streams_dir: StreamsOpt = None, params_path: ParamsOpt = None, as_json: JsonOpt = False
) -> None:
    """Run the training pipeline on the streams pool; the promotion gate decides the champion."""
    result = _run_retrain(streams_dir, get_settings(), resolve_params(params_path))
    if as_json:
        print_json(result)
    else:
        console.print(
            f"version {result['registered_version']} {'promoted' if result['promoted'] else 'not promoted'}: "
            + "; ".join(result["promotion_reasons"])
        )


@monitor_app.command("live")
@friendly_errors
def monitor_live_command(params_path: ParamsOpt = None, as_json: JsonOpt = False) -> None:
    """Weighted F1 and accuracy per model version over the feedback window."""
    from rakuten_mlops.pipelines.monitoring import live_performance

    live = live_performance(get_settings(), resolve_params(params_path))
    if as_json:
        print_json(live)
        return
    table = Table(title=f"live quality, last {live.get('window_days', '?')} days")
    for col in ("model version", "feedback", "weighted F1", "accuracy"):
        table.add_column(col)
    for version, s in live.get("versions", {}).items():
        table.add_row(version, str(s["n"]), f"{s['weighted_f1']:.3f}", f"{s['accuracy']:.3f}")
    console.print(table)
    if live.get("error"):
        console.print(f"[yellow]warning:[/] {live['error']}", highlight=False)
    _print_shadow(live.get("shadow") or {})


def _f(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _print_shadow(shadow: dict[str, Any]) -> None:
    """The challenger against the champion on the same listings (what `promote --challenger` judges)."""
    if shadow.get("error"):
        console.print(f"[yellow]warning:[/] {shadow['error']}", highlight=False)
    comparisons = shadow.get("comparisons") or []
    if not comparisons:
        if shadow.get("challenger_version"):
            console.print(f"challenger version {shadow['challenger_version']}: no shadow prediction yet")
        return
    table = Table(title=f"challenger in shadow (current: {shadow.get('challenger_version') or 'none'})")
    for col in (
        "challenger", "champion", "listings", "agreement", "confidence chal/champ", "feedback",
        "live wF1 chal/champ", "top classes chal / champ",
    ):  # fmt: skip
        table.add_column(col)
    for c in comparisons:
        top = [
            ",".join(sorted(c[f"{role}_class_mix"], key=c[f"{role}_class_mix"].get, reverse=True)[:3])
            for role in ("challenger", "champion")
        ]
        table.add_row(
            c["challenger_version"], c["champion_version"], str(c["predictions"]), _f(c["agreement"]),
            f"{_f(c['challenger_confidence'])} / {_f(c['champion_confidence'])}", str(c["feedback"]),
            f"{_f(c['challenger_f1'])} / {_f(c['champion_f1'])}", " / ".join(top),
        )  # fmt: skip
    console.print(table)
    rule = shadow.get("rule") or {}
    console.print(
        f"promotion rule: ≥ {rule.get('shadow_min_feedback')} listings with feedback and live wF1 ≥ "
        f"champion's − {rule.get('shadow_f1_tolerance')} (`rakuten-mlops models promote --challenger`)",
        highlight=False,
    )


@monitor_app.command("export")
@friendly_errors
def monitor_export_command(
    port: Annotated[int, typer.Option(help="port of the /metrics endpoint")] = 9108,
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    interval: Annotated[
        float | None,
        typer.Option(
            help="seconds between live-quality refreshes (default: monitoring.live.refresh_seconds)"
        ),
    ] = None,
    params_path: ParamsOpt = None,
) -> None:
    """Serve the monitoring metrics (drift, live F1, decisions) for Prometheus, without the API."""
    import time

    from prometheus_client import CollectorRegistry, start_http_server

    from rakuten_mlops.pipelines.monitoring import live_performance
    from rakuten_mlops.serving.exporter import MonitoringCollector

    settings, params = get_settings(), resolve_params(params_path)
    every = params.monitoring.live.refresh_seconds if interval is None else interval
    registry = CollectorRegistry(auto_describe=True)
    registry.register(MonitoringCollector(settings.home))
    start_http_server(port, addr=host, registry=registry)
    console.print(f"exporting monitoring metrics on http://{host}:{port}/metrics (Ctrl+C to stop)")
    try:
        while True:
            if every > 0:
                live_performance(settings, params)  # recorded; the collector reads it on the next scrape
            time.sleep(every if every > 0 else 3600)
    except KeyboardInterrupt:
        pass
