"""The demo's inventory (demo/compliance.py): tiers set by april, overdue_prediction's
production review overdue with one open alert, and a second run changing nothing."""

from __future__ import annotations

import pytest

from core.models import AuditEvent
from demo.compliance import INVENTORY
from demo.seeding import OVERDUE_DAYS, apply_inventory
from monitoring.models import ACTIVE_ALERT, Alert, AlertMetric
from registry.models import RegisteredModel
from tests import helpers

pytestmark = pytest.mark.django_db


def test_the_demo_inventory_shows_one_overdue_review_and_is_idempotent(
        data_scientist, approver, api, viewer):
    helpers.create_model(owner=data_scientist, name="overdue_prediction")
    helpers.create_model(owner=data_scientist, name="churn_prediction")
    version = helpers.register_direct("overdue_prediction", "1.0.0", actor=data_scientist)
    helpers.force_stage(version, "production")

    apply_inventory(april=approver, log=lambda *_: None)
    for name in ("overdue_prediction", "churn_prediction"):
        model = RegisteredModel.objects.get(name=name)
        assert (model.risk_tier, model.risk_reason, model.business_use) == INVENTORY[name]
    alert = Alert.objects.get(ACTIVE_ALERT, rule__metric=AlertMetric.REVIEW_OVERDUE)
    assert alert.model.name == "overdue_prediction"
    body = api(viewer).get("/api/v1/inventory/?overdue=true").json()
    assert [(r["model"], round(r["days_overdue"])) for r in body["results"]] == [
        ("overdue_prediction", OVERDUE_DAYS)]
    events = list(AuditEvent.objects.values_list("seq", flat=True))

    apply_inventory(april=approver, log=lambda *_: None)
    assert Alert.objects.filter(rule__metric=AlertMetric.REVIEW_OVERDUE).count() == 1
    assert list(AuditEvent.objects.values_list("seq", flat=True)) == events
    assert AuditEvent.objects.filter(action="model.risk_set", actor_name="april").count() == 2
