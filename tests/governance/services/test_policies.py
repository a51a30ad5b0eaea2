"""policy_save: admins alone change a policy, and each change is audited with the old and new
values of what changed."""

from __future__ import annotations

import json

import pytest

from core.errors import ApplicationError, Forbidden
from core.models import AuditEvent
from governance import policies, services
from governance.models import Policy
from tests.helpers import Unchanged

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("person", ["approver", "data_scientist", "viewer", "outsider"])
def test_only_an_admin_changes_a_policy_and_a_refusal_is_audited(request, policy, person):
    actor = request.getfixturevalue(person)
    with Unchanged(), pytest.raises(Forbidden, match="Only admins change policies"):
        services.policy_save(policy=policy, actor=actor, changes={"approvals_required": 0})
    event = AuditEvent.objects.get(action="permission.denied")
    assert (event.actor_name, json.loads(event.after)) == (
        actor.username, {"attempted": "policy.change"})
    assert Policy.objects.get(pk=policy.pk).approvals_required == 1


def test_a_change_is_audited_with_the_old_and_new_values_of_what_changed(admin_user, policy):
    services.policy_save(policy=policy, actor=admin_user,
                         changes={"approvals_required": 2, "min_metrics": {"accuracy": 0.8},
                                  "latency_budget_ms": policy.latency_budget_ms})
    assert Policy.objects.get(pk=policy.pk).approvals_required == 2
    event = AuditEvent.objects.get(action="policy.changed")
    assert event.actor_name == "ada"
    assert json.loads(event.before) == {"approvals_required": 1, "min_metrics": {}}
    assert json.loads(event.after) == {"approvals_required": 2,
                                       "min_metrics": {"accuracy": 0.8}}


def test_a_models_own_policy_is_created_audited_and_then_applies(admin_user, churn_model,
                                                                 policy):
    own = services.policy_save(policy=Policy(), actor=admin_user,
                               changes={"model": churn_model, "approvals_required": 3})
    assert policies.effective_policy(churn_model) == own != policy
    event = AuditEvent.objects.get(action="policy.created")
    assert (event.model_name, event.before) == ("churn_prediction", "")
    assert json.loads(event.after)["approvals_required"] == 3


def test_a_field_that_is_not_a_policys_is_refused_and_nothing_is_saved(admin_user, policy):
    with Unchanged(allow_actions=()), pytest.raises(ApplicationError) as refused:
        services.policy_save(policy=policy, actor=admin_user,
                             changes={"approvals_required": 2, "stage": "production"})
    assert refused.value.field == "stage"
