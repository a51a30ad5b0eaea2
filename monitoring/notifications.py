"""Sending an alert: the e-mail to the model's owner, and signed webhooks (to checked,
public addresses only: monitoring.webhook_targets)."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time

from django.conf import settings
from django.core.mail import send_mail

from monitoring import webhook_targets


class DeliveryError(Exception):
    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def alert_payload(delivery) -> dict:
    alert = delivery.alert
    return {
        "event": f"alert.{delivery.event}",
        "delivery_id": delivery.pk,
        "alert": {
            "id": alert.pk, "model": alert.model.name, "status": alert.status,
            "severity": alert.severity, "title": alert.title, "metric": alert.rule.metric,
            "statistic": alert.rule.statistic, "value": alert.value,
            "threshold": alert.threshold, "count": alert.count,
            "first_seen": alert.first_seen.isoformat(), "last_seen": alert.last_seen.isoformat(),
            "evidence": alert.evidence, "resolution": alert.resolution,
            "url": f"{settings.APP_BASE_URL}/admin/monitoring/alert/{alert.pk}/change/",
        },
    }


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Mgov-Signature value: HMAC-SHA256 of "<timestamp>.<body>" with the secret."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def alert_send(delivery) -> int | None:
    """Send one delivery; raises DeliveryError when it did not arrive."""
    payload = alert_payload(delivery)
    if delivery.channel == "email":
        alert = payload["alert"]
        subject = (f"[model governance] {alert['severity']}: {alert['model']}: "
                   f"{alert['title']}" if delivery.event == "opened" else
                   f"[model governance] resolved: {alert['model']}: {alert['title']}")
        body = (f"{alert['title']}\n\nModel: {alert['model']}\nSeverity: {alert['severity']}\n"
                f"Status: {alert['status']}\nSeen {alert['count']} time(s) since "
                f"{alert['first_seen']}\n\nEvidence:\n"
                f"{json.dumps(alert['evidence'], indent=2, default=str)[:4000]}\n\n{alert['url']}\n")
        try:
            send_mail(subject[:250], body, settings.DEFAULT_FROM_EMAIL, [delivery.target])
        except OSError as exc:
            raise DeliveryError(f"e-mail not sent: {exc}") from None
        return None
    try:
        target = webhook_targets.resolve(delivery.target)
    except webhook_targets.Refused as exc:
        raise DeliveryError(str(exc)) from None
    except OSError as exc:
        raise DeliveryError(f"the receiver's host name does not resolve: {exc}") from None
    body = json.dumps(payload, default=str, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    connection = webhook_targets.connection(target, timeout=settings.WEBHOOK_TIMEOUT_SECONDS)
    try:
        connection.request("POST", target.path, body=body, headers={
            "Content-Type": "application/json",
            "User-Agent": "model-governance-webhook/1",
            "X-Mgov-Event": payload["event"],
            "X-Mgov-Delivery": str(delivery.pk),
            "X-Mgov-Timestamp": timestamp,
            "X-Mgov-Signature": sign(delivery.webhook.secret, timestamp, body),
        })
        reply = connection.getresponse()
        status, location = reply.status, reply.getheader("Location")
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"no answer from the receiver: {exc}") from None
    finally:
        connection.close()
    if 300 <= status < 400:
        raise DeliveryError(f"the receiver answered {status}, a redirect to {location}: "
                            "redirects are not followed", status=status)
    if not 200 <= status < 300:
        raise DeliveryError(f"the receiver answered {status}", status=status)
    return status
