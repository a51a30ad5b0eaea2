"""Celery tasks: thin wrappers that load by id and call one service."""

from celery import shared_task
from django.db import OperationalError

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
