"""Celery tasks: each is named after the one service it runs, loads by id and calls it."""

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from core.queue import enqueue
from monitoring import services


@shared_task(name="monitoring.monitoring_pass_all")
def monitoring_pass_all() -> list[int]:
    """Beat's entry point: one monitoring pass per model that serves something."""
    ids = services.models_to_monitor()
    for model_id in ids:
        enqueue("monitoring.monitoring_pass", model_id)
    return ids


@shared_task(name="monitoring.monitoring_pass", acks_late=True,
             autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def monitoring_pass(model_id: int) -> list[str]:
    from registry.models import RegisteredModel

    model = RegisteredModel.objects.get(pk=model_id)
    return [f"{run.version.version} {run.route}: {run.status}"
            for run in services.monitoring_pass(model=model)]


@shared_task(bind=True, name="monitoring.delivery_attempt", acks_late=True, max_retries=None)
def delivery_attempt(self, delivery_id: int) -> str:
    delivery = services.delivery_attempt(delivery_id)
    if delivery is None:
        return "not due, or already sent"
    if delivery.status == "retrying" and not self.request.is_eager:
        # Backoff: the row says when; the periodic sweep also finds it if this message is lost.
        wait = max(1, round((delivery.next_attempt_at - timezone.now()).total_seconds()))
        raise self.retry(countdown=wait)
    return delivery.status


@shared_task(name="monitoring.deliveries_due")
def deliveries_due() -> int:
    """Every minute: deliveries whose retry is due, or that a dead worker left behind."""
    due = services.deliveries_due()
    for delivery_id in due:
        enqueue("monitoring.delivery_attempt", delivery_id)
    return len(due)


@shared_task(name="monitoring.integrity_alert_sync", acks_late=True,
             autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def integrity_alert_sync(version_id: int) -> str:
    alert = services.integrity_alert_sync(version_id=version_id)
    return str(alert) if alert else "no integrity alert"


@shared_task(name="monitoring.prediction_logs_prune", acks_late=True,
             autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def prediction_logs_prune() -> dict:
    """Daily: prediction logs and error records past PREDICTION_LOG_RETENTION_DAYS, in chunks.
    (A retry starts again from the oldest rows: what a failed run deleted stays deleted.)"""
    return services.prediction_logs_prune()


@shared_task(name="monitoring.review_overdue_sweep", acks_late=True,
             autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def review_overdue_sweep() -> list[str]:
    """Hourly: one review-overdue alert per model whose production version is past its
    review date; resolved for the others."""
    return services.review_overdue_sweep()
