"""Alert rules in the admin."""

from __future__ import annotations

from core.models import AuditEvent
from monitoring.models import AlertRule


def test_a_rule_that_makes_no_sense_is_a_form_error_in_the_admin(client, admin_user, monitored):
    client.force_login(admin_user)
    before = AlertRule.objects.count()
    response = client.post("/admin/monitoring/alertrule/add/", {
        "model": monitored.model.pk, "metric": "feature_drift", "statistic": "median",
        "threshold": "0.2", "severity": "warning", "window_minutes": "60",
        "min_rows": "100", "resolve_after_runs": "3", "enabled": "on"})
    assert response.status_code == 200
    assert "a drift rule reads one of psi, ks, js" in response.content.decode()
    assert AlertRule.objects.count() == before
    client.post("/admin/monitoring/alertrule/add/", {
        "model": monitored.model.pk, "metric": "feature_drift", "statistic": "ks",
        "threshold": "0.15", "severity": "critical", "window_minutes": "30",
        "min_rows": "100", "resolve_after_runs": "2", "enabled": "on"})
    assert AlertRule.objects.filter(model=monitored.model, statistic="ks").exists()
    assert AuditEvent.objects.filter(action="alert_rule.created", actor_name="ada").exists()
