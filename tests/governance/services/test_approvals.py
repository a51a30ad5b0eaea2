"""approval_decide: four eyes (neither the requester nor the version's author decides, each
rule on its own), a rejection says why, and a closed request takes no more decisions."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group

from core import roles
from core.errors import ApplicationError, Conflict, Forbidden
from core.models import AuditEvent
from governance import services
from governance.models import Approval, Deployment
from tests import helpers
from tests.helpers import Unchanged

pytestmark = pytest.mark.django_db


@pytest.fixture
def ask(data_scientist, churn_model):
    """ask(by) -> a pending request to move dana's 1.0.0 from staging to production."""

    def make(by):
        version = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
        helpers.force_stage(version, "staging")
        helpers.mark_validated(version)
        return services.transition_request(version=version, to_stage="production", actor=by,
                                           reason="ready").request

    return make


def _refused(request, actor, said):
    with Unchanged(), pytest.raises(Forbidden) as refused:
        services.approval_decide(request=request, actor=actor, decision="approve")
    assert refused.value.detail == said
    event = AuditEvent.objects.filter(action="permission.denied").order_by("seq").last()
    assert (event.actor_name, event.reason) == (actor.username, said)
    assert json.loads(event.after) == {"attempted": "request.approve"}


def test_the_requester_may_not_decide_even_as_an_approver_who_did_not_register_it(ask,
                                                                                  approver):
    approver.groups.add(Group.objects.get(name=roles.DATA_SCIENTIST))  # april may ask
    request = ask(approver)
    _refused(request, approver, "Four eyes: you asked for this move, so someone else must "
                                "decide.")


def test_the_versions_author_may_not_decide_even_as_an_approver_who_did_not_ask(
    ask, data_scientist, other_data_scientist
):
    request = ask(other_data_scientist)  # sam asks for dana's version
    data_scientist.groups.add(Group.objects.get(name=roles.APPROVER))
    dana = type(data_scientist).objects.get(pk=data_scientist.pk)  # roles are read once a user
    _refused(request, dana, "Four eyes: you registered this version, so someone else must "
                            "decide.")


def test_a_decision_is_approve_or_reject(ask, data_scientist, approver):
    request = ask(data_scientist)
    with Unchanged(allow_actions=()), pytest.raises(ApplicationError) as refused:
        services.approval_decide(request=request, actor=approver, decision="maybe")
    assert refused.value.field == "decision"


def test_a_rejection_says_why_and_closes_the_request(ask, data_scientist, approver,
                                                     second_approver):
    request = ask(data_scientist)
    with Unchanged(allow_actions=()), pytest.raises(ApplicationError) as refused:
        services.approval_decide(request=request, actor=approver, decision="reject",
                                 comment=" ")
    assert refused.value.field == "comment"
    rejected = services.approval_decide(request=request, actor=approver, decision="reject",
                                        comment="the November data is not representative")
    assert (rejected.status, rejected.status_reason) == (
        "rejected", "the November data is not representative")
    assert Approval.objects.get().approver == approver
    event = AuditEvent.objects.get(action="request.rejected")
    assert (event.actor_name, event.reason) == ("april", rejected.status_reason)
    with Unchanged(allow_actions=()), pytest.raises(Conflict) as closed:
        services.approval_decide(request=request, actor=second_approver, decision="approve")
    assert closed.value.get_codes() == "request_closed"


def test_an_approval_waits_for_the_requests_own_validation(ask, data_scientist, approver):
    request = ask(data_scientist)
    assert not request.validation_run.finished  # queued on commit, not run yet
    decided = services.approval_decide(request=request, actor=approver, decision="approve",
                                       comment="fine")
    assert decided.status == "pending"
    assert json.loads(AuditEvent.objects.get(action="request.approval_given").after) == {
        "approvals": 1, "required": 1}
    with Unchanged(allow_actions=()), pytest.raises(Conflict) as twice:
        services.approval_decide(request=request, actor=approver, decision="approve")
    assert twice.value.get_codes() == "already_decided"


def test_the_approver_who_completes_a_request_sets_its_deployment_off(ask, data_scientist,
                                                                      approver):
    """dana asks, april approves: april is the actor of the approval and of every deployment
    event, which also name dana as the one who asked."""
    request = ask(data_scientist)
    services.validation_execute(request.validation_run_id)  # passes: nothing waits for it
    first = AuditEvent.objects.order_by("seq").last().seq
    services.approval_decide(request=request, actor=approver, decision="approve",
                             comment="fine")
    deployment = Deployment.objects.get(request=request)
    assert (deployment.requested_by, deployment.deployed_by) == (data_scientist, approver)
    assert [a.approver for a in deployment.approvals()] == [approver]
    events = AuditEvent.objects.filter(seq__gt=first).order_by("seq")
    assert [(e.action, e.actor_name) for e in events] == [
        ("request.approval_given", "april"), ("request.approved", "april"),
        ("deployment.requested", "april")]
    assert json.loads(events.get(action="deployment.requested").after) == {
        "deployment": deployment.pk, "version": "1.0.0", "from": "staging",
        "to": "production", "kind": "promotion", "requested_by": "dana",
        "approved_by": ["april"], "deployed_by": "april"}


def test_when_validation_finishes_after_the_approval_the_approver_still_deploys(
    ask, data_scientist, approver
):
    request = ask(data_scientist)
    services.approval_decide(request=request, actor=approver, decision="approve")
    assert not Deployment.objects.filter(request=request).exists()  # validation runs first
    services.validation_execute(request.validation_run_id)
    deployment = Deployment.objects.get(request=request)
    assert (deployment.requested_by, deployment.deployed_by) == (data_scientist, approver)
    approved = AuditEvent.objects.get(action="request.approved")
    assert (approved.actor_name, approved.reason) == (
        "april", f"validation #{request.validation_run_id} passed after the approvals")
    deployed = AuditEvent.objects.filter(action="deployment.requested").order_by("seq").last()
    assert deployed.actor_name == "april"


def test_a_move_without_approvals_is_deployed_by_whoever_moved_it(data_scientist, churn_model):
    version = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    outcome = services.transition_request(version=version, to_stage="staging",
                                          actor=data_scientist)
    deployment = outcome.deployment
    assert (deployment.requested_by, deployment.deployed_by, deployment.approvals()) == (
        data_scientist, data_scientist, [])
