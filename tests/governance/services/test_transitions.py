"""transition_request and version_force_stage: who may ask for which move (the transition
table), what each move needs (a reason, a passed validation), and what asking does (a request
when the policy wants approvals, else a deployment). A refusal changes nothing."""

from __future__ import annotations

import json

import pytest

from core.errors import ApplicationError, Conflict, Forbidden
from core.models import AuditEvent
from governance import rules, services
from governance.models import ApprovalRequest, Deployment
from tests import helpers
from tests.helpers import Unchanged

pytestmark = pytest.mark.django_db


@pytest.fixture
def version(data_scientist, churn_model):
    """churn_prediction 1.0.0, registered (no validation run: these tests do not need one)."""
    return helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)


def test_a_role_the_table_does_not_name_is_refused_and_audited(version, viewer):
    with Unchanged(), pytest.raises(Forbidden) as refused:
        services.transition_request(version=version, to_stage="staging", actor=viewer)
    assert refused.value.detail == rules.move_refusal(
        viewer, rules.TRANSITIONS[("experiment", "staging")], "experiment", "staging")
    event = AuditEvent.objects.get(action="permission.denied")
    assert event.actor_name == "vic"
    assert json.loads(event.after) == {"attempted": "transition.experiment->staging"}


def test_a_move_outside_the_table_is_a_conflict_naming_the_allowed_moves(version,
                                                                         data_scientist):
    with Unchanged(allow_actions=()), pytest.raises(Conflict) as refused:
        services.transition_request(version=version, to_stage="production",
                                    actor=data_scientist)
    assert (refused.value.field, refused.value.get_codes()) == ("to_stage", "invalid_transition")
    assert rules.allowed_moves("experiment") in str(refused.value.detail)


def test_an_unknown_stage_is_a_bad_request_naming_the_field(version, data_scientist):
    with Unchanged(allow_actions=()), pytest.raises(ApplicationError) as refused:
        services.transition_request(version=version, to_stage="qa", actor=data_scientist)
    assert (refused.value.status_code, refused.value.field) == (400, "to_stage")


def test_a_move_without_approval_is_a_deployment_at_once(version, data_scientist):
    outcome = services.transition_request(version=version, to_stage="staging",
                                          actor=data_scientist, reason="try it")
    assert outcome.request is None
    deployment = outcome.deployment
    assert (deployment.from_stage, deployment.to_stage, deployment.kind, deployment.status) == (
        "experiment", "staging", "promotion", "pending")
    event = AuditEvent.objects.get(action="deployment.requested")
    assert (event.actor_name, event.reason) == ("dana", "try it")


def test_production_needs_a_passed_validation_and_then_opens_a_request(version,
                                                                       data_scientist):
    helpers.force_stage(version, "staging")
    with Unchanged(allow_actions=()), pytest.raises(Conflict, match="no finished validation"):
        services.transition_request(version=version, to_stage="production",
                                    actor=data_scientist)
    helpers.mark_validated(version)
    outcome = services.transition_request(version=version, to_stage="production",
                                          actor=data_scientist, reason="ready")
    request = outcome.request
    assert outcome.deployment is None
    assert (request.status, request.approvals_required, request.requested_by) == (
        "pending", 1, data_scientist)
    assert request.validation_run.trigger == "promotion"  # validated again for the request
    assert json.loads(AuditEvent.objects.get(action="request.created").after)["to"] == \
        "production"
    with Unchanged(allow_actions=()), pytest.raises(Conflict, match="pending request"):
        services.transition_request(version=version, to_stage="production",
                                    actor=data_scientist, reason="again")


def test_a_retirement_needs_a_reason(version, approver):
    helpers.force_stage(version, "production")
    with Unchanged(allow_actions=()), pytest.raises(ApplicationError) as refused:
        services.transition_request(version=version, to_stage="archived", actor=approver,
                                    reason="  ")
    assert refused.value.field == "reason"


def test_a_forced_move_is_the_admins_alone(version, data_scientist, approver):
    for person in (data_scientist, approver):
        with Unchanged(), pytest.raises(Forbidden, match="needs the role admin"):
            services.version_force_stage(version=version, to_stage="staging", actor=person,
                                         reason="hurry")
    assert not Deployment.objects.exists()


def test_rollback_asks_to_bring_back_the_version_production_had_before(data_scientist,
                                                                       churn_model):
    first = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    with Unchanged(allow_actions=()), pytest.raises(Conflict) as refused:
        services.rollback_request(model=churn_model, actor=data_scientist, reason="bad")
    assert refused.value.get_codes() == "no_rollback_target"
    helpers.force_stage(first, "production")
    second = helpers.register_direct("churn_prediction", "1.1.0", actor=data_scientist)
    helpers.force_stage(second, "production")
    assert services.rollback_target(churn_model) == first
    outcome = services.rollback_request(model=churn_model, actor=data_scientist,
                                        reason="1.1.0 misbehaves")
    assert (outcome.request.version, outcome.request.kind, outcome.request.from_stage) == (
        first, "rollback", "archived")
    assert ApprovalRequest.objects.get().reason == "1.1.0 misbehaves"
