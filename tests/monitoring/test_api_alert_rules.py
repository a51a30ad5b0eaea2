"""Alert rules over the REST API."""

from __future__ import annotations

import json

from core.models import AuditEvent
from monitoring import services as monitoring_services
from monitoring.models import AlertRule
from tests.helpers import Unchanged

RULES = "/api/v1/alert-rules/"


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
