"""The audit trail's periodic task."""

from celery import shared_task

from core import audit


@shared_task(name="core.audit_checkpoint_write")
def audit_checkpoint_write() -> dict | None:
    """Every minute: a signed checkpoint of the audit chain's head, kept outside the DB."""
    return audit.audit_checkpoint_write()
