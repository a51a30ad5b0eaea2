"""Policies in the admin: admins only, each change audited with old and new values."""

from __future__ import annotations

import json

import pytest

from core.models import AuditEvent
from governance.models import Policy

pytestmark = pytest.mark.django_db


def test_a_policy_change_in_the_admin_is_audited_with_old_and_new_values(client, admin_user,
                                                                          policy):
    client.force_login(admin_user)
    form = {
        "model": "", "min_metrics": '{"accuracy": 0.85}', "max_metrics": "{}",
        "regression_tolerance": "0.02", "regression_metrics": json.dumps(policy.regression_metrics),
        "lower_is_better": json.dumps(policy.lower_is_better), "latency_budget_ms": "150",
        "load_timeout_seconds": "60", "load_memory_mb": "2048", "approvals_required": "2",
        "transitions_requiring_approval": json.dumps(policy.transitions_requiring_approval),
        "claimed_metrics_tolerance": "0.02", "claimed_metrics_blocks": "on",
        "required_card_sections": "[]", "review_interval_days": "365",
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
