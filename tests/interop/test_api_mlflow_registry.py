"""MLflow's Model Registry REST API: shapes, errors, who sees what (dana and april are the
owning team `loans`; sam is in `growth`; olly holds no role; the service account reads the
model by grant)."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from core.models import AuditEvent
from registry.models import ModelVersion
from tests import helpers
from tests.interop.conftest import MLFLOW, MODEL


def _get(client, endpoint, **params):
    return client.get(MLFLOW + endpoint, params)


def _error(response, status, code):
    assert response.status_code == status, (response.status_code, response.content[:400])
    body = response.json()
    assert set(body) >= {"error_code", "message"} and body["error_code"] == code, body
    return body["message"]


def _tags(entity) -> dict:
    return {tag["key"]: tag["value"] for tag in entity["tags"]}


def test_search_registered_models_answers_in_mlflows_shape(api, data_scientist, versions):
    response = _get(api(data_scientist), "registered-models/search", max_results=10)
    assert response.status_code == 200, response.json()
    [model] = response.json()["registered_models"]
    assert model["name"] == MODEL
    assert model["user_id"] == "dana"
    assert isinstance(model["creation_timestamp"], int)
    assert model["last_updated_timestamp"] >= model["creation_timestamp"]
    assert model["aliases"] == [{"alias": "champion", "version": "1"},
                                {"alias": "production", "version": "1"}]
    assert _tags(model)["team"] == "loans"
    latest = {v["current_stage"]: v["version"] for v in model["latest_versions"]}
    assert latest == {"Staging": "2", "Production": "1"}
    assert response.json()["next_page_token"] == ""


def test_search_takes_mlflows_filters_and_pages(api, data_scientist, versions):
    client = api(data_scientist)
    helpers.create_model(owner=data_scientist, name="demand_forecast", task_type="regression")
    # What MlflowClient adds to every search: prompts are excluded, and we have none.
    prompt_filter = "tag.`mlflow.prompt.is_prompt` != 'true'"
    names = [m["name"] for m in _get(client, "registered-models/search",
                                     filter=prompt_filter).json()["registered_models"]]
    assert names == ["churn_prediction", "demand_forecast"]
    found = _get(client, "registered-models/search",
                 filter=f"name LIKE 'churn%' AND {prompt_filter}").json()["registered_models"]
    assert [m["name"] for m in found] == ["churn_prediction"]
    first = _get(client, "registered-models/search", max_results=1,
                 order_by="name DESC").json()
    assert [m["name"] for m in first["registered_models"]] == ["demand_forecast"]
    second = _get(client, "registered-models/search", max_results=1, order_by="name DESC",
                  page_token=first["next_page_token"]).json()
    assert [m["name"] for m in second["registered_models"]] == ["churn_prediction"]
    assert second["next_page_token"] == ""


@pytest.mark.parametrize(("params", "field"), [
    ({"filter": "name = churn"}, "filter"),
    ({"filter": "owner = 'dana'"}, "filter"),
    ({"order_by": "size DESC"}, "order_by"),
    ({"max_results": "0"}, "max_results"),
    ({"page_token": "!!"}, "page_token"),
])
def test_a_bad_search_is_an_invalid_parameter_naming_it(api, data_scientist, versions, params,
                                                         field):
    message = _error(_get(api(data_scientist), "registered-models/search", **params), 400,
                     "INVALID_PARAMETER_VALUE")
    assert message.startswith(f"{field}:")


def test_get_registered_model_and_a_missing_one(api, data_scientist, versions):
    client = api(data_scientist)
    body = _get(client, "registered-models/get", name=MODEL).json()
    assert body["registered_model"]["name"] == MODEL
    assert "not found" in _error(_get(client, "registered-models/get", name="nope"), 404,
                                 "RESOURCE_DOES_NOT_EXIST")
    _error(_get(client, "registered-models/get"), 400, "INVALID_PARAMETER_VALUE")


def test_get_latest_versions_by_mlflow_stage_as_the_client_posts_it(api, data_scientist,
                                                                     versions):
    client = api(data_scientist)
    response = client.post(MLFLOW + "registered-models/get-latest-versions",
                           {"name": MODEL, "stages": ["production"]}, format="json")
    assert response.status_code == 200, response.json()
    [version] = response.json()["model_versions"]
    assert (version["version"], version["current_stage"]) == ("1", "Production")
    every = client.post(MLFLOW + "registered-models/get-latest-versions", {"name": MODEL},
                        format="json").json()["model_versions"]
    assert sorted(v["version"] for v in every) == ["1", "2"]
    _error(client.post(MLFLOW + "registered-models/get-latest-versions",
                       {"name": MODEL, "stages": ["Live"]}, format="json"),
           400, "INVALID_PARAMETER_VALUE")


def test_get_model_version_has_the_number_the_semver_tag_and_the_mapped_stage(
        api, data_scientist, versions):
    client = api(data_scientist)
    version = _get(client, "model-versions/get", name=MODEL, version="2").json()["model_version"]
    assert version["version"] == "2"
    assert version["current_stage"] == "Staging"
    assert version["status"] == "READY" and version["run_id"] == ""
    assert version["source"] == "mlflow-artifacts:/registry/churn_prediction/2"
    assert _tags(version)["semver"] == "1.1.0"
    assert _tags(version)["sha256"] == versions["new"].sha256
    assert version["aliases"] == []
    production = _get(client, "model-versions/get", name=MODEL, version="1").json()
    assert production["model_version"]["aliases"] == ["champion", "production"]
    _error(_get(client, "model-versions/get", name=MODEL, version="3"), 404,
           "RESOURCE_DOES_NOT_EXIST")
    _error(_get(client, "model-versions/get", name=MODEL, version="1.0.0"), 400,
           "INVALID_PARAMETER_VALUE")


def test_search_model_versions_by_name_and_number(api, data_scientist, versions):
    client = api(data_scientist)
    found = _get(client, "model-versions/search", filter=f"name='{MODEL}'").json()
    assert [v["version"] for v in found["model_versions"]] == ["2", "1"]
    found = _get(client, "model-versions/search",
                 filter=f"name='{MODEL}' AND version_number < 2").json()
    assert [v["version"] for v in found["model_versions"]] == ["1"]
    found = _get(client, "model-versions/search", filter="tags.semver = '1.1.0'").json()
    assert [v["version"] for v in found["model_versions"]] == ["2"]
    _error(_get(client, "model-versions/search", filter="version_number > 'x'"), 400,
           "INVALID_PARAMETER_VALUE")


def test_versions_are_numbered_per_model_in_registration_order(data_scientist, versions):
    third = helpers.register_direct(MODEL, "0.9.0", actor=data_scientist)
    assert (versions["old"].number, versions["new"].number, third.number) == (1, 2, 3)
    other = helpers.create_model(owner=data_scientist, name="demand_forecast")
    assert helpers.register_direct("demand_forecast", "2.0.0", actor=data_scientist).number == 1
    assert other.versions.count() == 1


def test_download_uri_of_production_for_a_granted_service_and_not_of_staging(
        granted, service_token, versions):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {service_token}")
    body = _get(client, "model-versions/get-download-uri", name=MODEL, version="1").json()
    assert body == {"artifact_uri": "mlflow-artifacts:/registry/churn_prediction/1"}
    message = _error(_get(client, "model-versions/get-download-uri", name=MODEL, version="2"),
                     403, "PERMISSION_DENIED")
    assert "only the people of churn_prediction's team" in message
    event = AuditEvent.objects.filter(action="permission.denied").latest("seq")
    assert event.actor_name == "loans-service"
    assert json.loads(event.after) == {"attempted": "mlflow.download"}


def test_the_owning_team_may_download_an_unapproved_version(api, data_scientist, versions):
    body = _get(api(data_scientist), "model-versions/get-download-uri", name=MODEL,
                version="2").json()
    assert body["artifact_uri"].endswith("/2")


def test_an_outsider_and_another_team_see_nothing(api, outsider, other_data_scientist,
                                                  versions):
    for endpoint, params in [("registered-models/search", {}),
                             ("registered-models/get", {"name": MODEL}),
                             ("model-versions/get", {"name": MODEL, "version": "1"}),
                             ("registered-models/alias", {"name": MODEL, "alias": "champion"})]:
        _error(_get(api(outsider), endpoint, **params), 403, "PERMISSION_DENIED")
    sam = api(other_data_scientist)
    assert _get(sam, "registered-models/search").json()["registered_models"] == []
    assert _get(sam, "model-versions/search").json()["model_versions"] == []
    _error(_get(sam, "registered-models/get", name=MODEL), 404, "RESOURCE_DOES_NOT_EXIST")
    _error(_get(sam, "model-versions/get", name=MODEL, version="1"), 404,
           "RESOURCE_DOES_NOT_EXIST")
    listing = sam.get("/api/2.0/mlflow-artifacts/artifacts",
                      {"path": "registry/churn_prediction/1"})
    _error(listing, 404, "RESOURCE_DOES_NOT_EXIST")


def test_no_token_is_unauthenticated_and_a_bad_one_too(versions):
    _error(_get(APIClient(), "registered-models/search"), 401, "UNAUTHENTICATED")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer mgt_nope_nope")
    _error(_get(client, "registered-models/search"), 401, "UNAUTHENTICATED")


def test_an_unknown_mlflow_endpoint_is_mlflows_404(api, data_scientist):
    _error(api(data_scientist).get(MLFLOW + "runs/search"), 404, "ENDPOINT_NOT_FOUND")


def test_version_rows_keep_their_numbers_unique_per_model(versions):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=versions["new"].pk).update(number=1)


def test_create_registered_model_takes_its_task_type_from_a_tag(api, data_scientist, loans):
    from registry.models import RegisteredModel

    client = api(data_scientist)
    response = client.post(MLFLOW + "registered-models/create", {
        "name": "loan_default", "description": "Defaults",
        "tags": [{"key": "task_type", "value": "classification"}, {"key": "loans", "value": ""}],
    }, format="json")
    assert response.status_code == 200, response.json()
    model = response.json()["registered_model"]
    assert (model["name"], model["latest_versions"]) == ("loan_default", [])
    assert _tags(model) == {"team": "loans", "task_type": "classification", "loans": ""}
    row = RegisteredModel.objects.get(name="loan_default")
    assert (row.team.name, row.owner, row.tags) == ("loans", data_scientist, ["loans"])
    assert AuditEvent.objects.filter(action="model.created", model_name="loan_default").exists()


def test_create_registered_model_refuses_and_changes_nothing(api, data_scientist, viewer,
                                                             versions):
    cases = [
        (api(data_scientist), {"name": "loan_default"}, 400, "INVALID_PARAMETER_VALUE"),
        (api(data_scientist), {"name": "loan_default", "tags": [
            {"key": "task_type", "value": "classification"}, {"key": "owner", "value": "x"}]},
         400, "INVALID_PARAMETER_VALUE"),
        (api(data_scientist), {"name": MODEL, "tags": [
            {"key": "task_type", "value": "classification"}]}, 409, "RESOURCE_CONFLICT"),
        (api(viewer), {"name": "loan_default", "tags": [
            {"key": "task_type", "value": "classification"}]}, 403, "PERMISSION_DENIED"),
    ]
    with helpers.Unchanged():
        for client, body, status, code in cases:
            _error(client.post(MLFLOW + "registered-models/create", body, format="json"),
                   status, code)
