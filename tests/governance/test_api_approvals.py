"""Transitions, four-eyes approvals, deployments and rollback through the REST API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.models import AuditEvent
from governance.models import ApprovalRequest, Deployment, Policy
from registry.models import ModelVersion
from tests import helpers
from tests.helpers import Unchanged

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "/api/v1/models/churn_prediction"


def _approve(client, request_id, comment="looks good"):
    return client.post(f"/api/v1/approvals/{request_id}/approve", {"comment": comment},
                       format="json")


def _stages():
    return dict(ModelVersion.objects.values_list("version", "stage"))


def _actions(**filters):
    return list(AuditEvent.objects.filter(**filters).order_by("seq")
                .values_list("action", flat=True))


def test_a_promotion_is_approved_deployed_and_the_old_version_archived(
    api, approver, promotion, store_root
):
    request = ApprovalRequest.objects.get(pk=promotion["request_id"])
    assert request.status == "pending"
    assert request.validation_run.trigger == "promotion"
    assert request.validation_run.status == "passed"  # re-run when the request was made
    assert _stages() == {"1.0.0": "production", "1.1.0": "staging"}

    response = _approve(api(approver), request.pk)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "approved"
    assert body["deployment"]["status"] == "completed"
    assert _stages() == {"1.0.0": "archived", "1.1.0": "production"}

    root = Path(store_root)
    assert (root / "production/churn_prediction/v1.1.0/model.joblib").exists()
    assert not (root / "staging/churn_prediction/v1.1.0").exists()
    archived = json.loads((root / "archived/churn_prediction/v1.0.0/metadata.json").read_text())
    assert archived["stage"] == "archived"
    assert archived["replaced_by"] == "1.1.0"
    assert archived["reason"] == "Better on November data"
    assert archived["retired_at"]
    assert archived["metrics_comparison"]["accuracy"] == {
        "candidate": 0.82, "baseline": 0.80, "change": 0.02, "lower_is_better": False,
        "compared": True, "regressed": False,
    }
    deployment = Deployment.objects.get(request=request)
    assert (deployment.replaced.version, deployment.version.version) == ("1.0.0", "1.1.0")
    assert (deployment.requested_by.username, deployment.deployed_by.username) == (
        "dana", "april")
    tail = AuditEvent.objects.filter(model_name="churn_prediction", seq__gt=AuditEvent.objects.get(
        action="request.created").seq).order_by("seq")
    assert [(e.action, e.actor_name) for e in tail] == [
        ("validation.passed", "dana"), ("request.approval_given", "april"),
        ("request.approved", "april"), ("deployment.requested", "april"),
        ("deployment.started", "april"), ("version.stage_changed", "april"),
        ("version.stage_changed", "april"), ("deployment.completed", "april")]
    people = {"requested_by": "dana", "approved_by": ["april"], "deployed_by": "april"}
    for event in tail.filter(action__in=["deployment.requested", "version.stage_changed",
                                         "deployment.completed"]):
        assert people.items() <= json.loads(event.after).items(), event.action


def test_the_approver_is_named_wherever_the_deployment_is_recorded(api, approver, viewer,
                                                                   promotion, store_root):
    """dana asks, april approves: april deployed 1.1.0 and retired 1.0.0, at dana's request."""
    _approve(api(approver), promotion["request_id"], comment="checked the November data")
    decision = ApprovalRequest.objects.get(pk=promotion["request_id"]).decisions.get()
    approved_by = [{"by": "april", "at": decision.created_at.isoformat(),
                    "comment": "checked the November data"}]

    root = Path(store_root)
    promoted = json.loads((root / "production/churn_prediction/v1.1.0/metadata.json").read_text())
    assert (promoted["requested_by"], promoted["approved_by"], promoted["deployed_by"]) == (
        "dana", approved_by, "april")
    assert promoted["history"][-1]["stage"] == "production"
    assert {k: promoted["history"][-1][k] for k in ("by", "requested_by", "approved_by")} == {
        "by": "april", "requested_by": "dana", "approved_by": ["april"]}
    archived = json.loads((root / "archived/churn_prediction/v1.0.0/metadata.json").read_text())
    assert (archived["retired_by"], archived["retirement_requested_by"],
            archived["retirement_approved_by"], archived["replaced_by"]) == (
        "april", "dana", approved_by, "1.1.0")
    assert {k: archived["history"][-1][k] for k in ("stage", "by", "requested_by")} == {
        "stage": "archived", "by": "april", "requested_by": "dana"}

    deployment = Deployment.objects.get(request_id=promotion["request_id"])
    body = api(viewer).get(f"/api/v1/deployments/{deployment.pk}/").json()
    assert (body["requested_by"], body["deployed_by"]) == ("dana", "april")
    assert [(a["by"], a["comment"]) for a in body["approved_by"]] == [
        ("april", "checked the November data")]
    listed = api(viewer).get("/api/v1/deployments/?deployed_by=april").json()["results"]
    assert [d["id"] for d in listed] == [deployment.pk]


def test_with_two_approvals_required_both_approvers_are_named(api, approver, second_approver,
                                                             promotion, strict_policy,
                                                             store_root):
    strict_policy(approvals_required=2)
    ApprovalRequest.objects.filter(pk=promotion["request_id"]).update(approvals_required=2)
    _approve(api(approver), promotion["request_id"], comment="fine by me")
    _approve(api(second_approver), promotion["request_id"], comment="agreed")

    promoted = json.loads((Path(store_root) / "production/churn_prediction/v1.1.0/"
                           "metadata.json").read_text())
    assert [(a["by"], a["comment"]) for a in promoted["approved_by"]] == [
        ("april", "fine by me"), ("bea", "agreed")]
    assert (promoted["requested_by"], promoted["deployed_by"]) == ("dana", "bea")
    archived = json.loads((Path(store_root) / "archived/churn_prediction/v1.0.0/"
                           "metadata.json").read_text())
    assert [a["by"] for a in archived["retirement_approved_by"]] == ["april", "bea"]
    body = api(approver).get("/api/v1/deployments/?model=churn_prediction").json()["results"]
    promotion_row = next(d for d in body if d["kind"] == "promotion")
    assert [a["by"] for a in promotion_row["approved_by"]] == ["april", "bea"]
    completed = AuditEvent.objects.get(action="deployment.completed",
                                       object_id=str(promotion_row["id"]))
    assert (completed.actor_name, json.loads(completed.after)["approved_by"]) == (
        "bea", ["april", "bea"])


def test_the_requester_cannot_approve_and_the_attempt_is_audited(api, approver, validated):
    """Four eyes for the requester alone: april, an approver of the model's team who did not
    register the version, asks for the move; only the requester rule can refuse her."""
    from django.contrib.auth.models import Group

    version = validated("1.0.0", stage="staging")  # registered by dana
    assert version.created_by.username == "dana"
    approver.groups.add(Group.objects.get(name="data_scientist"))  # april may also ask
    response = api(approver).post(f"{BASE}/versions/1.0.0/transitions/",
                                  {"to_stage": "production", "reason": "ready"}, format="json")
    assert response.status_code == 202, response.json()
    request_id = response.json()["request"]["id"]
    with Unchanged():
        refused = _approve(api(approver), request_id)
    assert refused.status_code == 403, refused.json()
    said = "Four eyes: you asked for this move, so someone else must decide."
    assert refused.json()["detail"] == said
    event = AuditEvent.objects.filter(action="permission.denied").order_by("seq").last()
    assert (event.actor_name, event.reason) == ("april", said)
    assert json.loads(event.after) == {"attempted": "request.approve"}
    assert ApprovalRequest.objects.get(pk=request_id).status == "pending"


def test_the_versions_author_cannot_approve_even_as_an_approver(api, data_scientist, promotion,
                                                                other_data_scientist):
    from django.contrib.auth.models import Group

    # dana registered 1.1.0; sam asks for the move; dana is also made an approver.
    request = ApprovalRequest.objects.get(pk=promotion["request_id"])
    ApprovalRequest.objects.filter(pk=request.pk).update(requested_by=other_data_scientist)
    data_scientist.groups.add(Group.objects.get(name="approver"))
    before = AuditEvent.objects.filter(action="permission.denied").count()
    response = _approve(api(data_scientist), request.pk)
    assert response.status_code == 403
    assert "registered this version" in response.json()["detail"]
    denied = AuditEvent.objects.filter(action="permission.denied").order_by("seq")
    assert denied.count() == before + 1
    assert denied.last().actor_name == "dana"
    assert ApprovalRequest.objects.get(pk=request.pk).status == "pending"


def test_a_viewer_approving_is_refused_and_audited(api, viewer, promotion):
    response = _approve(api(viewer), promotion["request_id"])
    assert response.status_code == 403
    event = AuditEvent.objects.filter(action="permission.denied").last()
    assert event.actor_name == "vic"
    assert event.reason == "Only approvers and admins decide."
    assert _stages()["1.1.0"] == "staging"


def test_an_outsider_is_refused_at_the_door_and_audited(api, outsider, promotion):
    response = _approve(api(outsider), promotion["request_id"])
    assert response.status_code == 403
    event = AuditEvent.objects.filter(action="permission.denied").last()
    assert event.actor_name == "olly"
    assert json.loads(event.after)["attempted"].startswith("POST /api/v1/approvals/")
    assert api(outsider).get("/api/v1/approvals/").status_code == 403


def test_approving_twice_or_after_rejection_is_a_conflict(api, approver, second_approver,
                                                          promotion, strict_policy):
    strict_policy(approvals_required=2)
    request_id = promotion["request_id"]
    ApprovalRequest.objects.filter(pk=request_id).update(approvals_required=2)
    assert _approve(api(approver), request_id).json()["status"] == "pending"
    twice = _approve(api(approver), request_id)
    assert twice.status_code == 409
    assert twice.json()["code"] == "already_decided"

    no_comment = api(second_approver).post(f"/api/v1/approvals/{request_id}/reject", {},
                                           format="json")
    assert no_comment.status_code == 400
    assert "comment" in no_comment.json()["errors"]
    rejected = api(second_approver).post(f"/api/v1/approvals/{request_id}/reject",
                                         {"comment": "drift on weekends"}, format="json")
    assert rejected.json()["status"] == "rejected"
    after = _approve(api(second_approver), request_id)
    assert after.status_code == 409
    assert after.json()["code"] == "request_closed"
    assert _stages()["1.1.0"] == "staging"


def test_n_distinct_approvals_are_needed(api, approver, second_approver, data_scientist,
                                         validated, strict_policy):
    strict_policy(approvals_required=2)
    validated("1.0.0", stage="staging")
    response = api(data_scientist).post(f"{BASE}/versions/1.0.0/transitions/",
                                        {"to_stage": "production"}, format="json")
    request_id = response.json()["request"]["id"]
    assert response.json()["request"]["approvals_required"] == 2
    first = _approve(api(approver), request_id).json()
    assert (first["status"], first["approvals"]) == ("pending", 1)
    assert _stages()["1.0.0"] == "staging"
    second = _approve(api(second_approver), request_id).json()
    assert (second["status"], second["approvals"]) == ("approved", 2)
    assert _stages()["1.0.0"] == "production"


def test_a_request_goes_stale_when_validation_fails_afterwards(api, approver, data_scientist,
                                                               promotion, store_root):
    from governance import services

    # The artifact is damaged after the request: the next validation fails.
    path = Path(store_root) / "staging/churn_prediction/v1.1.0/model.joblib"
    path.write_bytes(b"corrupted")
    version = ModelVersion.objects.get(version="1.1.0")
    assert services.validation_request_now(version).status == "failed"
    request = ApprovalRequest.objects.get(pk=promotion["request_id"])
    assert request.status == "stale"
    assert "validation" in request.status_reason
    response = _approve(api(approver), request.pk)
    assert response.status_code == 409
    assert _stages()["1.1.0"] == "staging"


def test_a_version_whose_validation_failed_cannot_be_promoted(api, data_scientist, churn_model,
                                                              store_root):
    from governance import services

    version = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist,
                                      data=b"not a model")
    helpers.force_stage(version, "staging")
    services.validation_request_now(version)
    with Unchanged():
        response = api(data_scientist).post(f"{BASE}/versions/1.0.0/transitions/",
                                            {"to_stage": "production"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "not_validated"


@pytest.mark.parametrize(("start", "target"), [("experiment", "production"),
                                               ("staging", "experiment"),
                                               ("production", "staging")])
def test_a_move_outside_the_lifecycle_is_refused_naming_the_allowed_ones(
    api, data_scientist, admin_user, validated, start, target
):
    validated("1.0.0", stage=start)
    with Unchanged():
        response = api(admin_user).post(f"{BASE}/versions/1.0.0/transitions/",
                                        {"to_stage": target, "reason": "x"}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "invalid_transition"
    assert f"from {start}:" in body["detail"]
    assert "to_stage" in body["errors"]


def test_an_unknown_stage_is_a_bad_request(api, data_scientist, validated):
    validated("1.0.0")
    with Unchanged():
        response = api(data_scientist).post(f"{BASE}/versions/1.0.0/transitions/",
                                            {"to_stage": "live"}, format="json")
    assert response.status_code == 400
    assert "to_stage" in response.json()["errors"]


def test_experiment_to_staging_needs_no_approval_by_default(api, data_scientist, validated,
                                                            store_root):
    validated("1.0.0")
    response = api(data_scientist).post(f"{BASE}/versions/1.0.0/transitions/",
                                        {"to_stage": "staging"}, format="json")
    assert response.status_code == 202
    assert response.json()["request"] is None
    assert response.json()["deployment"]["status"] == "completed"
    assert response.json()["stage"] == "staging"
    assert (Path(store_root) / "staging/churn_prediction/v1.0.0/model.joblib").exists()


def test_a_policy_can_require_approval_for_staging_too(api, data_scientist, validated,
                                                       strict_policy):
    strict_policy(transitions_requiring_approval=["experiment->staging",
                                                  "staging->production"])
    validated("1.0.0")
    response = api(data_scientist).post(f"{BASE}/versions/1.0.0/transitions/",
                                        {"to_stage": "staging"}, format="json")
    assert response.json()["request"]["status"] == "pending"
    assert _stages()["1.0.0"] == "experiment"


def test_a_per_model_policy_overrides_the_project_default(api, data_scientist, validated,
                                                          churn_model):
    Policy.objects.create(model=churn_model, transitions_requiring_approval=[])
    validated("1.0.0", stage="staging")
    response = api(data_scientist).post(f"{BASE}/versions/1.0.0/transitions/",
                                        {"to_stage": "production"}, format="json")
    assert response.json()["request"] is None
    assert _stages()["1.0.0"] == "production"


def test_a_second_request_for_the_same_version_is_a_conflict(api, data_scientist, promotion):
    with Unchanged():
        response = api(data_scientist).post(f"{BASE}/versions/1.1.0/transitions/",
                                            {"to_stage": "production"}, format="json")
    assert response.status_code == 409


def test_rollback_restores_the_previous_version_as_its_own_deployment(
    api, approver, data_scientist, promotion, store_root
):
    _approve(api(approver), promotion["request_id"])
    assert _stages() == {"1.0.0": "archived", "1.1.0": "production"}
    response = api(data_scientist).post(f"{BASE}/rollback/", {"reason": "latency spike"},
                                        format="json")
    assert response.status_code == 202, response.json()
    request = response.json()["request"]
    assert (request["version"], request["from_stage"], request["kind"]) == (
        "1.0.0", "archived", "rollback")
    _approve(api(approver), request["id"])
    assert _stages() == {"1.0.0": "production", "1.1.0": "archived"}
    rollback = Deployment.objects.filter(kind="rollback").get()
    assert (rollback.version.version, rollback.replaced.version) == ("1.0.0", "1.1.0")
    assert rollback.status == "completed"
    retired = json.loads(
        (Path(store_root) / "archived/churn_prediction/v1.1.0/metadata.json").read_text())
    assert (retired["replaced_by"], retired["reason"]) == ("1.0.0", "latency spike")


def test_rollback_without_a_previous_version_is_a_conflict(api, data_scientist, validated):
    validated("1.0.0", stage="production")
    with Unchanged():
        response = api(data_scientist).post(f"{BASE}/rollback/", {"reason": "x"},
                                            format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "no_rollback_target"


def test_retirement_needs_an_approver_and_a_reason(api, data_scientist, approver, validated,
                                                   store_root):
    validated("1.0.0", stage="production")
    url = f"{BASE}/versions/1.0.0/transitions/"
    assert api(data_scientist).post(url, {"to_stage": "archived", "reason": "x"},
                                    format="json").status_code == 403
    no_reason = api(approver).post(url, {"to_stage": "archived"}, format="json")
    assert no_reason.status_code == 400
    assert "reason" in no_reason.json()["errors"]
    response = api(approver).post(url, {"to_stage": "archived", "reason": "model deprecated"},
                                  format="json")
    assert response.json()["deployment"]["status"] == "completed"
    assert _stages() == {"1.0.0": "archived"}
    metadata = json.loads(
        (Path(store_root) / "archived/churn_prediction/v1.0.0/metadata.json").read_text())
    assert metadata["reason"] == "model deprecated"
    assert "replaced_by" not in metadata


def test_the_approvals_queue_shows_metrics_beside_production(api, approver, promotion):
    body = api(approver).get("/api/v1/approvals/?status=pending").json()
    assert body["count"] == 1
    item = body["results"][0]
    assert item["candidate_metrics"]["accuracy"] == 0.82
    assert item["production"]["version"] == "1.0.0"
    assert item["production"]["comparison"]["accuracy"]["baseline"] == 0.80
    assert item["validation"]["status"] == "passed"


def test_deployments_are_listed_per_model(api, viewer, approver, promotion):
    _approve(api(approver), promotion["request_id"])
    body = api(viewer).get("/api/v1/deployments/?model=churn_prediction&status=completed").json()
    kinds = [(d["version"], d["to_stage"], d["kind"]) for d in body["results"]]
    assert ("1.1.0", "production", "promotion") in kinds


def test_approvers_are_emailed_but_not_the_requester_or_author(
    mailoutbox, approver, second_approver, viewer, data_scientist, promotion
):
    recipients = sorted(address for message in mailoutbox for address in message.to)
    assert recipients == ["april@example.org", "bea@example.org"]
    message = mailoutbox[0]
    assert "churn_prediction 1.1.0 → production" in message.subject
    assert f"/admin/governance/approvalrequest/{promotion['request_id']}/change/" in message.body
    assert "dana@example.org" not in recipients


def test_a_request_whose_own_validation_fails_is_stale_at_once(api, data_scientist, approver,
                                                               validated, store_root):
    version = validated("1.0.0", stage="staging")
    # Damaged after its registration's validation: the promotion's re-run will fail.
    (Path(store_root) / "staging/churn_prediction/v1.0.0/model.joblib").write_bytes(b"broken")
    response = api(data_scientist).post(f"{BASE}/versions/1.0.0/transitions/",
                                        {"to_stage": "production", "reason": "ready"},
                                        format="json")
    assert response.status_code == 202, response.json()
    request = ApprovalRequest.objects.get(pk=response.json()["request"]["id"])
    assert request.validation_run.status == "failed"
    assert request.status == "stale"  # before any approver spends time on it
    assert _approve(api(approver), request.pk).status_code == 409
    assert ModelVersion.objects.get(pk=version.pk).stage == "staging"


def test_a_viewer_rejecting_without_a_comment_is_refused_and_audited(api, viewer, promotion):
    before = AuditEvent.objects.filter(action="permission.denied").count()
    response = api(viewer).post(f"/api/v1/approvals/{promotion['request_id']}/reject",
                                {"comment": ""}, format="json")
    assert response.status_code == 403
    assert AuditEvent.objects.filter(action="permission.denied").count() == before + 1


def test_the_approvals_list_costs_the_same_queries_for_one_request_or_six(
    api, data_scientist, approver
):
    """Each request shows production's metrics and the comparison under its model's policy:
    fetched once for the page, not per row."""
    from governance import services as governance

    def request_for(name):
        helpers.create_model(owner=data_scientist, name=name)
        old = helpers.register_direct(name, "1.0.0", actor=data_scientist)
        helpers.force_stage(old, "production")
        new = helpers.register_direct(name, "1.1.0", actor=data_scientist)
        helpers.force_stage(new, "staging")
        helpers.mark_validated(new)
        governance.transition_request(version=new, to_stage="production",
                                      actor=data_scientist, reason="better")

    client = api(approver)
    counts = []
    for total in (1, 3, 6):
        while ApprovalRequest.objects.count() < total:
            request_for(f"model_{ApprovalRequest.objects.count()}")
        with helpers.QueryCount() as queries:
            response = client.get("/api/v1/approvals/?status=pending")
        assert response.json()["count"] == total
        assert all(r["production"]["comparison"] for r in response.json()["results"])
        counts.append(len(queries))
    assert counts[0] == counts[1] == counts[2] > 0, counts


def test_the_approval_email_is_composed_when_sent_and_a_decided_request_sends_nothing(
    mailoutbox, approver, second_approver, promotion, settings, django_user_model
):
    """The worker may send long after the request was made (it was down, or busy): the
    message says what holds then."""
    from governance import notifications, services

    request = ApprovalRequest.objects.get(pk=promotion["request_id"])
    ApprovalRequest.objects.filter(pk=request.pk).update(approvals_required=2)
    services.approval_decide(request=request, actor=approver, decision="approve",
                             comment="fine")
    mailoutbox.clear()
    settings.APP_BASE_URL = "http://models.example.org:8123"

    assert notifications.approvers_notify(request.pk) == 1
    [message] = mailoutbox
    assert message.to == ["bea@example.org"]  # april has decided already
    assert "Approvals: 1 of 2 needed" in message.body
    assert (f"http://models.example.org:8123/admin/governance/approvalrequest/{request.pk}"
            "/change/") in message.body

    services.approval_decide(request=request, actor=second_approver, decision="approve",
                             comment="fine too")
    # A third approver joins later: she may not decide a request that is already approved.
    from core import roles
    from tests.conftest import _person

    _person(django_user_model, "cleo", roles.APPROVER, is_staff=True)
    mailoutbox.clear()
    assert notifications.approvers_notify(request.pk) == 0
    assert mailoutbox == []
