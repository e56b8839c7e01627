"""Monitoring routes (read-only, admin): drift reports, live quality over time, retrain decisions.

They serve what `rakuten-mlops monitor check` / `drift` write under the API's home folder and what
the prediction log holds, so that the web UI needs neither the home folder nor the app database.
Admin only: the reports describe the incoming listings, and the series come from every user's
predictions and feedback.
"""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import HTMLResponse

from rakuten_mlops.pipelines import monitoring_live, monitoring_reports
from rakuten_mlops.serving.deps import AdminUser, SettingsDep
from rakuten_mlops.serving.errors import error_responses
from rakuten_mlops.serving.read_schemas import (
    ClassSharePoint,
    DecisionsOut,
    DriftReportsOut,
    LiveF1Point,
    LiveOut,
)

router = APIRouter(prefix="/monitoring", tags=["monitoring"])
FEEDBACK_LIMIT = 20_000
PREDICTIONS_LIMIT = 5_000


@router.get(
    "/drift",
    response_model=DriftReportsOut,
    responses=error_responses(401, 403, 422),
    summary="Drift report summaries, newest first (the first is the latest) (admin)",
)
def drift(
    _: AdminUser,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DriftReportsOut:
    total, reports = monitoring_reports.drift_reports(settings.worker_files, limit, offset)
    return DriftReportsOut(total=total, reports=reports)


@router.get(
    "/drift/{report_id}/report.html",
    response_class=HTMLResponse,
    responses=error_responses(401, 403, 404),
    summary="The full Evidently report of one drift report (admin)",
)
def drift_html(
    report_id: Annotated[str, Path(max_length=121)], _: AdminUser, settings: SettingsDep
) -> HTMLResponse:
    path = monitoring_reports.report_html(settings.worker_files, report_id)
    if path is None:
        raise HTTPException(404, f"drift report {report_id!r} has no report.html")
    return HTMLResponse(path.read_text(encoding="utf-8"))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dict("records")  # type: ignore[return-value]


@router.get(
    "/live",
    response_model=LiveOut,
    responses=error_responses(401, 403, 422),
    summary="Live weighted F1 per model version and predicted classes over time (admin)",
)
def live(_: AdminUser, settings: SettingsDep, days: Annotated[float, Query(gt=0, le=366)] = 30.0) -> LiveOut:
    url = settings.app_database_url
    f1: list[LiveF1Point] = []
    feedback_rows, feedback_error = 0, None
    try:
        over_time = monitoring_live.live_f1_over_time(
            monitoring_live.recent_feedback(url, days, FEEDBACK_LIMIT)
        )
        f1 = [LiveF1Point(**r) for r in _records(over_time)]
        feedback_rows = int(over_time["n"].sum()) if len(over_time) else 0
    except ConnectionError as exc:
        feedback_error = str(exc)
    share: list[ClassSharePoint] = []
    prediction_rows, predictions_error = 0, None
    try:
        counts = monitoring_live.class_share_over_time(
            monitoring_live.recent_predictions(url, PREDICTIONS_LIMIT)
        )
        share = [ClassSharePoint(**r) for r in _records(counts)]
        prediction_rows = int(counts["rows"].sum()) if len(counts) else 0
    except ConnectionError as exc:
        predictions_error = str(exc)
    return LiveOut(
        latest=monitoring_reports.live_latest(settings.worker_files),
        window_days=days,
        f1_over_time=f1,
        feedback_rows=feedback_rows,
        feedback_error=feedback_error,
        class_share=share,
        prediction_rows=prediction_rows,
        predictions_error=predictions_error,
    )


@router.get(
    "/decisions",
    response_model=DecisionsOut,
    responses=error_responses(401, 403, 422),
    summary="The latest retrain decisions and retrain runs, newest first (admin)",
)
def decisions(
    _: AdminUser, settings: SettingsDep, limit: Annotated[int, Query(ge=1, le=200)] = 20
) -> DecisionsOut:
    return DecisionsOut(
        decisions=monitoring_reports.decisions(settings.worker_files, limit),
        retrains=monitoring_reports.retrains(settings.worker_files, limit),
    )
