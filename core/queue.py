"""Queue a Celery task by its name: now, or when the transaction commits.

A service names the task it wants run instead of importing a tasks module: services and
tasks never import each other, the arrows between apps stay one way, and a reader can grep
the name. If the broker is down the change still stands (the message is lost, and logged);
each such task has a periodic sweep that finds the work again.
"""

from __future__ import annotations

from django.db import transaction


def enqueue(task_name: str, *args) -> None:
    from celery import current_app

    if task_name not in current_app.tasks:
        # Outside a worker, the apps' tasks modules are discovered lazily: now, once.
        current_app.loader.import_default_modules()
    current_app.tasks[task_name].delay(*args)


def enqueue_on_commit(task_name: str, *args) -> None:
    transaction.on_commit(lambda: enqueue(task_name, *args), robust=True)
