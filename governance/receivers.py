"""Governance listens to the registry's domain events and writes them to the audit trail."""

from django.dispatch import receiver

from governance import audit
from registry.signals import state_changed


@receiver(state_changed, dispatch_uid="governance.audit_registry_change")
def audit_registry_change(sender, *, action, actor, subject, before, after, reason, **_kwargs):
    audit.record(
        action=action, actor=actor, subject=subject, before=before, after=after, reason=reason
    )
