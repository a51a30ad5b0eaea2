"""Alerts and the monitoring page in the admin."""

from __future__ import annotations

import re
from datetime import timedelta

from django.utils import timezone

from core.models import AuditEvent
from monitoring import services as monitoring_services
from monitoring.models import Alert, AlertRule
from tests.monitoring.traffic import log_window


def _passes(monitored, shifts=(0.0, 0.0, 1.0)):
    start = timezone.now() - timedelta(hours=len(shifts))
    for hour, shift in enumerate(shifts, start=1):
        end = start + timedelta(hours=hour)
        log_window(monitored, end=end, seed=hour, shift_tenure=shift)
        monitoring_services.monitoring_pass(model=monitored.model, now=end)


def test_the_alerts_list_and_an_alert_page_show_the_evidence(client, approver, monitored):
    _passes(monitored)
    alert = Alert.objects.get()
    client.force_login(approver)
    listing = client.get("/admin/monitoring/alert/?status__exact=open").content.decode()
    assert 'data-severity="warning"' in listing and 'data-status="open"' in listing
    assert "Feature drift in tenure" in listing
    page = client.get(f"/admin/monitoring/alert/{alert.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'id="alert-evidence"' in text and "reference_mean" in text
    # A table: a row per drifting feature, a column per figure; the JSON only folded below.
    evidence = text[text.index('id="alert-evidence"'):text.index("</details>")]
    assert "<th>reference_mean</th>" in evidence and "<th>tenure</th>" in evidence
    assert evidence.index("<details>") > evidence.rindex("</table>")
    assert 'name="acknowledge"' in text and 'name="resolve"' in text


def test_an_approver_acknowledges_and_resolves_in_the_admin(client, approver, monitored):
    _passes(monitored)
    alert = Alert.objects.get()
    client.force_login(approver)
    url = f"/admin/monitoring/alert/{alert.pk}/act/"
    response = client.post(url, {"acknowledge": "Acknowledge", "comment": "on it"}, follow=True)
    assert "Acknowledged alert" in response.content.decode()
    refused = client.post(url, {"resolve": "Resolve", "comment": ""}, follow=True)
    assert "say what was done" in refused.content.decode().lower()
    client.post(url, {"resolve": "Resolve", "comment": "retrained on the new tenure unit"})
    alert.refresh_from_db()
    assert (alert.status, alert.resolved_by.username) == ("resolved", "april")
    assert list(AuditEvent.objects.filter(action__in=["alert.acknowledged", "alert.resolved"])
                .values_list("action", "actor_name")) == [
        ("alert.acknowledged", "april"), ("alert.resolved", "april")]


def test_the_resolve_action_asks_for_a_comment(client, approver, monitored):
    _passes(monitored)
    alert = Alert.objects.get()
    client.force_login(approver)
    form = {"action": "resolve_alerts", "_selected_action": [alert.pk]}
    asked = client.post("/admin/monitoring/alert/", form)
    assert "What was done" in asked.content.decode()
    assert Alert.objects.get().status == "open"
    client.post("/admin/monitoring/alert/", {**form, "apply": "1", "comment": "false alarm"})
    assert Alert.objects.get().status == "resolved"


def test_the_monitoring_page_draws_drift_per_feature_and_the_model_page_summarises(
    client, approver, monitored
):
    _passes(monitored)
    client.force_login(approver)
    page = client.get(f"/admin/monitoring/monitoringrun/model/{monitored.model.pk}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert text.count('<figure class="chart">') == 4
    for feature in ("tenure", "visits", "fines", "branch"):
        assert f'data-series="{feature}"' in text
        assert re.search(rf'<ul class="chart-legend"[^>]*>.*?</span>{feature}</li>', text)
    assert "alert above 0.2" in text
    model_page = client.get(f"/admin/registry/registeredmodel/{monitored.model.pk}/change/")
    glance = model_page.content.decode()
    assert 'id="monitoring-glance"' in glance and "Feature drift in tenure" in glance
    listing = client.get("/admin/registry/registeredmodel/").content.decode()
    assert "?model__id__exact=" in listing  # the open-alerts column links to them


def test_critical_alerts_come_first(client, approver, monitored, admin_user):
    from monitoring.models import Alert

    _passes(monitored)  # a warning: feature drift
    critical = monitoring_services.alert_rule_save(actor=admin_user, model=monitored.model,
                                        metric="error_rate", threshold=0.5,
                                        severity="critical")
    Alert.objects.create(rule=critical, model=monitored.model, severity="critical",
                         title="Error rate 90% > 50%", value=0.9, threshold=0.5,
                         first_seen=timezone.now(), last_seen=timezone.now()
                         - timedelta(hours=5))
    client.force_login(approver)
    page = client.get(f"/admin/registry/registeredmodel/{monitored.model.pk}/change/")
    text = page.content.decode()
    assert text.index("Error rate 90%") < text.index("Feature drift in tenure")
    assert AlertRule.objects.filter(severity="critical").exists()
