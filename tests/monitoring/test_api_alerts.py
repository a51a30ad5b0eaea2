"""Alerts over the REST API: read, acknowledged and resolved, each in the audit trail."""

from __future__ import annotations

from django.utils import timezone

from core.models import AuditEvent
from monitoring import services as monitoring_services
from monitoring.models import Alert
from tests.helpers import Unchanged
from tests.monitoring.traffic import log_window

ALERTS = "/api/v1/alerts/"


def _open_alert(monitored):
    now = timezone.now()
    log_window(monitored, end=now, seed=1, shift_tenure=1.0)
    monitoring_services.monitoring_pass(model=monitored.model, now=now)
    return Alert.objects.get()


def test_people_read_alerts_with_filters_but_an_outsider_does_not(api, monitored, viewer,
                                                                  outsider):
    alert = _open_alert(monitored)
    body = api(viewer).get(ALERTS + "?status=open&model=loans").json()
    assert [row["id"] for row in body["results"]] == [alert.pk]
    row = body["results"][0]
    assert row["rule"]["metric"] == "feature_drift" and row["severity"] == "warning"
    assert set(row["evidence"]["versions"]["1.0.0"]["features"]) == {"tenure"}
    assert api(viewer).get(ALERTS + "?status=resolved").json()["results"] == []
    assert api(viewer).get(ALERTS + "?severity=loud").status_code == 400
    assert api(outsider).get(ALERTS).status_code == 403


def test_acknowledging_then_resolving_is_recorded_in_the_audit_trail(api, monitored,
                                                                     data_scientist):
    alert = _open_alert(monitored)
    client = api(data_scientist)
    acked = client.post(f"{ALERTS}{alert.pk}/acknowledge", {"comment": "looking"},
                        format="json")
    assert acked.status_code == 200, acked.json()
    assert (acked.json()["status"], acked.json()["acknowledged_by"]) == ("acknowledged", "dana")
    with Unchanged(allow_actions=()):
        no_comment = client.post(f"{ALERTS}{alert.pk}/resolve", {}, format="json")
    assert no_comment.status_code == 400 and "comment" in no_comment.json()["errors"]
    resolved = client.post(f"{ALERTS}{alert.pk}/resolve",
                           {"comment": "upstream fixed the tenure unit"}, format="json")
    assert resolved.json()["status"] == "resolved"
    assert resolved.json()["resolution"] == "upstream fixed the tenure unit"
    events = list(AuditEvent.objects.filter(action__startswith="alert.").order_by("seq")
                  .values_list("action", "actor_name", "reason"))
    assert events == [("alert.opened", "system", alert.title),
                      ("alert.acknowledged", "dana", "looking"),
                      ("alert.resolved", "dana", "upstream fixed the tenure unit")]
    with Unchanged(allow_actions=()):
        again = client.post(f"{ALERTS}{alert.pk}/acknowledge", {}, format="json")
    assert again.status_code == 409


def test_a_viewer_cannot_act_on_an_alert_and_the_attempt_is_audited(api, monitored, viewer):
    alert = _open_alert(monitored)
    before = AuditEvent.objects.filter(action="permission.denied").count()
    response = api(viewer).post(f"{ALERTS}{alert.pk}/acknowledge", {}, format="json")
    assert response.status_code == 403
    assert AuditEvent.objects.filter(action="permission.denied").count() == before + 1
    assert Alert.objects.get().status == "open"
