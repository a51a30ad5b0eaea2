"""Which policy applies to a model: its own row, else its risk tier's, else the project
default."""

from __future__ import annotations

from datetime import timedelta

from django.forms.models import model_to_dict

from governance.models import Policy

POLICY_FIELDS = [
    "min_metrics", "max_metrics", "regression_tolerance", "regression_metrics", "lower_is_better",
    "latency_budget_ms", "load_timeout_seconds", "load_memory_mb", "approvals_required",
    "transitions_requiring_approval", "skipped_check_blocks", "claimed_metrics_tolerance",
    "claimed_metrics_blocks", "require_measured_evaluation", "required_card_sections",
    "review_interval_days",
]


def project_default() -> Policy:
    # a migration made it (governance/0004)
    return Policy.objects.get(model__isnull=True, risk_tier="")


def effective_policy(model) -> Policy:
    if model is None:
        return project_default()
    own = Policy.objects.filter(model=model).first()
    if own is not None:
        return own
    tier = (Policy.objects.filter(model__isnull=True, risk_tier=model.risk_tier).first()
            if model.risk_tier else None)
    return tier or project_default()


def effective_policies(model_ids) -> dict:
    """{model id: its policy} for many models, in three queries (a list's page)."""
    from registry.models import RegisteredModel

    model_ids = set(model_ids)
    own = {policy.model_id: policy for policy in Policy.objects.filter(model_id__in=model_ids)}
    rest = model_ids - set(own)
    if not rest:
        return own
    tiers = dict(RegisteredModel.objects.filter(pk__in=rest).values_list("pk", "risk_tier"))
    shared = {policy.risk_tier: policy for policy in Policy.objects.filter(model__isnull=True)}
    return {**own, **{pk: shared.get(tiers.get(pk) or "") or shared[""] for pk in rest}}


def review_due(policy: Policy, start):
    """When a production version that entered production (or was last reviewed) at `start` is
    next due for review under `policy`; None when the policy asks for no periodic review."""
    if not policy.review_interval_days:
        return None
    return start + timedelta(days=policy.review_interval_days)


def policy_snapshot(policy: Policy) -> dict:
    snapshot = model_to_dict(policy, fields=POLICY_FIELDS)
    snapshot["source"] = str(policy)
    return snapshot
