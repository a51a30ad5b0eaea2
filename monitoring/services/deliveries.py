"""Deliveries of alerts (e-mail, webhooks): rows sent after commit, retried with backoff,
claimed by compare-and-set; and the webhooks they go to."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core import audit, roles
from core.accounts import system_user
from core.errors import ApplicationError, scrub_paths
from monitoring import notifications, webhook_targets
from monitoring.models import (
    AlertDelivery,
    DeliveryStatus,
    Webhook,
)

logger = logging.getLogger(__name__)
def webhook_save(*, actor, webhook: Webhook | None = None, **changes) -> Webhook:
    if not roles.has_role(actor, roles.ADMIN_ROLES):
        raise audit.denied(actor=actor, subject=webhook, attempted="webhook.change", message="Only admins manage webhooks.")
    fields = ["name", "url", "secret", "model", "min_severity", "enabled"]
    unknown = set(changes) - set(fields)
    if unknown:
        raise ApplicationError("not a webhook field", field=sorted(unknown)[0])
    if "url" in changes or webhook is None:  # an old URL refused now can still be switched off
        webhook_targets.url_check(str(changes.get("url", "")))
    with transaction.atomic(durable=True):
        created = webhook is None
        webhook = webhook or Webhook()
        before = None if created else {f: str(getattr(webhook, f)) for f in fields
                                       if f != "secret"}
        for key, value in changes.items():
            setattr(webhook, key, value)
        webhook.save()
        after = {f: str(getattr(webhook, f)) for f in fields if f != "secret"}
        audit.record(action="webhook.created" if created else "webhook.changed", actor=actor,
                     subject=webhook, before=before,
                     after={**after, "secret_changed": "secret" in changes})
    return webhook



def delivery_attempt(delivery_id: int) -> AlertDelivery | None:
    """Send one due delivery once. Claimed by a compare-and-set, so two workers (or a retry
    and the periodic sweep) never send it twice at once; a sent one is never sent again."""
    now = timezone.now()
    claimed = AlertDelivery.objects.filter(
        pk=delivery_id, status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING],
        next_attempt_at__lte=now,
    ).update(status=DeliveryStatus.SENDING, attempts=F("attempts") + 1, next_attempt_at=now)
    if not claimed:
        return None
    delivery = AlertDelivery.objects.select_related("alert__model", "alert__rule",
                                                    "webhook").get(pk=delivery_id)
    try:
        response_status = notifications.alert_send(delivery)
        error = ""
    except notifications.DeliveryError as exc:
        response_status, error = exc.status, str(exc)
    except Exception as exc:  # a bad address or URL: retried, then failed, never stuck
        logger.exception("delivery %s raised", delivery_id)
        response_status, error = None, f"{type(exc).__name__}: {exc}"
    with transaction.atomic():
        if not error:
            delivery.status, delivery.sent_at = DeliveryStatus.SENT, timezone.now()
        elif delivery.attempts > len(settings.ALERT_DELIVERY_BACKOFF_SECONDS):
            delivery.status = DeliveryStatus.FAILED
        else:
            delivery.status = DeliveryStatus.RETRYING
            delivery.next_attempt_at = timezone.now() + timedelta(
                seconds=settings.ALERT_DELIVERY_BACKOFF_SECONDS[delivery.attempts - 1])
        delivery.last_error, delivery.response_status = scrub_paths(error)[:500], response_status
        delivery.save(update_fields=["status", "sent_at", "next_attempt_at", "last_error",
                                     "response_status"])
        if delivery.status == DeliveryStatus.FAILED:
            audit.record(action="alert.delivery_failed", actor=system_user(),
                         subject=delivery.alert, model_name=delivery.alert.model.name,
                         reason=error, after={"channel": delivery.channel,
                                              "target": delivery.target,
                                              "attempts": delivery.attempts})
    return delivery


def deliveries_due(*, stuck_after_seconds: int = 300) -> list[int]:
    """Deliveries to try now: due retries, and sends a dead worker left `sending`."""
    now = timezone.now()
    AlertDelivery.objects.filter(
        status=DeliveryStatus.SENDING,
        next_attempt_at__lte=now - timedelta(seconds=stuck_after_seconds),
    ).update(status=DeliveryStatus.RETRYING)
    return list(AlertDelivery.objects.filter(
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING], next_attempt_at__lte=now,
    ).values_list("pk", flat=True))
