"""Domain events the registry emits inside the transaction of each change.

The registry may not import governance, which owns the audit trail; governance connects a
receiver to `state_changed` that writes the audit event synchronously, in the same
transaction, so a change and its audit record commit or roll back together.
"""

from django.dispatch import Signal

# kwargs: action (str), actor (User | None), subject (model instance), before (dict | None),
# after (dict | None), reason (str)
state_changed = Signal()


def emit(action: str, *, actor, subject, before=None, after=None, reason: str = "") -> None:
    state_changed.send(
        sender=type(subject),
        action=action,
        actor=actor,
        subject=subject,
        before=before,
        after=after,
        reason=reason,
    )
