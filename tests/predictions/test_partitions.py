"""PostgreSQL: the log and error tables are partitioned by day. Partitions are made ahead and
idempotently, a row lands in its day's partition (or the default one when its day has none),
retention drops whole old days and keeps recent and feedback-bearing rows, and the migration
converts a table holding rows, both ways."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from monitoring import services
from monitoring.services.retention import PRUNED
from predictions import partitions
from predictions.models import Feedback, PredictionError, PredictionLog
from tests.helpers import Unchanged, row_counts
from tests.monitoring.traffic import make_monitored
from tests.predictions.test_retention import _error, _feedback, _left, _log

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
DAY = timedelta(days=1)
LOGS, ERRORS = PredictionLog._meta.db_table, PredictionError._meta.db_table


@pytest.fixture
def version(data_scientist):
    return make_monitored(data_scientist)


@pytest.fixture
def now():
    return timezone.now()


def _home(model, row) -> str:
    """The partition a row is stored in."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {model._meta.db_table} "
                       f"WHERE id = %s", [row.pk])
        return cursor.fetchone()[0]


def _days(table) -> list:
    return [p.day for p in partitions.day_partitions(table)]


def test_partitions_are_made_for_a_day_and_the_days_ahead_and_a_second_run_makes_none(now):
    day = now.date() + 100 * DAY
    created = partitions.log_partitions_ensure(today=day, days_ahead=3)

    expected = [day + n * DAY for n in range(4)]
    assert created == [partitions.partition_name(t, d) for t in (LOGS, ERRORS) for d in expected]
    assert set(expected) <= set(_days(LOGS)) and set(expected) <= set(_days(ERRORS))
    assert partitions.log_partitions_ensure(today=day, days_ahead=3) == []


def test_the_migration_made_today_and_the_days_ahead(now):
    today = now.date()
    for table in (LOGS, ERRORS):
        assert partitions.is_partitioned(table)
        # (one day fewer: the test database may have been made before midnight)
        assert {today + n * DAY for n in range(partitions.DAYS_AHEAD)} <= set(_days(table))


def test_a_row_lands_in_its_days_partition_and_a_day_without_one_in_the_default(version, now):
    day = now.date() + 100 * DAY
    partitions.log_partitions_ensure(today=day, days_ahead=0)
    at = partitions.DayPartition("", day).start + timedelta(hours=13)

    assert _home(PredictionLog, _log(version, at, "on-its-day")) == partitions.partition_name(
        LOGS, day)
    assert _home(PredictionError, _error(version, at, "on-its-day")) == \
        partitions.partition_name(ERRORS, day)
    later = _log(version, at + 10 * DAY, "no-partition-yet")  # the insert does not fail
    assert _home(PredictionLog, later) == partitions.default_name(LOGS)


def test_a_day_made_after_its_rows_were_written_takes_them_from_the_default(version, now):
    day = now.date() + 100 * DAY
    at = partitions.DayPartition("", day).start + timedelta(hours=1)
    early = _log(version, at, "written-before-its-day")
    other = _log(version, at + 2 * DAY, "another-day")
    assert _home(PredictionLog, early) == partitions.default_name(LOGS)

    partitions.log_partitions_ensure(today=day, days_ahead=0)

    assert _home(PredictionLog, early) == partitions.partition_name(LOGS, day)
    assert _home(PredictionLog, other) == partitions.default_name(LOGS)
    assert _left(PredictionLog) == ["another-day", "written-before-its-day"]


def _old_days(version, now, data_scientist):
    """Days today-5 .. today-1 partitioned; with a retention of 1 day, days today-5 .. today-2
    end before the cut-off (now - 1 day) and go whole; today-1 holds the cut-off."""
    partitions.log_partitions_ensure(today=now.date() - 5 * DAY, days_ahead=4)
    _log(version, now - 3 * DAY, "old")
    _log(version, now - 2 * DAY, "answered")  # a 3-day window reaches it: kept
    _feedback("answered", data_scientist)
    _log(version, now - 4 * DAY, "answered-long-ago")  # beyond every window
    _feedback("answered-long-ago", data_scientist)
    _log(version, now - DAY - timedelta(hours=1), "just-old")
    _log(version, now - timedelta(hours=1), "recent")
    _error(version, now - 3 * DAY, "old-error")
    _error(version, now - timedelta(hours=1), "new-error")


def test_retention_drops_old_day_partitions_and_keeps_recent_and_feedback_rows(
        version, now, settings, data_scientist):
    settings.PREDICTION_LOG_RETENTION_DAYS = 1
    settings.MONITORING_WINDOW_MINUTES = 3 * 24 * 60
    _old_days(version, now, data_scientist)
    before = row_counts(allow_actions=(PRUNED,))

    counts = services.prediction_logs_prune(now=now)

    assert _left(PredictionLog) == ["answered", "recent"]
    assert _left(PredictionError) == ["new-error"]
    assert (counts["prediction_logs"], counts["prediction_errors"],
            counts["kept_for_feedback"], counts["partitions_dropped"]) == (3, 1, 1, 8)
    today = now.date()
    for table in (LOGS, ERRORS):
        days = _days(table)
        assert not {today - n * DAY for n in range(2, 6)} & set(days)
        assert today - DAY in days and today in days
    kept = PredictionLog.objects.get(request_id="answered")
    assert _home(PredictionLog, kept) == partitions.default_name(LOGS)
    # Nothing else is touched: the outcomes stay, every other table is as it was.
    assert sorted(Feedback.objects.values_list("request_id", flat=True)) == [
        "answered", "answered-long-ago"]
    after = row_counts(allow_actions=(PRUNED,))
    assert {t: r for t, r in after.items() if t not in (LOGS, ERRORS)} == {
        t: r for t, r in before.items() if t not in (LOGS, ERRORS)}


def test_a_dry_run_over_partitions_counts_what_a_real_run_does_and_changes_nothing(
        version, now, settings, data_scientist):
    settings.PREDICTION_LOG_RETENTION_DAYS = 1
    settings.MONITORING_WINDOW_MINUTES = 3 * 24 * 60
    _old_days(version, now, data_scientist)
    days = _days(LOGS)

    with Unchanged(allow_actions=()):
        dry = services.prediction_logs_prune(now=now, dry_run=True, chunk_size=2)
    assert _days(LOGS) == days
    real = services.prediction_logs_prune(now=now, chunk_size=2)

    assert {k: v for k, v in dry.items() if k != "dry_run"} == {
        k: v for k, v in real.items() if k != "dry_run"}
    assert (real["prediction_logs"], real["kept_for_feedback"],
            real["partitions_dropped"]) == (3, 1, 8)


@pytest.mark.django_db(transaction=True)
def test_the_migration_converts_tables_holding_rows_both_ways(version, now):
    partitions.log_partitions_ensure()
    rows = [_log(version, now - n * DAY, f"log-{n}") for n in (0, 1, 50)]
    _error(version, now, "error")
    saved = list(PredictionLog.objects.order_by("id").values_list())
    try:
        call_command("migrate", "predictions", "0006", verbosity=0)
        assert not partitions.is_partitioned(LOGS) and not partitions.is_partitioned(ERRORS)
        assert list(PredictionLog.objects.order_by("id").values_list()) == saved
        assert _left(PredictionError) == ["error"]
        assert _log(version, now, "after-back").pk > rows[-1].pk  # the sequence went on

        call_command("migrate", "predictions", verbosity=0)
        assert partitions.is_partitioned(LOGS) and partitions.is_partitioned(ERRORS)
        assert list(PredictionLog.objects.filter(pk__in=[r.pk for r in rows])
                    .order_by("id").values_list()) == saved
        assert _home(PredictionLog, rows[0]) == partitions.partition_name(LOGS, now.date())
        # 50 days ago is beyond the 30-day retention: the default partition holds it.
        assert _home(PredictionLog, rows[2]) == partitions.default_name(LOGS)
        newest = PredictionLog.objects.get(request_id="after-back").pk
        assert _log(version, now, "after-forth").pk > newest
    finally:
        call_command("migrate", "predictions", verbosity=0)
