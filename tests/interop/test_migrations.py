"""registry 0007: existing versions are numbered 1, 2, 3... per model by creation date."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from registry.models import ModelVersion
from tests import helpers

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("registry", "0006_version_moving_by_deployment")]


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.migrate(target)
    return executor.loader.project_state(target).apps


def test_existing_versions_are_numbered_in_creation_order_per_model(data_scientist,
                                                                     churn_model):
    helpers.create_model(owner=data_scientist, name="demand_forecast")
    rows = {(name, text): helpers.register_direct(name, text, actor=data_scientist).pk
            for name, text in [("churn_prediction", "2.0.0"), ("churn_prediction", "1.0.0"),
                               ("demand_forecast", "0.1.0"), ("churn_prediction", "1.5.0")]}
    start = timezone.now() - timedelta(days=30)
    created = {("churn_prediction", "1.0.0"): 0, ("churn_prediction", "1.5.0"): 1,
               ("churn_prediction", "2.0.0"): 2, ("demand_forecast", "0.1.0"): 3}
    try:
        old = _migrate(BEFORE).get_model("registry", "ModelVersion")
        for key, days in created.items():
            old.objects.filter(pk=rows[key]).update(created_at=start + timedelta(days=days))
    finally:
        # Back to the latest state (every app's leaf: later migrations add columns).
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    numbers = {(v.model.name, v.version): v.number
               for v in ModelVersion.objects.select_related("model")}
    assert numbers == {("churn_prediction", "1.0.0"): 1, ("churn_prediction", "1.5.0"): 2,
                       ("churn_prediction", "2.0.0"): 3, ("demand_forecast", "0.1.0"): 1}
