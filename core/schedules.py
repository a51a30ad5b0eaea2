"""Every periodic task of the project, in one place: what runs, how often, and why.

`manage.py setup_periodic_tasks` writes them into django-celery-beat's tables (where the admin
can pause or retime them: *Periodic tasks*); `migrate` runs it at the end. A row that was made
under an older name is renamed, so a pause set in the admin survives.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str  # the Celery task's name, which is the name of the service it runs
    every_seconds: int
    description: str
    kwargs: dict = field(default_factory=dict)
    formerly: tuple[str, ...] = ()


SCHEDULES = (
    Schedule(
        "governance: finish interrupted work", "governance.interrupted_recover", 60,
        "Finishes or undoes deployments whose worker died mid-move (the same recovery "
        "`manage.py reconcile` runs), starts those whose message was lost, and ends validation "
        "runs a worker left behind.", {"older_than_seconds": 120}),
    Schedule(
        "governance: check serving artifacts against their sha256", "governance.integrity_sweep",
        600, "Hashes every file of each production version and rollout candidate: a changed or "
        "missing file flags the version (not served, critical alert); a restored one is served "
        "again."),
    Schedule(
        "monitoring: monitor served models", "monitoring.monitoring_pass_all", 300,
        "One monitoring pass per model with a production version or a rollout: drift, live "
        "performance, latency and error rate, then the alert rules.",
        formerly=("governance: monitor deployed models",)),
    Schedule(
        "monitoring: retry alert notifications", "monitoring.deliveries_due", 60,
        "Sends alert e-mails and webhooks whose retry is due, and those a stopped worker left "
        "behind.", formerly=("governance: retry alert notifications",)),
    Schedule(
        "monitoring: delete old prediction logs", "monitoring.prediction_logs_prune",
        24 * 60 * 60,
        "Deletes prediction logs and error records older than PREDICTION_LOG_RETENTION_DAYS: "
        "on PostgreSQL whole day partitions are dropped first; then the rest oldest first, in "
        "chunks of 5,000 rows each committed on its own; logs with feedback "
        "stay while the largest monitoring window reaches them. Records the counts as a "
        "predictions.logs_pruned audit event."),
    Schedule(
        "predictions: create log partitions ahead", "predictions.log_partitions_ensure",
        6 * 60 * 60,
        "PostgreSQL only: creates the day partitions of the prediction log and error tables "
        "for today and the next 3 days (the default partition takes a day without one), so "
        "retention can drop a day whole. Cheap when they exist; four runs a day leave room "
        "for missed ones."),
    Schedule(
        "monitoring: open review-overdue alerts", "monitoring.review_overdue_sweep", 60 * 60,
        "Opens one review-overdue alert (with its notifications) per model whose production "
        "version is past its review date (the policy's review_interval_days after deployment "
        "or the last review), and resolves those no longer overdue. A recorded review resolves "
        "its alert at once."),
    Schedule(
        "audit: checkpoint the chain", "core.audit_checkpoint_write", 60,
        "Appends the audit chain's head (seq and hash), signed with the chain key, to "
        "AUDIT_CHECKPOINT_FILE and the log, when it moved since the last checkpoint. "
        "verify_audit compares the chain with every checkpoint: a cut tail or a re-written "
        "chain no longer passes.", formerly=("governance: checkpoint the audit chain",)),
    Schedule(
        "audit: verify the chain", "core.audit_chain_verify", 24 * 60 * 60,
        "Walks the whole audit chain as `manage.py verify_audit` does and records the result "
        "as an audit.verified event (the admin's home page shows the last one); a broken "
        "chain is also logged as an error."),
)


def setup_periodic_tasks(**_kwargs) -> list[str]:
    """Create or update every schedule (idempotent). Returns what it did, for the command."""
    import json

    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    done = []
    for schedule in SCHEDULES:
        existing = PeriodicTask.objects.filter(name=schedule.name).first()
        if existing is None:
            existing = PeriodicTask.objects.filter(name__in=schedule.formerly).first()
        interval, _ = IntervalSchedule.objects.get_or_create(every=schedule.every_seconds,
                                                             period=IntervalSchedule.SECONDS)
        values = {"name": schedule.name, "task": schedule.task, "interval": interval,
                  "kwargs": json.dumps(schedule.kwargs), "description": schedule.description}
        if existing is None:
            PeriodicTask.objects.create(**values)
            done.append(f"created {schedule.name}")
            continue
        changed = [key for key, value in values.items() if getattr(existing, key) != value]
        if changed:
            for key in changed:
                setattr(existing, key, values[key])
            existing.save()  # keeps `enabled`: a pause set in the admin stays
            done.append(f"updated {schedule.name} ({', '.join(changed)})")
    return done
