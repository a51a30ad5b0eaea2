"""The audit trail's periodic tasks."""

import logging

from celery import shared_task

from core import audit
from core.accounts import system_user

logger = logging.getLogger(__name__)


@shared_task(name="core.audit_checkpoint_write")
def audit_checkpoint_write() -> dict | None:
    """Every minute: a signed checkpoint of the audit chain's head, kept outside the DB."""
    return audit.audit_checkpoint_write()


@shared_task(name="core.audit_chain_verify")
def audit_chain_verify() -> dict:
    """Daily: walk the whole chain and record the verification (audit.verified)."""
    report = audit.audit_chain_verify(actor=system_user())
    if not report.ok:
        logger.error("audit chain BROKEN: %s", report.problem)
    return {"ok": report.ok, "checked": report.checked, "problem": report.problem}
