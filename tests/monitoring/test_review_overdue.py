"""Review-overdue alerts: a production version past its review date gets exactly one active
alert (through the ordinary lifecycle: audit event, notifications), re-runs keep one, a
monitoring pass leaves it alone, a review or leaving production closes it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from compliance import services as compliance
from core.models import AuditEvent
from core.schedules import SCHEDULES
from governance import policies
from monitoring import services
from monitoring.models import ACTIVE_ALERT, Alert, AlertDelivery, AlertMetric, AlertStatus
from registry.models import ModelVersion
from tests import helpers

pytestmark = pytest.mark.django_db


@pytest.fixture
def production(data_scientist, churn_model):
    version = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    return helpers.force_stage(version, "production")


def _overdue(version, days: int = 12):
    # Test set-up: the date a deployment `days` + interval ago would have set.
    ModelVersion.objects.filter(pk=version.pk).update(
        review_due_at=timezone.now() - timedelta(days=days))
    version.refresh_from_db()
    return version


def _review_alerts(**extra):
    return Alert.objects.filter(rule__metric=AlertMetric.REVIEW_OVERDUE, **extra)


def test_deploying_to_production_sets_the_review_date_from_the_policy(production):
    policy = policies.effective_policy(production.model)
    assert policy.review_interval_days == 365
    assert production.review_due_at == production.stage_changed_at + timedelta(days=365)


def test_leaving_production_clears_the_review_date(data_scientist, production):
    successor = helpers.register_direct("churn_prediction", "1.1.0", actor=data_scientist)
    helpers.force_stage(successor, "production")
    production.refresh_from_db()
    successor.refresh_from_db()
    assert production.stage == "archived" and production.review_due_at is None
    assert successor.review_due_at is not None


def test_a_policy_without_periodic_review_sets_no_date(data_scientist, churn_model):
    policy = policies.project_default()
    policy.review_interval_days = None
    policy.save()
    version = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    assert helpers.force_stage(version, "production").review_due_at is None


def test_a_production_version_past_its_review_date_gets_exactly_one_open_alert(production):
    _overdue(production)
    services.review_overdue_sweep()
    alert = _review_alerts().get()
    assert alert.status == AlertStatus.OPEN
    assert alert.model == production.model
    assert alert.evidence["version"] == "1.0.0"
    assert alert.value == pytest.approx(12, abs=0.1)
    assert "overdue" in alert.title and "churn_prediction 1.0.0" in alert.title
    # The ordinary lifecycle: an audit event, and a notification to the owner.
    assert list(AuditEvent.objects.filter(action="alert.opened").values_list(
        "object_id", flat=True)) == [str(alert.pk)]
    assert list(AlertDelivery.objects.filter(alert=alert).values_list(
        "event", "channel", "target")) == [("opened", "email", "dana@example.org")]


def test_running_the_sweep_again_keeps_one_alert(production):
    _overdue(production)
    services.review_overdue_sweep()
    services.review_overdue_sweep()
    services.review_overdue_sweep()
    assert _review_alerts().filter(ACTIVE_ALERT).count() == 1
    assert _review_alerts().count() == 1
    assert AuditEvent.objects.filter(action="alert.opened").count() == 1
    assert AlertDelivery.objects.count() == 1
    assert _review_alerts().get().count == 3


def test_a_version_not_yet_due_gets_no_alert(production):
    services.review_overdue_sweep()
    assert not _review_alerts().exists()


def test_a_monitoring_pass_does_not_close_the_review_alert(production):
    _overdue(production)
    services.review_overdue_sweep()
    for _ in range(4):  # more than any rule's clear passes
        services.monitoring_pass(model=production.model)
    assert _review_alerts().get().status == AlertStatus.OPEN


def test_a_review_closes_the_alert_and_moves_the_date(production, approver):
    _overdue(production)
    services.review_overdue_sweep()
    review = compliance.version_review_record(version=production, actor=approver,
                                              comment="Backtest on Q3 holds; keep in service")
    alert = _review_alerts().get()
    assert alert.status == AlertStatus.RESOLVED and alert.resolved_by == approver
    production.refresh_from_db()
    assert production.review_due_at == review.next_review_at
    assert production.review_due_at > timezone.now() + timedelta(days=364)
    assert list(AlertDelivery.objects.filter(alert=alert).order_by("id").values_list(
        "event", flat=True)) == ["opened", "resolved"]
    services.review_overdue_sweep()
    assert not _review_alerts().filter(ACTIVE_ALERT).exists()


def test_the_sweep_resolves_the_alert_once_the_version_leaves_production(
        data_scientist, production):
    _overdue(production)
    services.review_overdue_sweep()
    successor = helpers.register_direct("churn_prediction", "1.1.0", actor=data_scientist)
    helpers.force_stage(successor, "production")
    services.review_overdue_sweep()
    assert _review_alerts().get().status == AlertStatus.RESOLVED


def test_the_sweep_runs_hourly_from_the_beat_schedule():
    schedule = next(s for s in SCHEDULES if s.task == "monitoring.review_overdue_sweep")
    assert schedule.every_seconds == 3600


def test_the_review_alert_shows_in_the_admin(client, admin_user, production):
    _overdue(production)
    services.review_overdue_sweep()
    alert = _review_alerts().get()
    client.force_login(admin_user)
    page = client.get(f"/admin/monitoring/alert/{alert.pk}/change/")
    assert page.status_code == 200
    assert "overdue since" in page.content.decode()
    listed = client.get("/admin/monitoring/alert/?rule__metric=review_overdue")
    assert listed.status_code == 200
