"""Retention of prediction logs: old logs and error records go, in chunks each committed on
its own; recent logs, and logs with feedback that a monitoring window still reaches, stay;
nothing else is touched; the run is audited; a trace of a pruned request is a 404."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from compliance.trace import prediction_trace
from core.errors import ApplicationError
from core.models import AuditEvent
from core.schedules import SCHEDULES
from monitoring import services, tasks
from monitoring.models import AlertRule
from monitoring.services.retention import PRUNED
from predictions.models import Feedback, PredictionError, PredictionLog
from tests.config.test_settings import manage
from tests.helpers import Unchanged, row_counts
from tests.monitoring.traffic import make_monitored

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


@pytest.fixture
def version(data_scientist):
    return make_monitored(data_scientist)


@pytest.fixture
def now():
    return timezone.now()


def _log(version, at, request_id: str) -> PredictionLog:
    return PredictionLog.objects.create(
        request_id=request_id, model=version.model, version=version, route="production",
        caller_name="loans-service", created_at=at, n_rows=1, row_indices=[0],
        inputs=[[24.0, 3.0, 1.0, "north"]], outputs=[1], latency_ms=2.0)


def _error(version, at, request_id: str) -> PredictionError:
    return PredictionError.objects.create(
        request_id=request_id, model=version.model, version=version, kind="rejected",
        status_code=422, message="tenure: not a number", caller_name="loans-service",
        created_at=at)


def _feedback(request_id: str, user) -> Feedback:
    return Feedback.objects.create(request_id=request_id, row_index=0, actual=1, created_by=user)


def _left(model) -> list[str]:
    return sorted(model.objects.values_list("request_id", flat=True))


def test_it_deletes_logs_and_errors_older_than_the_retention_and_keeps_recent_ones(
        version, now, settings):
    settings.PREDICTION_LOG_RETENTION_DAYS = 30
    _log(version, now - 31 * DAY, "old")
    _log(version, now - 30 * DAY - timedelta(seconds=1), "just-old")
    _log(version, now - 29 * DAY, "recent")
    _log(version, now - timedelta(minutes=5), "new")
    _error(version, now - 40 * DAY, "old-error")
    _error(version, now - DAY, "new-error")

    counts = services.prediction_logs_prune(now=now)

    assert _left(PredictionLog) == ["new", "recent"]
    assert _left(PredictionError) == ["new-error"]
    assert (counts["prediction_logs"], counts["prediction_errors"],
            counts["kept_for_feedback"]) == (2, 1, 0)
    assert counts["before"] == (now - 30 * DAY).isoformat()


def test_a_log_with_feedback_stays_while_the_largest_monitoring_window_reaches_it(
        version, now, settings, data_scientist):
    settings.PREDICTION_LOG_RETENTION_DAYS = 1
    rule = AlertRule.objects.create(model=version.model, metric="performance_drop",
                                    statistic="accuracy", threshold=0.05,
                                    window_minutes=3 * 24 * 60, enabled=False)
    assert services.largest_window_minutes() == 3 * 24 * 60
    _log(version, now - 2 * DAY, "answered")  # outcome came back; a 3-day window reaches it
    _feedback("answered", data_scientist)
    _log(version, now - 2 * DAY, "unanswered")  # no outcome: the retention alone decides
    _log(version, now - 4 * DAY, "answered-long-ago")  # beyond every window
    _feedback("answered-long-ago", data_scientist)
    _log(version, now - timedelta(hours=2), "today")

    counts = services.prediction_logs_prune(now=now)

    assert _left(PredictionLog) == ["answered", "today"]
    assert (counts["prediction_logs"], counts["kept_for_feedback"]) == (2, 1)
    assert counts["feedback_kept_after"] == (now - 3 * DAY).isoformat()
    # The outcomes themselves are not the logs': both stay.
    assert _left(Feedback) == ["answered", "answered-long-ago"]

    rule.window_minutes = 60  # no window reaches back two days any more
    rule.save()
    services.prediction_logs_prune(now=now)
    assert _left(PredictionLog) == ["today"]


def test_the_settings_window_counts_as_a_monitoring_window_too(
        version, now, settings, data_scientist):
    settings.PREDICTION_LOG_RETENTION_DAYS = 1
    settings.MONITORING_WINDOW_MINUTES = 5 * 24 * 60
    _log(version, now - 4 * DAY, "answered")
    _feedback("answered", data_scientist)

    assert services.prediction_logs_prune(now=now)["kept_for_feedback"] == 1
    assert _left(PredictionLog) == ["answered"]


def test_rows_of_every_other_table_are_untouched(version, now, data_scientist):
    _log(version, now - 60 * DAY, "old")
    _feedback("old", data_scientist)
    _error(version, now - 60 * DAY, "old-error")
    before = row_counts(allow_actions=(PRUNED,))

    services.prediction_logs_prune(now=now)

    after = row_counts(allow_actions=(PRUNED,))
    pruned = {PredictionLog._meta.db_table, PredictionError._meta.db_table}
    assert {t: rows for t, rows in after.items() if t not in pruned} == {
        t: rows for t, rows in before.items() if t not in pruned}
    assert _left(PredictionLog) == [] and _left(PredictionError) == []


def test_it_deletes_in_chunks_and_each_chunk_commits_on_its_own(version, now):
    for n in range(5):
        _log(version, now - (40 + n) * DAY, f"old-{n}")
    _log(version, now - DAY, "recent")
    deletes = []

    def fail_on_the_second_delete(execute, sql, params, many, context):
        if sql.startswith("DELETE") and PredictionLog._meta.db_table in sql:
            deletes.append(sql)
            if len(deletes) == 2:
                raise RuntimeError("the worker died")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(fail_on_the_second_delete), \
            pytest.raises(RuntimeError, match="the worker died"):
        services.prediction_logs_prune(now=now, chunk_size=2)
    # The first chunk (the two oldest) committed; the second rolled back alone.
    assert _left(PredictionLog) == ["old-0", "old-1", "old-2", "recent"]
    assert not AuditEvent.objects.filter(action=PRUNED).exists()

    counts = services.prediction_logs_prune(now=now, chunk_size=2)  # run again: it finishes
    assert _left(PredictionLog) == ["recent"]
    assert (counts["prediction_logs"], counts["chunks"]) == (3, 2)


def test_chunks_of_two_over_five_rows_take_three_chunks(version, now):
    for n in range(5):
        _log(version, now - (40 + n) * DAY, f"old-{n}")
    deletes = []

    def count(execute, sql, params, many, context):
        if sql.startswith("DELETE") and PredictionLog._meta.db_table in sql:
            deletes.append(len(params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        counts = services.prediction_logs_prune(now=now, chunk_size=2)
    assert deletes == [2, 2, 1]
    assert (counts["prediction_logs"], counts["chunks"]) == (5, 3)
    assert _left(PredictionLog) == []


def test_kept_logs_with_feedback_do_not_stop_the_chunks(version, now, settings,
                                                        data_scientist):
    settings.PREDICTION_LOG_RETENTION_DAYS = 1
    settings.MONITORING_WINDOW_MINUTES = 10 * 24 * 60
    for n in range(4):  # a full first chunk of logs that stay
        _log(version, now - (9 - n * 0.1) * DAY, f"answered-{n}")
        _feedback(f"answered-{n}", data_scientist)
    _log(version, now - 5 * DAY, "unanswered")

    counts = services.prediction_logs_prune(now=now, chunk_size=2)

    assert _left(PredictionLog) == [f"answered-{n}" for n in range(4)]
    assert (counts["prediction_logs"], counts["kept_for_feedback"], counts["chunks"]) == (
        1, 4, 3)


def test_a_dry_run_counts_the_same_rows_and_changes_nothing(version, now, data_scientist,
                                                           settings):
    settings.PREDICTION_LOG_RETENTION_DAYS = 1
    settings.MONITORING_WINDOW_MINUTES = 3 * 24 * 60
    for n in range(3):
        _log(version, now - (40 + n) * DAY, f"old-{n}")
    _log(version, now - 2 * DAY, "answered")
    _feedback("answered", data_scientist)
    _error(version, now - 40 * DAY, "old-error")

    with Unchanged(allow_actions=()):
        dry = services.prediction_logs_prune(now=now, dry_run=True, chunk_size=2)
    real = services.prediction_logs_prune(now=now, chunk_size=2)

    assert dry["dry_run"] is True and real["dry_run"] is False
    assert {k: v for k, v in dry.items() if k != "dry_run"} == {
        k: v for k, v in real.items() if k != "dry_run"}
    assert (real["prediction_logs"], real["prediction_errors"], real["kept_for_feedback"]) == (
        3, 1, 1)


def test_a_run_records_one_audit_event_with_the_counts(version, now):
    _log(version, now - 40 * DAY, "old")
    _error(version, now - 40 * DAY, "old-error")
    last = AuditEvent.objects.order_by("-seq").first().seq

    counts = services.prediction_logs_prune(now=now)

    events = list(AuditEvent.objects.filter(seq__gt=last).order_by("seq"))
    assert [(e.action, e.actor_name) for e in events] == [(PRUNED, "system")]
    recorded = json.loads(events[0].after)
    assert recorded == counts
    assert (recorded["prediction_logs"], recorded["prediction_errors"],
            recorded["retention_days"]) == (1, 1, 30)


def test_a_run_with_nothing_to_delete_still_records_that_it_ran(version, now):
    _log(version, now - DAY, "recent")
    counts = services.prediction_logs_prune(now=now)
    assert (counts["prediction_logs"], counts["chunks"]) == (0, 0)
    assert AuditEvent.objects.filter(action=PRUNED).count() == 1
    assert _left(PredictionLog) == ["recent"]


@pytest.mark.parametrize("size", [0, 20_001])
def test_a_chunk_size_out_of_bounds_is_refused_and_changes_nothing(version, now, size):
    _log(version, now - 40 * DAY, "old")
    with Unchanged(allow_actions=()), pytest.raises(ValueError, match="chunk_size"):
        services.prediction_logs_prune(now=now, chunk_size=size)


def test_the_command_prints_the_counts_and_a_dry_run_deletes_nothing(version, now):
    for n in range(3):
        _log(version, now - (40 + n) * DAY, f"old-{n}")
    _error(version, now - 40 * DAY, "old-error")
    _log(version, now - DAY, "recent")

    out = StringIO()
    with Unchanged(allow_actions=()):
        call_command("prune_prediction_logs", "--dry-run", "--chunk-size", "2", stdout=out)
    assert out.getvalue().startswith(
        "would delete 3 prediction logs and 1 prediction errors created before ")
    assert "(30 days) in 3 chunks; kept 0 logs with feedback" in out.getvalue()

    out = StringIO()
    call_command("prune_prediction_logs", stdout=out)
    assert out.getvalue().startswith("deleted 3 prediction logs and 1 prediction errors")
    assert _left(PredictionLog) == ["recent"]

    with Unchanged(allow_actions=()), pytest.raises(CommandError, match="--chunk-size"):
        call_command("prune_prediction_logs", "--chunk-size", "0")


def test_the_task_runs_the_service_and_beat_runs_it_daily(version, now):
    _log(version, now - 40 * DAY, "old")
    (schedule,) = [s for s in SCHEDULES if s.task == "monitoring.prediction_logs_prune"]
    assert schedule.every_seconds == 24 * 60 * 60

    counts = tasks.prediction_logs_prune()

    assert counts["prediction_logs"] == 1
    assert _left(PredictionLog) == []


def test_a_trace_of_a_pruned_request_is_not_found_and_a_kept_one_still_answers(
        version, now, viewer, data_scientist, settings):
    settings.PREDICTION_LOG_RETENTION_DAYS = 1
    settings.MONITORING_WINDOW_MINUTES = 3 * 24 * 60
    _log(version, now - 2 * DAY, "pruned")
    _error(version, now - 2 * DAY, "pruned")
    _log(version, now - 2 * DAY, "answered")
    _feedback("answered", data_scientist)
    assert prediction_trace(request_id="pruned", user=viewer)["request_id"] == "pruned"

    services.prediction_logs_prune(now=now)

    with pytest.raises(ApplicationError) as refused:
        prediction_trace(request_id="pruned", user=viewer)
    assert (refused.value.status_code, refused.value.code) == (404, "not_found")
    kept = prediction_trace(request_id="answered", user=viewer)
    assert [f["actual"] for f in kept["feedback"]] == [1]


@pytest.mark.parametrize(("value", "fails"), [("0", True), ("-3", True), ("7", False)])
def test_the_retention_setting_must_be_at_least_one_day(value, fails):
    result = manage("shell", "-c", "from django.conf import settings; "
                    "print(settings.PREDICTION_LOG_RETENTION_DAYS)",
                    PREDICTION_LOG_RETENTION_DAYS=value)
    if fails:
        assert result.returncode != 0
        assert "PREDICTION_LOG_RETENTION_DAYS must be at least 1" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == "7"
