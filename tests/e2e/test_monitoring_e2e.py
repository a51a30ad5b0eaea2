"""Celery beat and a worker, for real, on the configured broker (Redis with REDIS_URL):
shifted traffic in the logs becomes, on the next scheduled pass, one alert naming the
feature, and a signed webhook that the receiver gets exactly once after two failures."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from django.utils import timezone

from monitoring.models import Alert, AlertDelivery, MonitoringRun
from tests.e2e.conftest import worker
from tests.monitoring.traffic import log_window, make_monitored

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"),
              pytest.mark.django_db(transaction=True)]


@pytest.fixture
def beat_and_worker(transactional_db, store_root, broker_dir, tmp_path):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every_two_seconds = IntervalSchedule.objects.create(every=2, period="seconds")
    for name, task in (("monitor", "monitoring.monitoring_pass_all"),
                       ("deliver", "monitoring.deliveries_due")):
        PeriodicTask.objects.create(name=f"e2e {name}", task=task, interval=every_two_seconds)
    with worker(store_root, broker_dir, tmp_path, "--beat",
                ALERT_DELIVERY_BACKOFF_SECONDS="1,1,1,1",
                WEBHOOK_ALLOWED_NETWORKS="127.0.0.1/32") as started:
        yield started


def test_beat_and_a_worker_raise_one_alert_and_deliver_it_once(
    data_scientist, admin_user, receiver, beat_and_worker, settings
):
    from monitoring import services as monitoring_services

    url, received = receiver
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]  # as the worker's environment says
    process, log_path = beat_and_worker
    monitored = make_monitored(data_scientist)
    monitoring_services.webhook_save(actor=admin_user, name="on-call", url=url, secret="e2e-secret")
    log_window(monitored, end=timezone.now(), seed=1, shift_tenure=1.0)

    deadline = time.monotonic() + 600
    while not (received and received[-1][0] == 200):
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"no delivery accepted; received {[r[0] for r in received]}:\n"
                        + log_path.read_text()[-4000:])
        time.sleep(0.3)
    # More beat ticks: later passes update the alert, and nothing is sent again.
    deadline = time.monotonic() + 600
    while Alert.objects.get().count < 2 or \
            MonitoringRun.objects.filter(version=monitored).count() < 2:
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail("later passes did not update the alert:\n" + log_path.read_text()[-4000:])
        time.sleep(0.3)

    (alert,) = Alert.objects.all()
    assert alert.status == "open" and "tenure" in alert.title
    assert [status for status, _, _ in received] == [503, 503, 200]
    _, headers, body = received[-1]
    signature = hmac.new(b"e2e-secret", headers["X-Mgov-Timestamp"].encode() + b"." + body,
                         hashlib.sha256).hexdigest()
    assert headers["X-Mgov-Signature"] == f"sha256={signature}"
    assert json.loads(body)["alert"]["id"] == alert.pk
    delivery = AlertDelivery.objects.get(channel="webhook")
    assert (delivery.status, delivery.attempts) == ("sent", 3)
    assert "monitoring.monitoring_pass_all" in log_path.read_text()  # beat sent it, the worker ran it
