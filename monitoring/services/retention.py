"""Retention of prediction logs: what is older than PREDICTION_LOG_RETENTION_DAYS goes.

Rows are selected oldest first by their indexed `created_at` and deleted by primary key, a
chunk at a time, each chunk in its own short transaction: on SQLite a transaction holds the
one write lock, on PostgreSQL a long delete holds row locks and bloats, so no run is ever one
long transaction and the log writer waits at most one chunk.

A log whose request has feedback stays while a monitoring window can still reach it (live
performance matches outcomes to the logs inside the window): until max(retention, the largest
window of the settings and of any alert rule). The `Feedback` rows themselves, and every other
table, are not touched.

On PostgreSQL the tables are partitioned by day (predictions/partitions.py): first every day
partition wholly older than the cut-off is dropped, one short transaction each (its rows that
feedback keeps are written back through the parent first, into the default partition); then
the chunked delete takes what is left (the default partition, the day the cut-off falls in).
"""

from __future__ import annotations

from contextlib import nullcontext
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import Max, Q
from django.utils import timezone

from core import audit
from core.accounts import system_user
from monitoring.models import AlertRule
from predictions import blocks as log_blocks
from predictions import partitions
from predictions.models import Feedback, PredictionError, PredictionLog, PredictionLogBlock

PRUNED = "predictions.logs_pruned"
# Ids of one chunk are bound parameters of one DELETE: SQLite takes at most 32,766.
MAX_CHUNK_SIZE = 20_000


def largest_window_minutes() -> int:
    """The longest window any pass computes: the settings' and every rule's (a disabled rule
    too: enabled again, it should find its window's outcomes)."""
    rules = AlertRule.objects.aggregate(longest=Max("window_minutes"))["longest"] or 0
    return max(settings.MONITORING_WINDOW_MINUTES, rules)


def prediction_logs_prune(*, now: datetime | None = None, dry_run: bool = False,
                          chunk_size: int = 5000) -> dict:
    """Delete prediction logs and error records older than the retention, in chunks.

    Returns the counts (`prediction_logs`, `prediction_errors`, `kept_for_feedback`,
    `prediction_log_blocks`, `chunks`, `partitions_dropped`) and the cut-off times. A dry run
    counts the same rows and deletes nothing;
    a real run also appends one `predictions.logs_pruned` audit event with the counts.
    """
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be between 1 and {MAX_CHUNK_SIZE}")
    now = now or timezone.now()
    before = now - timedelta(days=settings.PREDICTION_LOG_RETENTION_DAYS)
    feedback_before = min(before, now - timedelta(minutes=largest_window_minutes()))
    dropped_logs = _drop_partitions(PredictionLog, before=before,
                                    feedback_before=feedback_before, dry_run=dry_run)
    dropped_errors = _drop_partitions(PredictionError, before=before, feedback_before=None,
                                      dry_run=dry_run)
    logs = _prune(PredictionLog, before=before, feedback_before=feedback_before,
                  dry_run=dry_run, chunk_size=chunk_size, dropped=dropped_logs)
    stored = _prune_blocks(before=before, feedback_before=feedback_before, dry_run=dry_run,
                           chunk_size=chunk_size)
    errors = _prune(PredictionError, before=before, feedback_before=None, dry_run=dry_run,
                    chunk_size=chunk_size, dropped=dropped_errors)
    counts = {
        "prediction_logs": dropped_logs["deleted"] + logs["deleted"] + stored["deleted"],
        "prediction_errors": dropped_errors["deleted"] + errors["deleted"],
        "kept_for_feedback": logs["kept"] + stored["kept"],
        "prediction_log_blocks": stored["blocks"],
        "chunks": logs["chunks"] + stored["chunks"] + errors["chunks"],
        "partitions_dropped": len(dropped_logs["days"]) + len(dropped_errors["days"]),
        "retention_days": settings.PREDICTION_LOG_RETENTION_DAYS,
        "before": before.isoformat(), "feedback_kept_after": feedback_before.isoformat(),
        "dry_run": dry_run,
    }
    if not dry_run:
        # Its own transaction, after the chunks: they committed one by one, so there is no
        # single transaction of the change to share (a run cut short is simply run again).
        with transaction.atomic(durable=True):
            audit.record(action=PRUNED, actor=system_user(), after=counts,
                         reason=f"older than {settings.PREDICTION_LOG_RETENTION_DAYS} days")
    return counts


def _kept_by_feedback(feedback_before: datetime) -> Q:
    return Q(created_at__gte=feedback_before,
             request_id__in=Feedback.objects.values("request_id"))


def _drop_partitions(model: type[models.Model], *, before: datetime,
                     feedback_before: datetime | None, dry_run: bool) -> dict:
    """Drop the day partitions of `model` that end at or before `before` (PostgreSQL only).
    Rows that feedback keeps are not counted here: the chunked delete that follows meets them
    (in the default partition, or still in the partition on a dry run) and counts them."""
    table = model._meta.db_table
    deleted, days = 0, []
    for part in partitions.day_partitions(table):
        if part.end > before:
            break
        keep = None
        if feedback_before is not None and part.end > feedback_before:
            keep = (f"created_at >= %s AND request_id IN (SELECT request_id FROM "
                    f"{Feedback._meta.db_table})", [feedback_before])
        if dry_run:
            rows, kept = partitions.partition_count(part, keep=keep)
        else:
            rows, kept = partitions.partition_drop(table, part, keep=keep)
        deleted += rows - kept
        days.append(part)
    return {"deleted": deleted, "days": days}


def _prune(model: type[models.Model], *, before: datetime, feedback_before: datetime | None,
           dry_run: bool, chunk_size: int, dropped: dict) -> dict:
    """Rows of `model` created before `before`, a chunk at a time. With `feedback_before`,
    rows from that time on whose request has feedback are kept (and stepped over)."""
    deleted = kept = chunks = 0
    last = None  # (created_at, id) of the last row seen: kept rows are not read again
    gone = Q()
    if dry_run:
        # The partitions a real run drops still hold their rows: those it counted as dropped
        # are not met again, so a dry run reads the rows a real run's chunks read.
        for part in dropped["days"]:
            day = Q(created_at__gte=part.start, created_at__lt=part.end)
            gone |= day & ~_kept_by_feedback(feedback_before) if feedback_before else day
    while True:
        # (A dry run only reads: no transaction, so it takes no write lock on SQLite.)
        with nullcontext() if dry_run else transaction.atomic(durable=True):
            rows = model.objects.filter(created_at__lt=before).exclude(gone)
            if last is not None:
                rows = rows.filter(created_at__gte=last[0]).exclude(
                    created_at=last[0], id__lte=last[1])
            rows = list(rows.order_by("created_at", "id").values_list(
                "id", "created_at", "request_id")[:chunk_size])
            if not rows:
                break
            last = rows[-1][1], rows[-1][0]
            doomed = [pk for pk, _at, _request in rows]
            if feedback_before is not None:
                recent = {request for _pk, at, request in rows if at >= feedback_before}
                answered = set(Feedback.objects.filter(request_id__in=recent).values_list(
                    "request_id", flat=True)) if recent else set()
                doomed = [pk for pk, at, request in rows
                          if not (at >= feedback_before and request in answered)]
            if doomed and not dry_run:
                model.objects.filter(pk__in=doomed).delete()
            deleted += len(doomed)
            kept += len(rows) - len(doomed)
            chunks += 1
        if len(rows) < chunk_size:
            break
    return {"deleted": deleted, "kept": kept, "chunks": chunks}


def _prune_blocks(*, before: datetime, feedback_before: datetime, dry_run: bool,
                  chunk_size: int) -> dict:
    """Blocks of single-row requests whose newest request is older than `before`, as `_prune`
    does rows: a block holding a request from `feedback_before` on that has feedback is kept
    whole (with its other requests: a block is not rewritten). Counts are of requests."""
    deleted = kept = blocks = chunks = 0
    last = None
    while True:
        with nullcontext() if dry_run else transaction.atomic(durable=True):
            # last_at >= created_at: the created_at index bounds the scan.
            rows = PredictionLogBlock.objects.filter(created_at__lt=before, last_at__lt=before)
            if last is not None:
                rows = rows.filter(created_at__gte=last[0]).exclude(
                    created_at=last[0], id__lte=last[1])
            rows = list(rows.order_by("created_at", "id").values_list(
                "id", "created_at", "last_at", "n_requests")[:chunk_size])
            if not rows:
                break
            last = rows[-1][1], rows[-1][0]
            recent = [pk for pk, _at, newest, _n in rows if newest >= feedback_before]
            keep = _answered_blocks(recent, feedback_before) if recent else set()
            doomed = [pk for pk, *_ in rows if pk not in keep]
            if doomed and not dry_run:
                PredictionLogBlock.objects.filter(pk__in=doomed).delete()
            deleted += sum(n for pk, _at, _newest, n in rows if pk not in keep)
            kept += sum(n for pk, _at, _newest, n in rows if pk in keep)
            blocks += len(doomed)
            chunks += 1
        if len(rows) < chunk_size:
            break
    return {"deleted": deleted, "kept": kept, "blocks": blocks, "chunks": chunks}


def _answered_blocks(pks: list[int], feedback_before: datetime) -> set[int]:
    """Of these blocks, those with a request from `feedback_before` on that has feedback."""
    recent = {}
    for pk, ids, raw in PredictionLogBlock.objects.filter(pk__in=pks).values_list(
            "id", "request_ids", "requests"):
        times = log_blocks.meta_of(raw)["at"]
        for request_id, at in zip(ids.split(" "), times, strict=True):
            if at >= log_blocks.micros(feedback_before):
                recent[request_id] = pk
    answered = set()
    names = list(recent)
    for start in range(0, len(names), MAX_CHUNK_SIZE):
        answered |= set(Feedback.objects.filter(
            request_id__in=names[start:start + MAX_CHUNK_SIZE]).values_list(
            "request_id", flat=True))
    return {recent[request_id] for request_id in answered}
