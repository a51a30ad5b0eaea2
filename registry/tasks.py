from celery import shared_task

from registry import catalogue


@shared_task(
    name="registry.catalogue_rewrite",
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
    acks_late=True,
)
def catalogue_rewrite() -> None:
    """Rewrite metadata/model_registry.json from the database (idempotent; last one wins)."""
    catalogue.rewrite()
