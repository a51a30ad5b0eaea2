"""Celery tasks: each is named after the one service it runs."""

from celery import shared_task
from django.db import OperationalError

from predictions import partitions


@shared_task(name="predictions.log_partitions_ensure", acks_late=True,
             autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def log_partitions_ensure() -> list[str]:
    """Every 6 hours: today's and the next days' log partitions (PostgreSQL; nothing on SQLite).
    (A lock wait past partitions.LOCK_TIMEOUT is an OperationalError: retried.)"""
    return partitions.log_partitions_ensure()
