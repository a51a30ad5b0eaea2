"""Periodic reviews of production versions: recorded by an approver or admin of the model's
team who did not register the version, with a comment, on production versions only; each
sets the next review date and is audited. Setting a model's risk tier, likewise."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import AuditEvent
from governance.models import Review
from registry.models import RegisteredModel, Team
from tests import helpers
from tests.conftest import _person

pytestmark = pytest.mark.django_db
URL = "/api/v1/models/churn_prediction/versions/1.0.0/reviews/"
COMMENT = "Q3 backtest: recall 0.78, within the policy; keep in service"


@pytest.fixture
def production(data_scientist, churn_model):
    version = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    return helpers.force_stage(version, "production")


@pytest.fixture
def other_team_approver(db, django_user_model):
    from core import roles

    person = _person(django_user_model, "otto", roles.APPROVER, is_staff=True)
    Team.objects.create(name="risk").members.add(person)
    return person


def test_an_approver_records_a_review_which_sets_the_next_date(api, approver, production):
    before = production.review_due_at
    response = api(approver).post(URL, {"comment": COMMENT}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["reviewer"], body["comment"], body["version"]) == ("april", COMMENT, "1.0.0")
    review = Review.objects.get()
    production.refresh_from_db()
    assert production.review_due_at == review.next_review_at
    assert abs(review.next_review_at - (review.created_at + timedelta(days=365))) < timedelta(
        seconds=5)
    event = AuditEvent.objects.filter(action="version.reviewed").get()
    assert (event.actor_name, event.object_id, event.reason) == ("april", str(production.pk),
                                                                COMMENT)
    assert json.loads(event.before) == {"review_due_at": before.isoformat()}
    assert json.loads(event.after) == {"review": review.pk,
                                       "review_due_at": review.next_review_at.isoformat()}


def test_everyone_who_sees_the_model_lists_its_reviews(api, approver, viewer, production):
    api(approver).post(URL, {"comment": COMMENT}, format="json")
    response = api(viewer).get(URL)
    assert response.status_code == 200
    assert [(r["reviewer"], r["comment"]) for r in response.json()] == [("april", COMMENT)]


def test_an_admin_reviews_too(api, admin_user, production):
    assert api(admin_user).post(URL, {"comment": COMMENT}, format="json").status_code == 201


@pytest.mark.parametrize("who", ["data_scientist", "viewer", "outsider"])
def test_other_roles_may_not_record_a_review(request, api, production, who):
    person = request.getfixturevalue(who)
    with helpers.Unchanged():
        response = api(person).post(URL, {"comment": COMMENT}, format="json")
    assert response.status_code == 403
    assert not Review.objects.exists()


def test_the_outsider_sees_no_reviews(api, outsider, production):
    assert api(outsider).get(URL).status_code == 403
    assert api().get(URL).status_code == 401


def test_an_approver_of_another_team_finds_no_such_model(api, other_team_approver,
                                                         production):
    with helpers.Unchanged():
        response = api(other_team_approver).post(URL, {"comment": COMMENT}, format="json")
    assert response.status_code == 404
    assert api(other_team_approver).get(URL).status_code == 404


def test_whoever_registered_the_version_may_not_review_it(api, admin_user, churn_model):
    version = helpers.register_direct("churn_prediction", "1.0.0", actor=admin_user)
    helpers.force_stage(version, "production")
    with helpers.Unchanged():
        response = api(admin_user).post(URL, {"comment": COMMENT}, format="json")
    assert response.status_code == 403
    assert "another approver" in response.json()["detail"]
    denied = AuditEvent.objects.filter(action="permission.denied").last()
    assert json.loads(denied.after) == {"attempted": "version.review"}


@pytest.mark.parametrize("comment", ["", "   "])
def test_a_review_needs_a_comment(api, approver, production, comment):
    with helpers.Unchanged(allow_actions=()):
        response = api(approver).post(URL, {"comment": comment}, format="json")
    assert response.status_code == 400
    assert "comment" in response.json()["errors"]


def test_a_version_outside_production_is_not_reviewed(api, approver, data_scientist,
                                                      churn_model):
    version = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    helpers.force_stage(version, "staging")
    with helpers.Unchanged(allow_actions=()):
        response = api(approver).post(URL, {"comment": COMMENT}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "not_in_production"


def test_an_unknown_field_is_refused(api, approver, production):
    with helpers.Unchanged(allow_actions=()):
        response = api(approver).post(URL, {"comment": COMMENT, "next_review_at": "2030-01-01"},
                                      format="json")
    assert response.status_code == 400


# --- the risk tier ------------------------------------------------------------------------------

RISK_URL = "/api/v1/models/churn_prediction/risk/"
RISK = {"risk_tier": "high", "risk_reason": "Decides who gets offers",
        "business_use": "Membership team: win-back offers"}


def test_an_approver_sets_the_risk_tier_with_why(api, approver, churn_model):
    response = api(approver).post(RISK_URL, RISK, format="json")
    assert response.status_code == 200, response.json()
    assert {k: response.json()[k] for k in RISK} == RISK
    model = RegisteredModel.objects.get(name="churn_prediction")
    assert (model.risk_tier, model.risk_reason, model.business_use) == tuple(RISK.values())
    event = AuditEvent.objects.filter(action="model.risk_set").get()
    assert json.loads(event.before) == {"risk_tier": "", "risk_reason": "",
                                        "business_use": ""}
    assert json.loads(event.after) == RISK
    # The same again changes nothing and records nothing.
    api(approver).post(RISK_URL, RISK, format="json")
    assert AuditEvent.objects.filter(action="model.risk_set").count() == 1


@pytest.mark.parametrize("body, field", [
    ({"risk_tier": "high", "risk_reason": ""}, "risk_reason"),
    ({"risk_tier": "high"}, "risk_reason"),
    ({"risk_tier": "extreme", "risk_reason": "why"}, "risk_tier"),
])
def test_the_risk_tier_needs_a_known_tier_and_a_reason(api, approver, churn_model, body, field):
    with helpers.Unchanged(allow_actions=()):
        response = api(approver).post(RISK_URL, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]


@pytest.mark.parametrize("who, status", [("data_scientist", 403), ("viewer", 403),
                                         ("outsider", 403), ("other_team_approver", 404)])
def test_only_the_teams_approvers_and_admins_set_the_risk_tier(request, api, churn_model, who,
                                                               status):
    person = request.getfixturevalue(who)
    with helpers.Unchanged():
        response = api(person).post(RISK_URL, RISK, format="json")
    assert response.status_code == status
    assert RegisteredModel.objects.get(name="churn_prediction").risk_tier == ""


def test_an_admin_sets_the_risk_tier_in_the_admin(client, admin_user, churn_model):
    client.force_login(admin_user)
    page = client.get(f"/admin/registry/registeredmodel/{churn_model.pk}/change/")
    assert b"Set the risk tier" in page.content
    response = client.post(f"/admin/registry/registeredmodel/{churn_model.pk}/risk/", RISK)
    assert response.status_code == 302
    churn_model.refresh_from_db()
    assert churn_model.risk_tier == "high"
    assert AuditEvent.objects.filter(action="model.risk_set", actor_name="ada").exists()
    page = client.get(f"/admin/registry/registeredmodel/{churn_model.pk}/change/")
    assert b"Decides who gets offers" in page.content


def test_the_admin_form_refuses_a_missing_reason(client, admin_user, churn_model):
    client.force_login(admin_user)
    with helpers.Unchanged(allow_actions=()):
        response = client.post(f"/admin/registry/registeredmodel/{churn_model.pk}/risk/",
                               {"risk_tier": "high", "risk_reason": ""})
    assert response.status_code == 200
    assert b"say why the model has this tier" in response.content


def test_a_review_date_in_the_past_is_what_the_inventory_calls_overdue(api, approver,
                                                                        production):
    # (the inventory's own tests are in test_inventory.py; this ties the two together)
    from registry.models import ModelVersion

    ModelVersion.objects.filter(pk=production.pk).update(
        review_due_at=timezone.now() - timedelta(days=1))
    body = api(approver).get("/api/v1/inventory/?overdue=true").json()
    assert [row["model"] for row in body["results"]] == ["churn_prediction"]
    api(approver).post(URL, {"comment": COMMENT}, format="json")
    assert api(approver).get("/api/v1/inventory/?overdue=true").json()["results"] == []


def test_an_approver_records_a_review_from_the_admins_inventory(client, approver, production):
    client.force_login(approver)
    inventory = client.get("/admin/governance/review/inventory/").content.decode()
    form_url = "/admin/governance/review/record/churn_prediction/1.0.0/"
    assert f'href="{form_url}"' in inventory
    assert client.get(form_url).status_code == 200
    with helpers.Unchanged(allow_actions=()):
        refused = client.post(form_url, {"comment": "  "})
    assert refused.status_code == 200 and b"comment" in refused.content
    response = client.post(form_url, {"comment": COMMENT})
    assert response.status_code == 302
    assert Review.objects.get().reviewer == approver
    assert AuditEvent.objects.filter(action="version.reviewed", actor_name="april").exists()


def test_the_registrant_gets_no_review_link_and_the_form_refuses_her(client, admin_user,
                                                                     churn_model):
    version = helpers.register_direct("churn_prediction", "1.0.0", actor=admin_user)
    helpers.force_stage(version, "production")
    client.force_login(admin_user)
    inventory = client.get("/admin/governance/review/inventory/").content.decode()
    assert "record a review" not in inventory
    with helpers.Unchanged():
        response = client.post("/admin/governance/review/record/churn_prediction/1.0.0/",
                               {"comment": COMMENT})
    assert response.status_code == 302
    assert not Review.objects.exists()


def test_the_version_admin_page_shows_the_next_review_and_the_reviews(client, api, approver,
                                                                      production):
    client.force_login(approver)
    page = f"/admin/registry/modelversion/{production.pk}/change/"
    production.review_due_at = timezone.now() - timedelta(days=3)
    production.save(update_fields=["review_due_at"])
    assert "OVERDUE" in client.get(page).content.decode()

    api(approver).post(URL, {"comment": COMMENT}, format="json")
    production.refresh_from_db()
    html = client.get(page).content.decode()
    assert "OVERDUE" not in html
    assert f"next review {timezone.localtime(production.review_due_at):%Y-%m-%d}" in html
    assert f"by april: {COMMENT}" in html
