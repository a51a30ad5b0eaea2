"""Changes of a person's rights are history: roles granted or revoked, superuser, staff and
active flags. These receivers record them in the audit trail, in the transaction of the
change (signals record here; they decide nothing)."""

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models.signals import m2m_changed, post_save, pre_save
from django.dispatch import receiver

from core import audit, context, roles


@receiver(m2m_changed, sender=get_user_model().groups.through,
          dispatch_uid="core.audit_role_change")
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


# Superuser status grants every role, staff status opens the admin, an inactive user can do
# nothing: changing any of them is a change of rights, audited like a role change.
PRIVILEGE_FIELDS = ("is_superuser", "is_staff", "is_active")


@receiver(pre_save, sender=get_user_model(), dispatch_uid="core.privileges_before")
def remember_privileges(sender, instance, raw, update_fields=None, **_kwargs):
    if update_fields is not None and not set(update_fields) & set(PRIVILEGE_FIELDS):
        instance._privileges_before = None  # e.g. a login touching last_login only
        return
    if raw or instance.pk is None:
        instance._privileges_before = None
        return
    instance._privileges_before = (
        sender.objects.filter(pk=instance.pk).values(*PRIVILEGE_FIELDS).first())


@receiver(post_save, sender=get_user_model(), dispatch_uid="core.privileges_after")
def audit_privilege_change(sender, instance, created, raw, update_fields=None, **_kwargs):
    if raw or (update_fields is not None and not set(update_fields) & set(PRIVILEGE_FIELDS)):
        return
    before = getattr(instance, "_privileges_before", None) or {}
    after = {field: getattr(instance, field) for field in PRIVILEGE_FIELDS}
    if created:
        # A new account only matters here if it starts with more than a plain user's rights.
        before = {"is_superuser": False, "is_staff": False, "is_active": after["is_active"]}
    changed = {k: v for k, v in after.items() if before.get(k, v) != v}
    if not changed:
        return
    write = audit.record if connection.in_atomic_block else audit.record_on_commit_safe
    write(action="privileges.changed", actor=context.current_user(), subject=instance,
          before={k: before[k] for k in changed}, after=changed)
