"""One place owns every beat schedule, and each names a task that exists."""

from __future__ import annotations

import pytest
from celery import current_app
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from core.schedules import SCHEDULES, setup_periodic_tasks

pytestmark = pytest.mark.django_db


def test_every_schedule_runs_a_registered_task_named_after_its_service():
    current_app.loader.import_default_modules()
    for schedule in SCHEDULES:
        assert schedule.task in current_app.tasks, schedule.task
        assert current_app.tasks[schedule.task].__name__ == schedule.task.split(".")[1]


def test_setup_writes_every_schedule_once_and_keeps_a_pause():
    PeriodicTask.objects.all().delete()
    interval = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="governance: monitor deployed models",
                                task="governance.monitor_all", interval=interval, enabled=False)
    setup_periodic_tasks()
    assert setup_periodic_tasks() == []  # idempotent
    rows = {row.name: row for row in PeriodicTask.objects.all()}
    assert set(rows) == {s.name for s in SCHEDULES}
    monitor = rows["monitoring: monitor served models"]
    assert (monitor.task, monitor.interval.every, monitor.enabled) == (
        "monitoring.monitoring_pass_all", 300, False)
