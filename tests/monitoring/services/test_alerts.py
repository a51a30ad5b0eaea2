"""An alert per rule and model: updated, not duplicated; resolved when it clears, when its
rule is switched off, or when its model stops serving; untouched by a pass with no data."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from core.models import AuditEvent
from governance import services
from monitoring import services as monitoring_services
from monitoring.models import Alert
from tests.monitoring.traffic import log_window


def _alerts(**filters):
    return list(Alert.objects.filter(**filters).order_by("id"))


def test_the_alert_is_updated_not_duplicated_and_resolves_when_it_clears(monitored):
    start = timezone.now() - timedelta(days=1)
    hours = iter(range(1, 100))

    def pass_(**shape):
        end = start + timedelta(hours=next(hours))
        log_window(monitored, end=end, seed=end.hour * 7 + end.day, **shape)
        return monitoring_services.monitoring_pass(model=monitored.model, now=end)

    pass_(shift_tenure=1.0)
    pass_(shift_tenure=1.2)
    (alert,) = _alerts()
    assert (alert.count, alert.status) == (2, "open")
    for _ in range(2):
        pass_()
    alert.refresh_from_db()
    assert (alert.status, alert.clear_runs) == ("open", 2)
    pass_()  # the third clear pass in a row: the rule's resolve_after_runs
    alert.refresh_from_db()
    assert alert.status == "resolved"
    assert alert.resolved_by.username == "system"
    assert "clear for 3 passes" in alert.resolution
    actions = list(AuditEvent.objects.filter(action__startswith="alert.").order_by("seq")
                   .values_list("action", flat=True))
    assert actions == ["alert.opened", "alert.resolved"]
    pass_(shift_tenure=1.0)  # it comes back: a new alert, not the old one reopened
    assert [a.status for a in _alerts()] == ["resolved", "open"]


def test_no_data_neither_clears_nor_raises_an_open_alert(monitored):
    end = timezone.now() - timedelta(hours=5)
    log_window(monitored, end=end, seed=3, shift_tenure=1.0)
    monitoring_services.monitoring_pass(model=monitored.model, now=end)
    for hours in range(1, 5):  # four quiet hours
        monitoring_services.monitoring_pass(model=monitored.model, now=end + timedelta(hours=hours))
    (alert,) = _alerts()
    assert (alert.status, alert.clear_runs, alert.count) == ("open", 0, 1)


def test_an_alert_whose_rule_was_switched_off_is_resolved_by_the_next_pass(monitored,
                                                                           admin_user):
    end = timezone.now() - timedelta(hours=2)
    log_window(monitored, end=end, seed=1, shift_tenure=1.0)
    monitoring_services.monitoring_pass(model=monitored.model, now=end)
    (alert,) = _alerts()
    monitoring_services.alert_rule_save(actor=admin_user, rule=alert.rule, enabled=False)
    monitoring_services.monitoring_pass(model=monitored.model, now=end + timedelta(hours=1))
    alert.refresh_from_db()
    assert alert.status == "resolved" and "no longer applies" in alert.resolution


def test_an_alert_of_a_model_that_stopped_serving_is_resolved(monitored):
    now = timezone.now()
    log_window(monitored, end=now, seed=1, shift_tenure=1.0)
    monitoring_services.monitoring_pass(model=monitored.model, now=now)
    helpers_force_archive(monitored)
    assert monitored.model_id in monitoring_services.models_to_monitor()  # its alert keeps it watched
    assert monitoring_services.monitoring_pass(model=monitored.model) == []
    assert Alert.objects.get().status == "resolved"
    assert monitored.model_id not in monitoring_services.models_to_monitor()


def helpers_force_archive(version):
    from tests import helpers

    services.version_force_stage(version=version, to_stage="archived",
                                 actor=helpers.governance_admin(), reason="retired")
