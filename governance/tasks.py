"""Celery tasks: thin wrappers that load by id and call one service."""

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from governance import notifications, services
from governance.models import DeploymentStatus


@shared_task(name="governance.validate_version", acks_late=True)
def validate_version(run_id: int) -> None:
    services.validation_execute(run_id)


@shared_task(
    bind=True,
    name="governance.execute_deployment",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=600,
)
def execute_deployment(self, deployment_id: int) -> None:
    deployment = services.deployment_execute(deployment_id)
    if deployment.status == DeploymentStatus.PENDING and not self.request.is_eager:
        # Another deployment of the same model is moving folders: try again shortly.
        raise self.retry(countdown=2)


@shared_task(name="governance.recover_interrupted")
def recover_interrupted(older_than_seconds: int = 120) -> list[str]:
    """Finish deployments and validations a dead worker or a lost message left behind."""
    done = services.deployment_recover(older_than_seconds=older_than_seconds)
    done += services.validation_recover(older_than_seconds=max(older_than_seconds, 900))
    return [str(item) for item in done]


@shared_task(
    name="governance.notify_approvers",
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def notify_approvers(request_id: int) -> int:
    return notifications.approvers_notify(request_id)


@shared_task(name="governance.monitor_all")
def monitor_all() -> list[int]:
    """Beat's entry point: one monitoring task per model that serves something."""
    ids = services.models_to_monitor()
    for model_id in ids:
        monitor_model.delay(model_id)
    return ids


@shared_task(name="governance.monitor_model", acks_late=True,
             autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def monitor_model(model_id: int) -> list[str]:
    from registry.models import RegisteredModel

    model = RegisteredModel.objects.get(pk=model_id)
    return [f"{run.version.version} {run.route}: {run.status}"
            for run in services.monitoring_pass(model=model)]


@shared_task(bind=True, name="governance.deliver_alert", acks_late=True, max_retries=None)
def deliver_alert(self, delivery_id: int) -> str:
    delivery = services.delivery_attempt(delivery_id)
    if delivery is None:
        return "not due, or already sent"
    if delivery.status == "retrying" and not self.request.is_eager:
        # Backoff: the row says when; the periodic sweep also finds it if this message is lost.
        wait = max(1, round((delivery.next_attempt_at - timezone.now()).total_seconds()))
        raise self.retry(countdown=wait)
    return delivery.status


@shared_task(name="governance.deliver_due")
def deliver_due() -> int:
    """Every minute: deliveries whose retry is due, or that a dead worker left behind."""
    due = services.deliveries_due()
    for delivery_id in due:
        deliver_alert.delay(delivery_id)
    return len(due)


@shared_task(name="governance.integrity_alert_sync", acks_late=True,
             autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def integrity_alert_sync(version_id: int) -> str:
    alert = services.integrity_alert_sync(version_id=version_id)
    return str(alert) if alert else "no integrity alert"


@shared_task(name="governance.integrity_sweep")
def integrity_sweep() -> list[str]:
    return services.integrity_sweep()
