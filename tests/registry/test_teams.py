"""Teams own models: another team's model does not exist for you, anywhere.

dana (data scientist) and april (approver) are in `loans`, which owns churn_prediction;
sam (data scientist) and bea (approver) are in `growth`. vic (viewer) reads everything.
"""

from __future__ import annotations

import json

import pytest

from core import roles
from core.errors import Forbidden
from core.models import AuditEvent
from governance import services as governance
from governance.models import Deployment
from monitoring.models import Alert, AlertRule
from predictions import services as predictions
from registry import services
from registry.models import RegisteredModel, Team
from tests import helpers
from tests.conftest import _person
from tests.helpers import Unchanged

MODEL = "churn_prediction"
ROWS = {"inputs": [[1.0, 2.0, 3.0]]}


@pytest.fixture
def teams(data_scientist, approver, other_data_scientist, db, django_user_model, admin_user):
    loans = Team.objects.create(name="loans")
    growth = Team.objects.create(name="growth")
    loans.members.add(data_scientist, approver)
    bea = _person(django_user_model, "bea", roles.APPROVER, is_staff=True)
    growth.members.add(other_data_scientist, bea)
    other_data_scientist.is_staff = True
    other_data_scientist.save()
    model = services.model_create(name=MODEL, task_type="classification", owner=data_scientist,
                                  actor=data_scientist, team_name="loans")
    old = helpers.register_direct(MODEL, "1.0.0", actor=data_scientist)
    helpers.force_stage(old, "production")
    new = helpers.register_direct(MODEL, "1.1.0", actor=data_scientist)
    helpers.force_stage(new, "staging")
    for version in (old, new):
        helpers.mark_validated(version)
    outcome = governance.transition_request(version=new, to_stage="production",
                                            actor=data_scientist, reason="better")
    rule = AlertRule.objects.create(model=model, metric="latency_p99", threshold=1.0)
    alert = Alert.objects.create(rule=rule, model=model, severity="warning", title="slow",
                                 value=2.0, threshold=1.0, first_seen=old.created_at,
                                 last_seen=old.created_at)
    return {"model": model, "request": outcome.request, "alert": alert, "rule": rule,
            "bea": bea, "loans": loans, "growth": growth}


def _missing(response):
    assert response.status_code == 404, (response.status_code, response.content[:300])
    return response


def test_another_teams_data_scientist_finds_nothing_anywhere(api, teams, other_data_scientist,
                                                             client):
    sam = api(other_data_scientist)
    request_id, alert_id = teams["request"].pk, teams["alert"].pk
    base = f"/api/v1/models/{MODEL}"
    with Unchanged():
        for url in [f"{base}/", f"{base}/versions/", f"{base}/versions/1.0.0/",
                    f"{base}/versions/1.0.0/files/model.joblib",
                    f"{base}/versions/1.0.0/validations/", f"{base}/rollout/",
                    f"{base}/monitoring/", f"/api/v1/approvals/{request_id}/",
                    f"/api/v1/deployments/{Deployment.objects.first().pk}/",
                    f"/api/v1/alerts/{alert_id}/", f"/api/v1/alert-rules/{teams['rule'].pk}/",
                    f"/v2/models/{MODEL}", f"/v2/models/{MODEL}/ready",
                    f"/api/v1/audit/report/?model={MODEL}"]:
            response = sam.get(url)
            assert response.status_code == 404, (url, response.status_code)
        for url, body in [
            (f"{base}/versions/1.1.0/transitions/", {"to_stage": "archived", "reason": "x"}),
            (f"{base}/versions/1.1.0/validations/", {}),
            (f"{base}/rollback/", {"reason": "x"}),
            (f"{base}/rollout/", {"version": "1.1.0", "mode": "shadow"}),
            (f"/api/v1/approvals/{request_id}/approve", {"comment": "ok"}),
            (f"/api/v1/alerts/{alert_id}/acknowledge", {"comment": "mine"}),
            (f"{base}/predict/", ROWS),
            (f"{base}/versions/1.1.0/predict/", ROWS),
        ]:
            response = sam.post(url, body, format="json")
            assert response.status_code == 404, (url, response.status_code)
        _missing(sam.patch(f"{base}/", {"description": "mine now"}, format="json"))
        _missing(sam.post(f"/v2/models/{MODEL}/infer", {"inputs": [
            {"name": "input-0", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]},
            format="json"))
        _missing(helpers.register(sam, MODEL, "9.9.9"))
        # Lists, searches and filters: absent, not forbidden.
        listed = {
            "/api/v1/models/": "results", f"/api/v1/models/?name={MODEL}": "results",
            "/api/v1/models/?stage=production": "results", "/api/v1/versions/": "results",
            f"/api/v1/versions/?model={MODEL}": "results", "/api/v1/approvals/": "results",
            "/api/v1/deployments/": "results", "/api/v1/alerts/": "results",
            f"/api/v1/audit/?model={MODEL}": "results",
        }
        for url, key in listed.items():
            response = sam.get(url)
            assert response.status_code == 200, url
            assert MODEL not in json.dumps(response.json()[key]), url
        rules = sam.get("/api/v1/alert-rules/").json()["results"]
        assert all(rule["model"] is None for rule in rules)
        audit = sam.get("/api/v1/audit/?page_size=500").json()["results"]
        assert all(event["model"] != MODEL for event in audit)
    assert AuditEvent.objects.filter(model_name=MODEL).exists()  # there was something to hide


def test_another_teams_people_see_nothing_in_the_admin(client, teams, other_data_scientist):
    model, request = teams["model"], teams["request"]
    client.force_login(teams["bea"])
    pages = ["/admin/registry/registeredmodel/", "/admin/registry/modelversion/",
             "/admin/governance/approvalrequest/?status=all", "/admin/governance/deployment/",
             "/admin/governance/validationrun/", "/admin/monitoring/alert/",
             "/admin/core/auditevent/", "/admin/monitoring/alertrule/",
             "/admin/core/auditevent/report/"]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        assert MODEL not in response.content.decode(), page
    for page in [f"/admin/registry/registeredmodel/{model.pk}/change/",
                 f"/admin/governance/approvalrequest/{request.pk}/change/",
                 f"/admin/monitoring/alert/{teams['alert'].pk}/change/",
                 f"/admin/monitoring/monitoringrun/model/{model.pk}/"]:
        response = client.get(page, follow=True)
        assert MODEL not in response.content.decode(), page
    report = client.get(f"/admin/core/auditevent/report/?download=1&model={MODEL}",
                        follow=True)
    assert "no registered model named" in report.content.decode()


def test_the_owning_teams_approver_sees_and_decides(api, teams, approver):
    response = api(approver).get("/api/v1/approvals/?status=pending")
    assert [r["model"] for r in response.json()["results"]] == [MODEL]
    decided = api(approver).post(f"/api/v1/approvals/{teams['request'].pk}/approve",
                                 {"comment": "fine"}, format="json")
    assert decided.status_code == 200, decided.json()


def test_an_approver_of_another_team_cannot_decide_even_through_the_service(teams):
    with Unchanged():
        with pytest.raises(Forbidden):
            governance.approval_decide(request=teams["request"], actor=teams["bea"],
                                       decision="approve", comment="not mine")
    assert AuditEvent.objects.filter(action="permission.denied",
                                     actor_name="bea").count() == 1


def test_a_viewer_reads_every_team_and_an_admin_acts_on_every_team(api, teams, viewer,
                                                                   admin_user):
    assert api(viewer).get(f"/api/v1/models/{MODEL}/").status_code == 200
    assert api(viewer).get("/api/v1/approvals/").json()["count"] == 1
    moved = api(admin_user).patch(f"/api/v1/models/{MODEL}/", {"team": "growth"},
                                  format="json")
    assert moved.status_code == 200 and moved.json()["team"] == "growth"
    event = AuditEvent.objects.filter(action="model.updated").latest("seq")
    assert json.loads(event.before)["team"] == "loans"
    assert json.loads(event.after)["team"] == "growth"


def test_only_an_admin_moves_a_model_between_teams(api, teams, data_scientist):
    with Unchanged():
        response = api(data_scientist).patch(f"/api/v1/models/{MODEL}/", {"team": "growth"},
                                             format="json")
    assert response.status_code == 403
    assert RegisteredModel.objects.get(name=MODEL).team.name == "loans"


def test_a_new_model_goes_to_a_team_of_the_creator(api, teams, data_scientist):
    client = api(data_scientist)
    with Unchanged():
        refused = client.post("/api/v1/models/", {"name": "fraud", "task_type": "regression",
                                                  "team": "growth"}, format="json")
    assert refused.status_code == 400 and "team" in refused.json()["errors"]
    created = client.post("/api/v1/models/", {"name": "fraud", "task_type": "regression"},
                          format="json")
    assert created.status_code == 201 and created.json()["team"] == "loans"
    teams["growth"].members.add(data_scientist)
    data_scientist.refresh_from_db()
    with Unchanged():
        ambiguous = api(data_scientist).post("/api/v1/models/", {
            "name": "fraud2", "task_type": "regression"}, format="json")
    assert ambiguous.status_code == 400 and "several teams" in ambiguous.json()["detail"]


def test_people_in_no_team_share_the_default_team(api, data_scientist, other_data_scientist):
    helpers.create_model(owner=data_scientist, name="shared")
    assert RegisteredModel.objects.get(name="shared").team.name == "default"
    assert api(other_data_scientist).get("/api/v1/models/shared/").status_code == 200


def test_a_service_account_reads_only_the_models_it_was_granted(api, teams, admin_user, db,
                                                                django_user_model):
    from rest_framework.test import APIClient

    robot = _person(django_user_model, "scorer", roles.SERVICE)
    teams["loans"].members.add(robot)
    _token, plain = predictions.api_token_create(user=robot, name="scorer", actor=admin_user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    url = f"/api/v1/models/{MODEL}/versions/1.0.0/files/model.joblib"
    assert client.get(f"/api/v1/models/{MODEL}/").status_code == 404
    assert client.get(url).status_code == 404
    assert client.get("/api/v1/models/").json()["count"] == 0
    services.model_update(model=teams["model"], actor=admin_user, readers=[robot])
    assert client.get(f"/api/v1/models/{MODEL}/").status_code == 200
    download = client.get(url)
    assert download.status_code == 200
    assert download["X-Checksum-SHA256"] == helpers.sha256(helpers.sklearn_bytes())
    assert client.post(f"/api/v1/models/{MODEL}/versions/", {}).status_code == 403
    event = AuditEvent.objects.filter(action="model.updated").latest("seq")
    assert json.loads(event.after)["readers"] == ["scorer"]


def test_a_service_account_in_another_team_cannot_call_the_model(teams, admin_user, db,
                                                                 django_user_model):
    from rest_framework.test import APIClient

    robot = _person(django_user_model, "growth-svc", roles.SERVICE)
    teams["growth"].members.add(robot)
    _token, plain = predictions.api_token_create(user=robot, name="g", actor=admin_user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    response = client.post(f"/api/v1/models/{MODEL}/predict/", ROWS, format="json")
    assert response.status_code == 404


def test_team_membership_is_managed_by_admins_and_audited(teams, admin_user, data_scientist):
    with pytest.raises(Forbidden):
        services.team_save(team=teams["growth"], actor=data_scientist, name="growth",
                           members=[data_scientist])
    services.team_save(team=teams["growth"], actor=admin_user, name="growth",
                       members=[data_scientist])
    event = AuditEvent.objects.filter(action="team.changed").get()
    assert json.loads(event.after)["members"] == ["dana"]
    assert set(json.loads(event.before)["members"]) == {"bea", "sam"}


def test_the_admin_decide_button_of_another_team_is_a_404_that_names_nothing(client, teams):
    client.force_login(teams["bea"])
    with Unchanged():
        response = client.post(
            f"/admin/governance/approvalrequest/{teams['request'].pk}/decide/",
            {"approve": "1", "comment": "not mine"}, follow=True)
    assert response.status_code == 404
    assert MODEL not in response.content.decode()


def test_other_teams_and_the_whole_chain_are_not_shown_to_a_team_member(client, teams,
                                                                       other_data_scientist):
    client.force_login(other_data_scientist)
    teams_page = client.get("/admin/registry/team/").content.decode()
    assert "growth" in teams_page and "loans" not in teams_page
    verify = client.get("/admin/core/auditevent/verify/", follow=True).content.decode()
    assert "Audit chain verified" not in verify


def test_a_service_is_told_a_version_outside_production_does_not_exist(teams, admin_user, db,
                                                                       django_user_model):
    from rest_framework.test import APIClient

    robot = _person(django_user_model, "loans-svc", roles.SERVICE)
    teams["loans"].members.add(robot)
    _token, plain = predictions.api_token_create(user=robot, name="l", actor=admin_user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    staging = client.post(f"/api/v1/models/{MODEL}/versions/1.1.0/predict/", ROWS,
                          format="json")
    missing = client.post(f"/api/v1/models/{MODEL}/versions/7.7.7/predict/", ROWS,
                          format="json")
    assert staging.status_code == missing.status_code == 404
    assert "staging" not in staging.json()["detail"]
