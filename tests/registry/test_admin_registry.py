"""The registry in the admin: approvers browse, admins edit through the services."""

from __future__ import annotations

import json

from core.models import AuditEvent
from registry.access import default_team
from registry.models import ModelVersion, RegisteredModel
from tests import helpers
from tests.helpers import Unchanged


def _version(data_scientist):
    helpers.create_model(owner=data_scientist)
    return helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)


def test_an_approver_browses_models_and_versions_but_cannot_change_them(
    client, approver, data_scientist
):
    version = _version(data_scientist)
    client.force_login(approver)
    listing = client.get("/admin/registry/registeredmodel/")
    assert listing.status_code == 200
    assert b"churn_prediction" in listing.content
    page = client.get(f"/admin/registry/modelversion/{version.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'data-stage="experiment"' in text
    assert helpers.sha256(helpers.sklearn_bytes()) in text
    assert "download" in text
    assert 'name="description"' not in text  # view-only for an approver
    with Unchanged():
        response = client.post(
            f"/admin/registry/modelversion/{version.pk}/change/", {"description": "hacked"}
        )
    assert response.status_code == 403


def test_an_admin_edits_a_model_in_the_admin_and_it_is_audited(client, admin_user,
                                                               data_scientist):
    helpers.create_model(owner=data_scientist)
    model = RegisteredModel.objects.get()
    client.force_login(admin_user)
    response = client.post(
        f"/admin/registry/registeredmodel/{model.pk}/change/",
        {"task_type": "classification", "description": "Members at risk",
         "owner": data_scientist.pk, "tags": "Members, churn", "team": default_team().pk,
         "versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    model.refresh_from_db()
    assert model.description == "Members at risk"
    assert model.tags == ["churn", "members"]
    event = AuditEvent.objects.get(action="model.updated")
    assert event.actor == admin_user
    assert json.loads(event.after)["tags"] == ["churn", "members"]


def test_an_admin_creates_a_model_in_the_admin(client, admin_user, data_scientist):
    client.force_login(admin_user)
    response = client.post(
        "/admin/registry/registeredmodel/add/",
        {"name": "segments", "task_type": "clustering", "description": "",
         "owner": data_scientist.pk, "tags": "", "team": default_team().pk,
         "versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0"},
    )
    assert response.status_code == 302
    assert RegisteredModel.objects.get(name="segments").owner == data_scientist
    assert AuditEvent.objects.filter(action="model.created").count() == 1


def test_a_bad_name_in_the_admin_is_a_form_error(client, admin_user, data_scientist):
    client.force_login(admin_user)
    with Unchanged():
        response = client.post(
            "/admin/registry/registeredmodel/add/",
            {"name": "../evil", "task_type": "clustering", "owner": data_scientist.pk, "team": default_team().pk,
             "versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0"},
        )
    assert response.status_code == 200
    assert b"errorlist" in response.content


def test_versions_cannot_be_added_or_deleted_in_the_admin(client, admin_user, data_scientist):
    version = _version(data_scientist)
    client.force_login(admin_user)
    assert client.get("/admin/registry/modelversion/add/").status_code == 403
    with Unchanged():
        assert client.post(f"/admin/registry/modelversion/{version.pk}/delete/",
                           {"post": "yes"}).status_code == 403
    assert ModelVersion.objects.filter(pk=version.pk).exists()
