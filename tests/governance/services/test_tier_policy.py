"""A risk tier's policy: a model with no policy of its own follows its tier's (here: high
risk takes two approvals and a review every 180 days), else the project default."""

from __future__ import annotations

from datetime import timedelta

import pytest

from governance import policies, services
from governance.models import Policy
from registry import services as registry_services
from registry.models import RegisteredModel

pytestmark = pytest.mark.django_db


def test_a_high_risk_model_needs_two_approvals_and_a_review_every_180_days(
        admin_user, approver, second_approver, data_scientist, validated,
        django_capture_on_commit_callbacks):
    high = services.policy_save(policy=Policy(), actor=admin_user, changes={
        "risk_tier": "high", "approvals_required": 2, "review_interval_days": 180})
    model = RegisteredModel.objects.get(name="churn_prediction")
    assert policies.effective_policy(model) == policies.project_default()
    registry_services.model_risk_set(model=model, actor=approver, risk_tier="high",
                                     risk_reason="Decides who gets offers")
    model.refresh_from_db()
    assert policies.effective_policy(model) == high
    assert policies.effective_policies([model.pk]) == {model.pk: high}

    version = validated("1.0.0", stage="staging")
    # (The promotion's validation runs on commit, as a worker would run it.)
    with django_capture_on_commit_callbacks(execute=True):
        outcome = services.transition_request(version=version, to_stage="production",
                                              actor=data_scientist, reason="ready")
    assert outcome.request is not None and outcome.request.approvals_required == 2
    services.approval_decide(request=outcome.request, actor=approver, decision="approve",
                             comment="fine by me")
    version.refresh_from_db()
    assert version.stage == "staging"  # one approval of two
    with django_capture_on_commit_callbacks(execute=True):
        services.approval_decide(request=outcome.request, actor=second_approver,
                                 decision="approve", comment="agreed")
    version.refresh_from_db()
    assert version.stage == "production"
    assert version.review_due_at == version.stage_changed_at + timedelta(days=180)


def test_a_models_own_policy_wins_over_its_tiers(admin_user, approver, churn_model):
    services.policy_save(policy=Policy(), actor=admin_user,
                         changes={"risk_tier": "high", "approvals_required": 2})
    own = services.policy_save(policy=Policy(), actor=admin_user,
                               changes={"model": churn_model, "approvals_required": 3})
    registry_services.model_risk_set(model=churn_model, actor=approver, risk_tier="high",
                                     risk_reason="Decides who gets offers")
    churn_model.refresh_from_db()
    assert policies.effective_policy(churn_model) == own
