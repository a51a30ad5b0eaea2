"""/health/ checks the database, the cache, the broker and the store; the API is documented."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml  # drf-spectacular depends on PyYAML


@pytest.mark.django_db
def test_health_reports_every_component_ok(client):
    response = client.get("/health/?format=json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body.values()) == {"OK"}
    names = " ".join(body)
    for component in ("Database", "Cache", "ArtifactStore", "Broker"):
        assert component in names


@pytest.mark.django_db
def test_health_fails_when_the_store_is_missing_and_says_so_without_a_path(client, store_root):
    shutil.rmtree(Path(store_root) / "production")
    response = client.get("/health/?format=json")
    assert response.status_code == 500
    text = response.content.decode()
    assert "production" in text
    assert str(store_root) not in text


@pytest.mark.django_db
def test_health_fails_when_the_broker_is_unreachable(client, settings):
    from config.celery import app

    original = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        response = client.get("/health/?format=json")
    finally:
        app.conf.broker_url = original
    assert response.status_code == 500
    assert "broker is unreachable" in response.content.decode()


def test_the_openapi_schema_describes_the_registry(api, viewer):
    response = api(viewer).get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    paths = schema["paths"]
    assert "/api/v1/models/{name}/versions/" in paths
    upload = paths["/api/v1/models/{name}/versions/"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload
    assert "/api/v1/auth/token/" in paths


def test_the_schema_and_docs_need_a_login(client, db):
    assert client.get("/api/schema/").status_code in (401, 403)
    response = client.get("/api/docs/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_schema_needs_a_role_not_only_a_login(api, outsider):
    assert api(outsider).get("/api/schema/").status_code == 403


def test_the_docs_page_renders_for_a_logged_in_user(client, viewer):
    client.force_login(viewer)
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger-ui" in response.content


def test_schema_generation_has_no_warnings(capsys):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


def test_the_schema_says_which_fields_may_be_null(api, viewer):
    """Generated clients break on a null the schema does not allow (issue 12)."""
    schema = yaml.safe_load(api(viewer).get("/api/schema/").content)
    components = schema["components"]["schemas"]
    for component, field in [("ApprovalRequest", "production"), ("ApprovalRequest", "deployment"),
                             ("ApprovalRequest", "validation"), ("AuditEvent", "before"),
                             ("AuditEvent", "after")]:
        assert components[component]["properties"][field].get("nullable") is True, (
            component, field)
