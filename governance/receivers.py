"""Governance listens to the registry's domain events and to role changes.

Both receivers run synchronously inside the transaction of the change they record.
"""

from django.contrib.auth import get_user_model
from django.db.models.signals import m2m_changed
from django.dispatch import receiver

from governance import audit, context
from registry import roles
from registry.signals import state_changed


@receiver(state_changed, dispatch_uid="governance.audit_registry_change")
def audit_registry_change(sender, *, action, actor, subject, before, after, reason, **_kwargs):
    audit.record(
        action=action, actor=actor, subject=subject, before=before, after=after, reason=reason
    )
    if action == "version.registered":
        from governance.services import validation_request

        validation_request(version=subject, trigger="registration", actor=actor)


@receiver(m2m_changed, sender=get_user_model().groups.through,
          dispatch_uid="governance.audit_role_change")
def audit_role_change(sender, instance, action, reverse, model, pk_set, **_kwargs):
    if action not in {"post_add", "post_remove", "pre_clear"} or reverse:
        return
    user = instance
    if action == "pre_clear":
        names = sorted(user.groups.filter(name__in=roles.ALL_ROLES).values_list("name", flat=True))
    else:
        names = sorted(model.objects.filter(pk__in=pk_set, name__in=roles.ALL_ROLES)
                       .values_list("name", flat=True))
    if not names:
        return
    granted = action == "post_add"
    audit.record(
        action="role.granted" if granted else "role.revoked",
        actor=context.current_user(),
        subject=user,
        before=None if granted else {"roles": names},
        after={"roles": names} if granted else None,
    )
