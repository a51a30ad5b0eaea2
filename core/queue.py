"""Queue a Celery task by its name when the transaction commits.

A service names the task it wants run instead of importing another app's tasks module:
the arrow between apps stays one way, and a reader can grep the name. If the broker is down
the change still stands (the message is lost, and logged); each such task has a periodic
sweep that finds the work again.
"""

from __future__ import annotations

from django.db import transaction


def enqueue_on_commit(task_name: str, *args) -> None:
    from celery import current_app

    transaction.on_commit(lambda: current_app.tasks[task_name].delay(*args), robust=True)
