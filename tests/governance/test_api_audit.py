"""The audit trail over the API, in reports, and for role and policy changes."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group

from core.models import AuditEvent
from governance.models import Policy
from tests import helpers

pytestmark = pytest.mark.django_db


def test_the_audit_list_filters_by_model_actor_action_and_time(api, viewer, data_scientist,
                                                               churn_model):
    helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    helpers.create_model(owner=data_scientist, name="other")
    client = api(viewer)

    def actions(query):
        response = client.get("/api/v1/audit/" + query)
        assert response.status_code == 200, response.json()
        return [e["action"] for e in response.json()["results"]]

    assert actions("?model=churn_prediction") == ["model.created", "version.registered"]
    assert actions("?model=other") == ["model.created"]
    assert actions("?actor=dana&action=version.registered") == ["version.registered"]
    assert "role.granted" in actions("?action=role.")
    assert actions("?since=2999-01-01T00:00:00Z") == []
    event = client.get("/api/v1/audit/?action=version.registered").json()["results"][0]
    assert event["after"]["version"] == "1.0.0"
    assert len(event["hash"]) == 64 and len(event["prev_hash"]) == 64
    assert client.get("/api/v1/audit/?since=yesterday").status_code == 400


def test_the_audit_trail_cannot_be_changed_through_the_api(api, admin_user, data_scientist,
                                                           churn_model):
    client = api(admin_user)
    for method in ("post", "put", "patch", "delete"):
        response = getattr(client, method)("/api/v1/audit/", {}, format="json")
        assert response.status_code == 405


def test_the_report_endpoint_serves_html_and_csv(api, viewer, data_scientist, churn_model):
    helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    html = api(viewer).get("/api/v1/audit/report/?model=churn_prediction")
    assert html.status_code == 200
    assert html["Content-Type"].startswith("text/html")
    assert b"churn_prediction 1.0.0" in html.content
    csv = api(viewer).get("/api/v1/audit/report/?model=churn_prediction&output=csv")
    assert csv["Content-Type"] == "text/csv"
    text = b"".join(csv.streaming_content).decode()
    assert text.splitlines()[0].startswith("seq,occurred_at,actor,action")
    assert "version.registered" in text
    bad = api(viewer).get("/api/v1/audit/report/?output=pdf")
    assert bad.status_code == 400 and "output" in bad.json()["errors"]
    assert api(viewer).get("/api/v1/audit/report/?model=nope").status_code == 404


def test_a_role_change_in_the_admin_is_audited_with_who_did_it(client, admin_user, viewer):
    client.force_login(admin_user)
    approver_group = Group.objects.get(name="approver")
    response = client.post(f"/admin/auth/user/{viewer.pk}/change/", {
        "username": "vic", "password": viewer.password, "email": viewer.email,
        "is_active": "on", "groups": [Group.objects.get(name="viewer").pk, approver_group.pk],
        "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01", "initial-date_joined_1": "00:00:00",
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    event = AuditEvent.objects.filter(action="role.granted", object_repr="vic").last()
    assert json.loads(event.after) == {"roles": ["approver"]}
    assert event.actor_name == "ada"


def test_a_policy_change_in_the_admin_is_audited_with_old_and_new_values(client, admin_user,
                                                                          policy):
    client.force_login(admin_user)
    form = {
        "model": "", "min_metrics": '{"accuracy": 0.85}', "max_metrics": "{}",
        "regression_tolerance": "0.02", "regression_metrics": json.dumps(policy.regression_metrics),
        "lower_is_better": json.dumps(policy.lower_is_better), "latency_budget_ms": "150",
        "load_timeout_seconds": "60", "load_memory_mb": "2048", "approvals_required": "2",
        "transitions_requiring_approval": json.dumps(policy.transitions_requiring_approval),
    }
    response = client.post(f"/admin/governance/policy/{policy.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    policy.refresh_from_db()
    assert policy.approvals_required == 2
    event = AuditEvent.objects.get(action="policy.changed")
    assert event.actor_name == "ada"
    assert json.loads(event.before) == {"approvals_required": 1, "latency_budget_ms": 200.0,
                                        "min_metrics": {}}
    assert json.loads(event.after) == {"approvals_required": 2, "latency_budget_ms": 150.0,
                                       "min_metrics": {"accuracy": 0.85}}


def test_only_admins_change_policies(client, approver, policy):
    client.force_login(approver)
    response = client.post(f"/admin/governance/policy/{policy.pk}/change/",
                           {"approvals_required": "0"})
    assert response.status_code == 403
    assert Policy.objects.get(pk=policy.pk).approvals_required == 1


def test_making_someone_a_superuser_is_audited_with_who_did_it(client, admin_user, viewer):
    client.force_login(admin_user)
    response = client.post(f"/admin/auth/user/{viewer.pk}/change/", {
        "username": "vic", "password": viewer.password, "email": viewer.email,
        "is_active": "on", "is_staff": "on", "is_superuser": "on",
        "groups": [Group.objects.get(name="viewer").pk],
        "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01", "initial-date_joined_1": "00:00:00",
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    event = AuditEvent.objects.filter(action="privileges.changed", object_repr="vic").last()
    assert json.loads(event.before) == {"is_superuser": False, "is_staff": False}
    assert json.loads(event.after) == {"is_superuser": True, "is_staff": True}
    assert event.actor_name == "ada"
