"""Celery tasks: each is named after the one service it runs, loads by id and calls it.
Services queue them by name (core.queue), so the two never import each other."""

from celery import shared_task
from django.db import OperationalError

from governance import notifications, services
from governance.models import DeploymentStatus


@shared_task(name="governance.validation_execute", acks_late=True)
def validation_execute(run_id: int) -> None:
    services.validation_execute(run_id)


@shared_task(
    bind=True,
    name="governance.deployment_execute",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=600,
)
def deployment_execute(self, deployment_id: int) -> None:
    deployment = services.deployment_execute(deployment_id)
    if deployment.status == DeploymentStatus.PENDING and not self.request.is_eager:
        # Another deployment of the same model is moving folders: try again shortly.
        raise self.retry(countdown=2)


@shared_task(name="governance.interrupted_recover")
def interrupted_recover(older_than_seconds: int = 120) -> list[str]:
    return [str(item) for item in services.interrupted_recover(
        older_than_seconds=older_than_seconds)]


@shared_task(
    name="governance.approvers_notify",
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def approvers_notify(request_id: int) -> int:
    return notifications.approvers_notify(request_id)


@shared_task(name="governance.integrity_sweep")
def integrity_sweep() -> list[str]:
    return services.integrity_sweep()
