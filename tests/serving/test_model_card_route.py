"""GET /v1/models/versions/{v}/card: the card logged with the version, for any logged-in user."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from rakuten_mlops.lifecycle import registry
from rakuten_mlops.serving.app import create_app


@pytest.fixture(scope="module")
def client(make_settings, kit) -> Iterator[tuple[TestClient, dict[str, str], object]]:
    settings = make_settings()
    kit.add_user(settings, "alice")
    with TestClient(create_app(settings)) as c:
        yield c, kit.bearer(kit.login(c, "alice")), settings


def test_the_card_in_markdown_and_html_is_the_one_logged(client, champion):
    c, headers, settings = client
    md = c.get(f"/v1/models/versions/{champion.version}/card", headers=headers)
    assert md.status_code == 200, md.text
    assert md.headers["content-type"].startswith("text/markdown")
    assert md.text == registry.model_card(settings, champion.version)
    assert md.text.startswith(f"# Model card: {champion.model_name} version {champion.version}")
    for section in (
        "## Data",
        "## Class distribution",
        "weakest classes",
        "## Promotion gate",
        "## Training cost",
    ):
        assert section in md.text
    page = c.get(f"/v1/models/versions/{champion.version}/card?format=html", headers=headers)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text.startswith("<!DOCTYPE html>")
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_the_card_needs_a_token(client, champion):
    c, _, _ = client
    r = c.get(f"/v1/models/versions/{champion.version}/card")
    assert r.status_code == 401 and r.json()["detail"]


def test_unknown_version_404_bad_version_or_format_422(client):
    c, headers, _ = client
    r = c.get("/v1/models/versions/999/card", headers=headers)
    assert r.status_code == 404 and "has no version 999" in r.json()["detail"]
    assert c.get("/v1/models/versions/1a/card", headers=headers).status_code == 422
    r = c.get("/v1/models/versions/1/card?format=pdf", headers=headers)
    assert r.status_code == 422
