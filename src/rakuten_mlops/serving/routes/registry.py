"""Registry routes (read-only): registered versions, their metrics, tags, per-class F1, confusion matrix.

Any logged-in user may read them (the Models page shows them to everyone); nothing internal leaves:
no run id, no artifact or model location, the registry URI without its password. Promoting and
rolling back stay admin routes under /v1/model.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import Response

from rakuten_mlops.config import Settings
from rakuten_mlops.lifecycle import registry
from rakuten_mlops.serving.deps import CurrentUser, SettingsDep
from rakuten_mlops.serving.errors import error_responses
from rakuten_mlops.serving.read_schemas import ClassF1, VersionDetailOut, VersionOut, VersionsOut

router = APIRouter(prefix="/models", tags=["registry"])
VersionPath = Annotated[str, Path(pattern=r"^[0-9]{1,9}$", description="a registered version number")]


def _rows(settings: Settings) -> list[registry.VersionRow]:
    try:
        return registry.versions_with_champion(settings)
    except Exception as exc:  # MLflow raises many kinds when its store does not answer
        raise HTTPException(
            503, f"the model registry cannot be read ({exc.__class__.__name__}); retry later"
        ) from None


def _version_out(row: registry.VersionRow) -> VersionOut:
    created = dt.datetime.fromtimestamp(row.created / 1000, dt.UTC) if row.created else None
    metrics = {k: float(v) for k, v in row.metrics.items()}
    return VersionOut(
        version=row.version, aliases=row.aliases, created_at=created, tags=row.tags, metrics=metrics
    )


def _find(settings: Settings, version: str) -> registry.VersionRow:
    row = next((r for r in _rows(settings) if r.version == version), None)
    if row is None:
        raise HTTPException(404, f"model {settings.model_name!r} has no version {version}")
    return row


@router.get(
    "/versions",
    response_model=VersionsOut,
    responses=error_responses(401, 403, 422, 503),
    summary="Registered versions, newest first, with their metrics and promotion decisions",
)
def list_versions(
    _: CurrentUser,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> VersionsOut:
    rows = _rows(settings)
    champion = next((r.version for r in rows if registry.CHAMPION in r.aliases), None)
    return VersionsOut(
        model_name=settings.model_name,
        registry=registry.redact(settings.registry_uri),
        total=len(rows),
        champion=champion,
        versions=[_version_out(r) for r in rows[offset : offset + limit]],
    )


@router.get(
    "/champion",
    response_model=VersionOut,
    responses=error_responses(401, 403, 404, 503),
    summary="The version holding the champion alias (404 before the first promotion)",
)
def get_champion(_: CurrentUser, settings: SettingsDep) -> VersionOut:
    row = next((r for r in _rows(settings) if registry.CHAMPION in r.aliases), None)
    if row is None:
        raise HTTPException(
            404,
            f"no version of {settings.model_name!r} holds the champion alias yet: "
            "train one with `rakuten-mlops pipeline run`",
        )
    return _version_out(row)


@router.get(
    "/versions/{version}",
    response_model=VersionDetailOut,
    responses=error_responses(401, 403, 404, 422, 503),
    summary="One version: metrics, tags, per-class F1 and whether a confusion matrix was logged",
)
def get_version(version: VersionPath, _: CurrentUser, settings: SettingsDep) -> VersionDetailOut:
    row = _find(settings, version)
    return VersionDetailOut(
        **_version_out(row).model_dump(),
        per_class_f1=[ClassF1(code=code, f1=f1) for code, f1 in registry.per_class_f1(row)],
        confusion_matrix=registry.confusion_artifact(settings, row.run_id),
    )


@router.get(
    "/versions/{version}/confusion.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, **error_responses(401, 403, 404, 422, 503)},
    summary="The test-set confusion matrix logged with the version's run (PNG)",
)
def get_confusion(version: VersionPath, _: CurrentUser, settings: SettingsDep) -> Response:
    row = _find(settings, version)
    image = registry.confusion_image(settings, row.run_id)
    if image is None:
        raise HTTPException(404, f"version {version}'s run logged no confusion matrix")
    return Response(image[0], media_type="image/png", headers={"X-Artifact-Path": image[1]})


CARD_TYPES = {"markdown": "text/markdown; charset=utf-8", "html": "text/html; charset=utf-8"}
# The HTML card is inert: no script, no external resource, only its own inline style.
CARD_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


@router.get(
    "/versions/{version}/card",
    response_class=Response,
    responses={
        200: {"content": {"text/markdown": {}, "text/html": {}}},
        **error_responses(401, 403, 404, 422, 503),
    },
    summary="The version's model card: data, metrics, weakest classes, confusions, gate decision, cost",
)
def get_card(
    version: VersionPath,
    _: CurrentUser,
    settings: SettingsDep,
    fmt: Annotated[
        Literal["markdown", "html"], Query(alias="format", description="markdown or html")
    ] = "markdown",
) -> Response:
    try:
        text = registry.model_card(settings, version, fmt)
    except registry.RegistryError as exc:  # an unknown version, or one without a card
        raise HTTPException(404, str(exc)) from None
    except Exception as exc:  # MLflow raises many kinds when its store does not answer
        raise HTTPException(
            503, f"the model registry cannot be read ({exc.__class__.__name__}); retry later"
        ) from None
    headers = {"Content-Security-Policy": CARD_CSP, "X-Content-Type-Options": "nosniff"}
    return Response(text, media_type=CARD_TYPES[fmt], headers=headers)
