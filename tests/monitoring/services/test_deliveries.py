"""Deliveries of an alert (e-mail, webhooks): retried with backoff, sent exactly once, failed
and audited when they never arrive."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from core.models import AuditEvent
from monitoring import services as monitoring_services
from tests.monitoring.traffic import log_window


@pytest.mark.django_db(transaction=True)
def test_a_webhook_that_fails_twice_then_succeeds_gets_the_alert_exactly_once(
    monitored, admin_user, receiver, settings, mailoutbox
):
    import hashlib
    import hmac

    from monitoring import tasks
    from monitoring.models import AlertDelivery

    url, received = receiver
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]  # the receiver is on loopback
    settings.ALERT_DELIVERY_BACKOFF_SECONDS = [0, 0, 0]
    monitored.model.owner.email = "dana@library.example"
    monitored.model.owner.save()
    monitoring_services.webhook_save(actor=admin_user, name="on-call", url=url, secret="s3cret")
    now = timezone.now()
    log_window(monitored, end=now, seed=1, shift_tenure=1.0)
    monitoring_services.monitoring_pass(model=monitored.model, now=now)  # first attempt, on commit
    webhook = AlertDelivery.objects.get(channel="webhook")
    assert (webhook.status, webhook.attempts, webhook.response_status) == ("retrying", 1, 503)
    for _ in range(5):  # the periodic sweep, more often than needed
        tasks.deliveries_due()
    webhook.refresh_from_db()
    assert (webhook.status, webhook.attempts, webhook.response_status) == ("sent", 3, 200)
    assert [status for status, _, _ in received] == [503, 503, 200]  # accepted once, only
    _status, headers, body = received[-1]
    expected = hmac.new(b"s3cret", headers["X-Mgov-Timestamp"].encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    assert headers["X-Mgov-Signature"] == f"sha256={expected}"
    assert headers["X-Mgov-Delivery"] == str(webhook.pk)
    payload = json.loads(body)
    assert payload["event"] == "alert.opened"
    assert payload["alert"]["model"] == "loans" and "tenure" in payload["alert"]["title"]
    assert set(payload["alert"]["evidence"]["versions"]["1.0.0"]["features"]) == {"tenure"}
    # The owner's e-mail went out once, on the first try.
    (email,) = [d for d in AlertDelivery.objects.filter(channel="email")]
    assert email.status == "sent"
    assert len(mailoutbox) == 1 and "tenure" in mailoutbox[0].subject
    assert mailoutbox[0].to == ["dana@library.example"]


@pytest.mark.django_db(transaction=True)
def test_a_delivery_that_never_arrives_is_marked_failed_and_audited(monitored, admin_user,
                                                                    settings):
    from monitoring import tasks
    from monitoring.models import AlertDelivery

    settings.ALERT_DELIVERY_BACKOFF_SECONDS = [0, 0]
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    monitoring_services.webhook_save(actor=admin_user, name="gone", url="http://127.0.0.1:9/nothing",
                          secret="x")
    now = timezone.now()
    log_window(monitored, end=now, seed=1, shift_tenure=1.0)
    monitoring_services.monitoring_pass(model=monitored.model, now=now)
    for _ in range(4):
        tasks.deliveries_due()
    delivery = AlertDelivery.objects.get(channel="webhook")
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert "no answer" in delivery.last_error
    assert AuditEvent.objects.filter(action="alert.delivery_failed").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_delivery_that_raises_something_unexpected_is_retried_then_failed(
    monitored, admin_user, settings
):
    from monitoring import tasks
    from monitoring.models import AlertDelivery

    settings.ALERT_DELIVERY_BACKOFF_SECONDS = [0]
    # An address saved around the form's checks: sending raises BadHeaderError (a ValueError).
    monitored.model.owner.email = "dana@library.example\nBcc: eve@example.org"
    monitored.model.owner.save()
    now = timezone.now()
    log_window(monitored, end=now, seed=1, shift_tenure=1.0)
    monitoring_services.monitoring_pass(model=monitored.model, now=now)
    tasks.deliveries_due()
    delivery = AlertDelivery.objects.get(channel="email")
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert "BadHeaderError" in delivery.last_error


def test_two_webhooks_with_the_same_url_each_get_their_delivery(monitored, admin_user):
    from monitoring.models import AlertDelivery

    first = monitoring_services.webhook_save(actor=admin_user, name="on-call", url="https://hooks.example/a",
                                  secret="one")
    second = monitoring_services.webhook_save(actor=admin_user, name="audit", url="https://hooks.example/a",
                                   secret="two")
    now = timezone.now()
    log_window(monitored, end=now, seed=1, shift_tenure=1.0)
    (run,) = monitoring_services.monitoring_pass(model=monitored.model, now=now)
    assert run.status == "alerting"
    assert sorted(AlertDelivery.objects.filter(channel="webhook").values_list(
        "webhook", flat=True)) == [first.pk, second.pk]
