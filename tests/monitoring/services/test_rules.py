"""Alert rules: a model's own rule replaces the default; a rule that makes no sense is refused."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from core.models import AuditEvent
from monitoring import services as monitoring_services
from monitoring.models import Alert, AlertRule
from tests.monitoring.traffic import log_window


def test_a_models_own_rule_replaces_the_default_and_can_switch_it_off(monitored, admin_user):
    now = timezone.now()
    log_window(monitored, end=now, seed=1, shift_tenure=1.0)
    monitoring_services.ensure_default_rules()
    monitoring_services.alert_rule_save(actor=admin_user, model=monitored.model, metric="feature_drift",
                             statistic="psi", threshold=0.2, enabled=False)
    assert monitoring_services.monitoring_pass(model=monitored.model, now=now)[0].status == "ok"
    assert not Alert.objects.exists()
    event = AuditEvent.objects.get(action="alert_rule.created")
    assert json.loads(event.after)["enabled"] is False


def test_a_rule_that_makes_no_sense_is_refused_and_nothing_is_saved(monitored, admin_user):
    from core.errors import ApplicationError

    before = AlertRule.objects.count()
    bad = [dict(metric="feature_drift", statistic="median", threshold=0.2),
           dict(metric="latency_p99", statistic="psi", threshold=200),
           dict(metric="error_rate", threshold=-1),
           dict(metric="made_up", threshold=1)]
    for spec in bad:
        with pytest.raises(ApplicationError):
            monitoring_services.alert_rule_save(actor=admin_user, model=monitored.model, **spec)
    assert AlertRule.objects.count() == before
