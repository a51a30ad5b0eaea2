"""Integrity alerts: while any version of a model is flagged (the registry flags a file that
fails its sha256), one critical alert names the file and both hashes; it resolves once none is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.models import AuditEvent
from governance.models import ServingState
from monitoring import services as monitoring_services
from monitoring.models import Alert, AlertDelivery
from registry import services as registry_services
from registry.loaders import verify_files
from tests import helpers

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions(data_scientist, churn_model, store_root):
    """Two registered versions, and what flags or clears one as the registry does (the alert
    is synced on commit, as in production)."""
    rows = {v: helpers.register_direct("churn_prediction", v, actor=data_scientist)
            for v in ("1.0.0", "1.1.0")}

    def path(version):
        return Path(store_root, "experiments/churn_prediction", f"v{version}", "model.joblib")

    return rows, path


def _flag(version, path, capture, data=b"tampered"):
    path.write_bytes(data) if data is not None else path.unlink()
    with capture(execute=True):
        assert registry_services.version_integrity_failed(
            version=version, error=verify_files(version), found_by="test")


def _clear(version, path, capture):
    path.write_bytes(helpers.sklearn_bytes())
    assert verify_files(version) is None
    with capture(execute=True):
        assert registry_services.version_integrity_cleared(version=version, found_by="test")


def _generation():
    return ServingState.objects.get(pk=1).generation


def test_a_flagged_file_opens_one_critical_alert_naming_it_and_both_hashes(
    versions, django_capture_on_commit_callbacks, mailoutbox
):
    rows, path = versions
    _flag(rows["1.0.0"], path("1.0.0"), django_capture_on_commit_callbacks)
    alert = Alert.objects.get()
    assert (alert.rule.metric, alert.severity, alert.status, alert.value) == (
        "integrity", "critical", "open", 1)
    assert alert.title == (f"model.joblib of churn_prediction 1.0.0 has sha256 "
                           f"{helpers.sha256(b'tampered')}, not the registered "
                           f"{helpers.sha256(helpers.sklearn_bytes())}")
    assert set(alert.evidence["versions"]) == {"1.0.0"}
    event = AuditEvent.objects.get(action="alert.opened")
    assert (event.actor_name, event.reason) == ("system", alert.title)
    (email,) = AlertDelivery.objects.filter(alert=alert)
    assert (email.channel, email.status, email.target) == ("email", "sent", "dana@example.org")
    assert len(mailoutbox) == 1


def test_a_second_flagged_version_updates_the_alert_and_it_resolves_only_when_both_are_intact(
    versions, django_capture_on_commit_callbacks
):
    rows, path = versions
    capture = django_capture_on_commit_callbacks
    _flag(rows["1.0.0"], path("1.0.0"), capture)
    before = _generation()
    _flag(rows["1.1.0"], path("1.1.0"), capture, data=None)  # this one is gone
    alert = Alert.objects.get()
    assert (alert.count, alert.value, alert.status) == (2, 2, "open")
    assert alert.evidence["versions"]["1.1.0"]["missing"] is True
    assert _generation() > before  # web processes re-read what they may serve

    _clear(rows["1.0.0"], path("1.0.0"), capture)
    alert.refresh_from_db()
    assert (alert.status, alert.value) == ("open", 1)
    assert "1.1.0 is missing" in alert.title
    _clear(rows["1.1.0"], path("1.1.0"), capture)
    alert.refresh_from_db()
    assert (alert.status, alert.resolved_by.username) == ("resolved", "system")
    assert alert.resolution == "every file matches its registered sha256 again"
    assert list(AuditEvent.objects.filter(action__startswith="alert.").order_by("seq")
                .values_list("action", flat=True)) == ["alert.opened", "alert.resolved"]


def test_a_model_whose_integrity_rule_is_off_gets_the_flag_but_no_alert(
    versions, admin_user, django_capture_on_commit_callbacks
):
    rows, path = versions
    rule = monitoring_services.alert_rule_save(
        actor=admin_user, model=rows["1.0.0"].model, metric="integrity", threshold=0.0,
        severity="critical", window_minutes=1, min_rows=1, enabled=False)
    assert json.loads(AuditEvent.objects.get(action="alert_rule.created").after)["enabled"] is False
    _flag(rows["1.0.0"], path("1.0.0"), django_capture_on_commit_callbacks)
    rows["1.0.0"].refresh_from_db()
    assert rows["1.0.0"].integrity_failed_at is not None  # still not served, only not alerted
    assert not Alert.objects.filter(rule=rule).exists()
    assert not Alert.objects.exists()
