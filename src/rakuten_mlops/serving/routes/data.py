"""Training data routes (read-only): which data sets exist, their class and length summaries, examples.

Any logged-in user may read them (the Data page shows them to everyone). Only summaries leave,
plus at most 8 example listings (with their images) per request: never a data set in bulk.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from rakuten_mlops.categories import CODES
from rakuten_mlops.config import Settings
from rakuten_mlops.lifecycle.registry import champion_version
from rakuten_mlops.pipelines import training_data
from rakuten_mlops.serving.deps import CurrentUser, SettingsDep
from rakuten_mlops.serving.errors import error_responses
from rakuten_mlops.serving.read_schemas import (
    ClassCount,
    DataSourceOut,
    DataSourcesOut,
    DataSummaryOut,
    ExampleImage,
    ExamplesOut,
    LengthBand,
)

router = APIRouter(prefix="/data", tags=["data"])
SourcePath = Annotated[str, Path(pattern=r"^[a-z0-9-]{1,40}$", description="an id from GET /v1/data/sources")]


def _out(source: training_data.DataSource) -> DataSourceOut:
    return DataSourceOut(id=source.id, label=source.label, kind=source.kind, location=str(source.path))


def _source(settings: Settings, source_id: str) -> training_data.DataSource:
    source = training_data.find_source(settings.worker_files, source_id, champion_version(settings))
    if source is None:
        raise HTTPException(404, f"no training data {source_id!r}: GET /v1/data/sources lists what exists")
    return source


@router.get(
    "/sources",
    response_model=DataSourcesOut,
    responses=error_responses(401, 403),
    summary="The training data sets the API can summarise (splits, champion rows, streams pool)",
)
def sources(_: CurrentUser, settings: SettingsDep) -> DataSourcesOut:
    champion = champion_version(settings)
    return DataSourcesOut(
        champion=champion,
        pipeline_version=training_data.pipeline_version(settings.worker_files),
        sources=[_out(s) for s in training_data.data_sources(settings.worker_files, champion)],
    )


@router.get(
    "/sources/{source_id}/summary",
    response_model=DataSummaryOut,
    responses=error_responses(401, 403, 404, 422),
    summary="Rows, class distribution and text lengths of one training data set",
)
def summary(source_id: SourcePath, _: CurrentUser, settings: SettingsDep) -> DataSummaryOut:
    source = _source(settings, source_id)
    frame = training_data.load_source(source.path)
    counts = training_data.class_counts(frame)
    return DataSummaryOut(
        source=_out(source),
        listings=len(frame),
        classes=len(counts),
        empty_description_share=training_data.empty_description_share(frame),
        median_chars=training_data.median_lengths(frame),
        class_counts=[ClassCount(**r) for r in counts.to_dict("records")],  # type: ignore[arg-type]
        lengths=[LengthBand(**r) for r in training_data.length_histogram(frame).to_dict("records")],  # type: ignore[arg-type]
    )


@router.get(
    "/sources/{source_id}/examples",
    response_model=ExamplesOut,
    responses=error_responses(401, 403, 404, 422),
    summary="Up to n listings of one class (a seeded sample) with their images",
)
def examples(
    source_id: SourcePath,
    _: CurrentUser,
    settings: SettingsDep,
    code: Annotated[int, Query(description="a product type code")],
    n: Annotated[int, Query(ge=1, le=8)] = 8,
) -> ExamplesOut:
    if code not in CODES:
        raise HTTPException(422, f"{code} is not one of the 27 product type codes")
    frame = training_data.load_source(_source(settings, source_id).path)
    rows = training_data.examples(frame, code, n)
    columns = [c for c in training_data.EXAMPLE_COLUMNS if c in rows.columns]
    images = training_data.example_images(rows, settings.max_image_bytes)
    return ExamplesOut(
        code=code,
        rows=rows[columns].astype(object).where(rows[columns].notna(), None).to_dict("records"),  # type: ignore[arg-type]
        images=[ExampleImage(**i) for i in images],
    )
