"""Aliases: `champion` (and `production`) follow the production version and moving them is a
promotion under four eyes; other aliases are labels the owning team sets, audited."""

from __future__ import annotations

import json

from core.models import AuditEvent
from governance.models import ApprovalRequest
from interop.models import ModelAlias
from tests import helpers
from tests.interop.conftest import MLFLOW, MODEL

ALIAS = MLFLOW + "registered-models/alias"


def _version_by_alias(client, alias):
    return client.get(ALIAS, {"name": MODEL, "alias": alias})


def test_champion_is_the_production_version(api, viewer, versions):
    response = _version_by_alias(api(viewer), "Champion")
    assert response.status_code == 200, response.json()
    assert response.json()["model_version"]["version"] == "1"


def test_setting_champion_asks_for_promotion_and_does_not_move_production(
        api, data_scientist, versions):
    client = api(data_scientist)
    before = AuditEvent.objects.count()
    response = client.post(ALIAS, {"name": MODEL, "alias": "champion", "version": "2"},
                           format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["error_code"] and "approval request" in body["message"]
    request = ApprovalRequest.objects.get(pk=body["approval_request"]["id"])
    assert (request.version, request.to_stage, request.status) == (versions["new"],
                                                                  "production", "pending")
    assert request.requested_by == data_scientist
    versions["old"].refresh_from_db()
    versions["new"].refresh_from_db()
    assert (versions["old"].stage, versions["new"].stage) == ("production", "staging")
    assert _version_by_alias(client, "champion").json()["model_version"]["version"] == "1"
    assert not ModelAlias.objects.exists()  # a routing alias is never stored
    events = list(AuditEvent.objects.filter(seq__gt=before).order_by("seq")
                  .values_list("action", "reason"))
    assert [action for action, _ in events if action == "request.created"] == ["request.created"]
    assert "MLflow: alias 'champion' set to version 2 (1.1.0)" in dict(events)["request.created"]


def test_setting_champion_on_the_production_version_changes_nothing(api, data_scientist,
                                                                    versions):
    with helpers.Unchanged(allow_actions=()):
        response = api(data_scientist).post(ALIAS, {"name": MODEL, "alias": "production",
                                                    "version": "1"}, format="json")
    assert response.status_code == 200, response.json()


def test_champion_cannot_be_deleted(api, data_scientist, versions):
    with helpers.Unchanged(allow_actions=()):
        response = api(data_scientist).delete(ALIAS + "?name=churn_prediction&alias=champion")
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "stage change" in response.json()["message"]


def test_a_label_is_set_moved_and_deleted_by_the_team_with_audit_events(api, data_scientist,
                                                                        versions):
    client = api(data_scientist)
    before = AuditEvent.objects.count()
    for number in ("2", "1"):
        response = client.post(ALIAS, {"name": MODEL, "alias": "Challenger", "version": number},
                               format="json")
        assert response.status_code == 200, response.json()
    assert _version_by_alias(client, "challenger").json()["model_version"]["version"] == "1"
    model = client.get(MLFLOW + "registered-models/get", {"name": MODEL}).json()
    assert {"alias": "challenger", "version": "1"} in model["registered_model"]["aliases"]
    # MLflow's client sends DELETE's arguments as a JSON body.
    response = client.delete(ALIAS, {"name": MODEL, "alias": "challenger"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json() == {}
    assert _version_by_alias(client, "challenger").status_code == 404
    events = [(e.action, e.actor_name, json.loads(e.before or "null"),
               json.loads(e.after or "null"))
              for e in AuditEvent.objects.filter(seq__gt=before).order_by("seq")]
    assert events == [
        ("alias.set", "dana", None, {"alias": "challenger", "version": 2, "semver": "1.1.0"}),
        ("alias.set", "dana", {"alias": "challenger", "version": 2, "semver": "1.1.0"},
         {"alias": "challenger", "version": 1, "semver": "1.0.0"}),
        ("alias.deleted", "dana", {"alias": "challenger", "version": 1, "semver": "1.0.0"},
         None),
    ]


def test_others_cannot_set_aliases_and_change_nothing(api, viewer, other_data_scientist,
                                                      outsider, versions):
    body = {"name": MODEL, "alias": "challenger", "version": "2"}
    with helpers.Unchanged():
        assert api(viewer).post(ALIAS, body, format="json").json()["error_code"] == \
            "PERMISSION_DENIED"
        response = api(other_data_scientist).post(ALIAS, body, format="json")
        assert (response.status_code, response.json()["error_code"]) == (
            404, "RESOURCE_DOES_NOT_EXIST")
        assert api(outsider).post(ALIAS, body, format="json").status_code == 403


def test_a_bad_alias_name_is_refused(api, data_scientist, versions):
    for alias in ("latest", "v3", "", "a b", "x" * 65):
        response = api(data_scientist).post(ALIAS, {"name": MODEL, "alias": alias,
                                                    "version": "2"}, format="json")
        assert response.status_code == 400, (alias, response.json())
        assert response.json()["message"].startswith("alias:")
    assert not ModelAlias.objects.exists()
