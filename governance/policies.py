"""Which policy applies to a model: its own row, or the project default."""

from __future__ import annotations

from django.forms.models import model_to_dict

from governance.models import Policy

POLICY_FIELDS = [
    "min_metrics", "max_metrics", "regression_tolerance", "regression_metrics", "lower_is_better",
    "latency_budget_ms", "load_timeout_seconds", "load_memory_mb", "approvals_required",
    "transitions_requiring_approval", "skipped_check_blocks",
]


def project_default() -> Policy:
    return Policy.objects.get(model__isnull=True)  # a migration made it (governance/0004)


def effective_policy(model) -> Policy:
    own = Policy.objects.filter(model=model).first() if model is not None else None
    return own or project_default()


def effective_policies(model_ids) -> dict:
    """{model id: its policy} for many models, in two queries (a list's page)."""
    model_ids = set(model_ids)
    own = {policy.model_id: policy for policy in Policy.objects.filter(model_id__in=model_ids)}
    default = project_default() if model_ids - set(own) else None
    return {model_id: own.get(model_id, default) for model_id in model_ids}


def policy_snapshot(policy: Policy) -> dict:
    snapshot = model_to_dict(policy, fields=POLICY_FIELDS)
    snapshot["source"] = str(policy)
    return snapshot
