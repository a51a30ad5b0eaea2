"""Registered models over the REST API: create, list, filter, read, change; who may do what."""

from __future__ import annotations

import json

import pytest

from core.models import AuditEvent
from registry.models import RegisteredModel
from tests import helpers
from tests.helpers import Unchanged

URL = "/api/v1/models/"


def test_a_data_scientist_creates_a_model_and_owns_it(api, data_scientist):
    response = api(data_scientist).post(
        URL,
        {"name": "overdue_prediction", "task_type": "classification",
         "description": "Late returns", "tags": ["loans", "Loans", "risk"]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["owner"] == "dana"
    assert body["tags"] == ["loans", "risk"]
    assert body["version_count"] == 0
    assert body["latest_version"] is None
    assert response["Location"].endswith("/api/v1/models/overdue_prediction/")
    event = AuditEvent.objects.get(action="model.created")
    assert event.actor == data_scientist
    assert json.loads(event.after)["name"] == "overdue_prediction"


def test_a_duplicate_name_is_a_conflict(api, data_scientist, churn_model):
    with Unchanged():
        response = api(data_scientist).post(
            URL, {"name": "churn_prediction", "task_type": "regression"}, format="json"
        )
    assert response.status_code == 409
    assert "name" in response.json()["errors"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [({"name": "x", "task_type": "astrology"}, "task_type"),
     ({"task_type": "regression"}, "name"),
     ({"name": "x" * 65, "task_type": "regression"}, "name"),
     ({"name": "ok", "task_type": "regression", "tags": ["no spaces"]}, "tags"),
     ({"name": "ok", "task_type": "regression", "stage": "production"}, "stage")],
)
def test_bad_model_fields_are_named(api, data_scientist, payload, field):
    with Unchanged():
        response = api(data_scientist).post(URL, payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_only_an_admin_registers_a_model_for_someone_else(
    api, data_scientist, other_data_scientist, admin_user
):
    payload = {"name": "segments", "task_type": "clustering", "owner": "sam"}
    with Unchanged():
        assert api(data_scientist).post(URL, payload, format="json").status_code == 403
    response = api(admin_user).post(URL, payload, format="json")
    assert response.status_code == 201
    assert response.json()["owner"] == "sam"


def test_viewers_and_approvers_cannot_create_models(api, viewer, approver, outsider):
    payload = {"name": "segments", "task_type": "clustering"}
    with Unchanged():
        for person in (viewer, approver, outsider):
            assert api(person).post(URL, payload, format="json").status_code == 403
        assert api().post(URL, payload, format="json").status_code == 401


def test_the_list_shows_latest_and_production_versions(api, viewer, data_scientist, churn_model):

    first = helpers.register_direct("churn_prediction", "1.2.0", actor=data_scientist)
    helpers.register_direct("churn_prediction", "1.10.0-rc.1", actor=data_scientist)
    helpers.register_direct("churn_prediction", "1.9.3", actor=data_scientist)
    helpers.force_stage(first, "production")
    helpers.create_model(owner=data_scientist, name="demand", task_type="forecasting")

    response = api(viewer).get(URL)
    assert response.status_code == 200
    rows = {row["name"]: row for row in response.json()["results"]}
    assert rows["churn_prediction"]["latest_version"] == "1.10.0-rc.1"
    assert rows["churn_prediction"]["production_version"] == "1.2.0"
    assert rows["churn_prediction"]["version_count"] == 3
    assert rows["demand"]["version_count"] == 0

    filtered = api(viewer).get(URL + "?task_type=forecasting").json()["results"]
    assert [row["name"] for row in filtered] == ["demand"]
    by_owner = api(viewer).get(URL + "?owner=dana&ordering=-name").json()["results"]
    assert [row["name"] for row in by_owner] == ["demand", "churn_prediction"]


def test_models_filter_by_tag_and_name(api, viewer, data_scientist):
    from registry import services

    services.model_create(name="a_model", task_type="ranking", owner=data_scientist,
                          actor=data_scientist, tags=["books"])
    services.model_create(name="b_model", task_type="ranking", owner=data_scientist,
                          actor=data_scientist)
    assert [r["name"] for r in api(viewer).get(URL + "?tag=books").json()["results"]] == [
        "a_model"
    ]
    assert [r["name"] for r in api(viewer).get(URL + "?name=B_").json()["results"]] == ["b_model"]


def test_models_filter_by_the_stage_and_framework_of_their_versions(api, viewer,
                                                                   data_scientist):
    from tests import helpers

    for name in ("a_model", "b_model"):
        helpers.create_model(owner=data_scientist, name=name)
    for version in ("1.0.0", "1.1.0"):
        helpers.register_direct("a_model", version, actor=data_scientist)
    helpers.register_direct("b_model", "1.0.0", actor=data_scientist, framework="torch",
                            data=helpers.torchscript_bytes(), filename="model.pt")
    helpers.force_stage(helpers.register_direct("b_model", "1.1.0", actor=data_scientist),
                        "staging")

    def names(query):
        response = api(viewer).get(URL + query)
        assert response.status_code == 200, response.json()
        return [row["name"] for row in response.json()["results"]]

    assert names("?framework=sklearn") == ["a_model", "b_model"]  # each listed once
    assert names("?framework=torch") == ["b_model"]
    assert names("?stage=staging") == ["b_model"]
    assert names("?stage=production") == []
    assert api(viewer).get(URL + "?stage=deployed").status_code == 400


def test_a_model_detail_is_read_by_any_role_but_not_an_outsider(
    api, churn_model, viewer, approver, outsider
):
    for person in (viewer, approver):
        assert api(person).get(URL + "churn_prediction/").status_code == 200
    assert api(outsider).get(URL + "churn_prediction/").status_code == 403
    assert api(viewer).get(URL + "nothing/").status_code == 404


def test_the_owner_changes_the_description_and_it_is_audited(api, data_scientist, churn_model):
    response = api(data_scientist).patch(
        URL + "churn_prediction/", {"description": "Members at risk", "tags": ["members"]},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["description"] == "Members at risk"
    event = AuditEvent.objects.get(action="model.updated")
    assert json.loads(event.before) == {"description": "", "tags": []}
    assert json.loads(event.after) == {"description": "Members at risk", "tags": ["members"]}


def test_another_data_scientist_cannot_change_someone_elses_model(
    api, other_data_scientist, churn_model
):
    with Unchanged():
        response = api(other_data_scientist).patch(
            URL + "churn_prediction/", {"description": "mine now"}, format="json"
        )
    assert response.status_code == 403


def test_an_owner_cannot_hand_the_model_over_but_an_admin_can(
    api, data_scientist, other_data_scientist, admin_user, churn_model
):
    with Unchanged():
        response = api(data_scientist).patch(
            URL + "churn_prediction/", {"owner": "sam"}, format="json"
        )
    assert response.status_code == 403
    response = api(admin_user).patch(URL + "churn_prediction/", {"owner": "sam"}, format="json")
    assert response.status_code == 200
    assert RegisteredModel.objects.get(name="churn_prediction").owner == other_data_scientist


@pytest.mark.parametrize("change", [{"name": "renamed"}, {"created_at": "2020-01-01"},
                                    {"task_type": "astrology"}])
def test_a_model_patch_of_a_fixed_or_bad_field_changes_nothing(
    api, data_scientist, churn_model, change
):
    with Unchanged():
        response = api(data_scientist).patch(URL + "churn_prediction/", change, format="json")
    assert response.status_code == 400
    assert next(iter(change)) in response.json()["errors"]


def test_the_api_root_lists_the_endpoints(api, viewer):
    body = api(viewer).get("/api/v1/").json()
    assert body["models"].endswith("/api/v1/models/")
    assert body["token"].endswith("/api/v1/auth/token/")
    assert body["inventory"].endswith("/api/v1/inventory/")


def test_jwt_token_and_refresh(api, data_scientist):
    client = api()
    response = client.post(
        "/api/v1/auth/token/", {"username": "dana", "password": helpers.PASSWORD}, format="json"
    )
    assert response.status_code == 200
    tokens = response.json()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert client.get(URL).status_code == 200
    refreshed = api().post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]},
                           format="json")
    assert refreshed.status_code == 200
    assert "access" in refreshed.json()
    wrong = api().post("/api/v1/auth/token/", {"username": "dana", "password": "nope"},
                       format="json")
    assert wrong.status_code == 401


def test_a_forged_token_is_refused(api, data_scientist):
    client = api()
    client.credentials(HTTP_AUTHORIZATION="Bearer abc.def.ghi")
    assert client.get(URL).status_code == 401
