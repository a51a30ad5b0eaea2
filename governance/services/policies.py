"""Changing a policy (admins; audited with old and new values)."""

from __future__ import annotations

import logging

from django.db import transaction

from core import audit, roles
from core.errors import ApplicationError
from governance import policies
from governance.models import (
    Policy,
)
from registry import cards

logger = logging.getLogger(__name__)


def policy_save(*, policy: Policy, actor, changes: dict) -> Policy:
    """Create or change a policy (the admin's form), audited with old and new values."""
    if not roles.has_role(actor, roles.ADMIN_ROLES):
        raise audit.denied(actor=actor, subject=policy if policy.pk else None, attempted="policy.change",
                    message="Only admins change policies.")
    if "required_card_sections" in changes:
        unknown = cards.unknown_sections(changes["required_card_sections"])
        if unknown:
            raise ApplicationError(
                f"not model card sections: {', '.join(unknown)}; a list of "
                f"{', '.join(cards.SECTIONS)}", field="required_card_sections")
    with transaction.atomic(durable=True):
        before = policies.policy_snapshot(Policy.objects.get(pk=policy.pk)) if policy.pk else None
        for key, value in changes.items():
            if key not in policies.POLICY_FIELDS + ["model", "risk_tier"]:
                raise ApplicationError("not a policy field", field=key)
            setattr(policy, key, value)
        policy.save()
        changed_before, changed_after = audit.changes(before, policies.policy_snapshot(policy))
        audit.record(action="policy.created" if before is None else "policy.changed",
                     actor=actor, subject=policy,
                     model_name=policy.model.name if policy.model_id else "",
                     before=changed_before, after=changed_after)
    return policy
