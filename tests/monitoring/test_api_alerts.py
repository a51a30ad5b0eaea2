"""Alerts, alert rules and a model's monitoring over the REST API."""

from __future__ import annotations

import json

from django.utils import timezone

from core.models import AuditEvent
from monitoring import services as monitoring_services
from monitoring.models import Alert, AlertRule
from tests.helpers import Unchanged
from tests.monitoring.traffic import log_window

ALERTS = "/api/v1/alerts/"
RULES = "/api/v1/alert-rules/"


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


def test_rules_are_listed_and_a_model_owner_adds_one_for_their_model(api, monitored,
                                                                     data_scientist):
    monitoring_services.ensure_default_rules()  # post_migrate makes them; a flushed test database not
    listed = api(data_scientist).get(RULES + "?model=default").json()["results"]
    assert {(r["metric"], r["statistic"], r["threshold"]) for r in listed} >= {
        ("feature_drift", "psi", 0.2), ("performance_drop", "accuracy", 0.05),
        ("latency_p99", "", 200.0), ("error_rate", "", 0.01)}
    created = api(data_scientist).post(RULES, {
        "model": "loans", "metric": "feature_drift", "statistic": "ks", "threshold": 0.15,
        "severity": "critical", "window_minutes": 30}, format="json")
    assert created.status_code == 201, created.json()
    rule = AlertRule.objects.get(pk=created.json()["id"])
    assert (rule.model.name, rule.statistic, rule.window_minutes) == ("loans", "ks", 30)
    changed = api(data_scientist).patch(f"{RULES}{rule.pk}/", {"threshold": 0.25},
                                        format="json")
    assert changed.json()["threshold"] == 0.25
    event = AuditEvent.objects.filter(action="alert_rule.changed").last()
    assert (json.loads(event.before), json.loads(event.after)) == (
        {"threshold": 0.15}, {"threshold": 0.25})


def test_bad_or_unauthorised_rule_changes_change_nothing(api, monitored, data_scientist,
                                                         other_data_scientist):
    monitoring_services.ensure_default_rules()
    cases = [
        (data_scientist, {"metric": "latency_p99", "threshold": 100}, 403),  # a default
        (other_data_scientist, {"model": "loans", "metric": "latency_p99",
                                "threshold": 100}, 403),  # someone else's model
        (data_scientist, {"model": "loans", "metric": "feature_drift", "statistic": "mean",
                          "threshold": 0.1}, 400),
        (data_scientist, {"model": "loans", "metric": "latency_p99"}, 400),
        (data_scientist, {"model": "loans", "metric": "latency_p99", "threshold": 100,
                          "colour": "red"}, 400),
        (data_scientist, {"model": "nope", "metric": "latency_p99", "threshold": 100}, 404),
    ]
    for person, body, status in cases:
        with Unchanged():
            response = api(person).post(RULES, body, format="json")
        assert response.status_code == status, (body, response.json())


def test_the_monitoring_endpoint_shows_passes_and_active_alerts(api, monitored, viewer):
    alert = _open_alert(monitored)
    body = api(viewer).get("/api/v1/models/loans/monitoring/?limit=5").json()
    assert body["model"] == "loans" and body["window_minutes"] == 60
    assert [a["id"] for a in body["alerts"]] == [alert.pk]
    (run,) = body["runs"]
    assert (run["version"], run["status"]) == ("1.0.0", "alerting")
    assert run["figures"]["60"]["drift"]["features"]["tenure"]["psi"] > 0.2
    assert api(viewer).get("/api/v1/models/nope/monitoring/").status_code == 404
