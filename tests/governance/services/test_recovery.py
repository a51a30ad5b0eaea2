"""interrupted_recover, the periodic recovery: with the broker (Redis) down governance writes
still commit, and the recovery does what their lost messages would have done; it finishes what
a killed worker left half done. Fresh work, whose message may still be on its way, it leaves."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from governance import services
from governance.models import Deployment, ValidationRun
from tests import helpers
from tests.processes import kill_deployment_at, reset_connection_pools

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dead_broker(celery_eager):
    app = celery_eager
    saved = app.conf.broker_url, app.conf.broker_transport_options
    app.conf.task_always_eager = False
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    app.conf.broker_transport_options = {}
    reset_connection_pools(app)
    yield app
    app.conf.broker_url, app.conf.broker_transport_options = saved
    reset_connection_pools(app)


def _age(row, **delta):
    type(row).objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(**delta))


def test_a_transition_commits_while_the_broker_is_down_and_recovery_finishes_it(
    api, data_scientist, churn_model, dead_broker, caplog
):
    version = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    run = ValidationRun.objects.get(version=version)
    assert run.status == "pending"  # the registration's validation lost its message too
    response = api(data_scientist).post(
        "/api/v1/models/churn_prediction/versions/1.0.0/transitions/",
        {"to_stage": "staging", "reason": "try it"}, format="json")
    assert response.status_code == 202, response.json()
    deployment = Deployment.objects.get(version=version)
    assert deployment.status == "pending"  # its message was lost with the broker
    assert "Connection refused" in caplog.text  # the lost message is logged

    assert services.interrupted_recover(older_than_seconds=3600) == []  # may be on its way
    _age(deployment, hours=2)
    _age(run, hours=2)
    handled = services.interrupted_recover(older_than_seconds=3600)
    assert sorted(type(item).__name__ for item in handled) == ["Deployment", "ValidationRun"]
    version.refresh_from_db()
    run.refresh_from_db()
    assert version.stage == "staging"
    assert run.status == "passed"
    assert services.interrupted_recover(older_than_seconds=0) == []  # nothing twice


def test_the_periodic_task_recovers_deployments_and_ends_abandoned_validations(
    validated, admin_user, store_root, tmp_path
):
    from governance.tasks import interrupted_recover

    validated("1.0.0", stage="production", metrics={"accuracy": 0.8})
    candidate = validated("1.1.0", stage="staging", metrics={"accuracy": 0.85})
    deployment = Deployment.objects.create(
        model=candidate.model, version=candidate, from_stage="staging", to_stage="production",
        kind="forced", requested_by=admin_user, deployed_by=admin_user, reason="test")
    kill_deployment_at(deployment, 0, store_root, tmp_path)
    Deployment.objects.filter(pk=deployment.pk).update(
        started_at=timezone.now() - timedelta(minutes=5))
    stuck = ValidationRun.objects.create(version=deployment.version, trigger="manual",
                                         status="running",
                                         started_at=timezone.now() - timedelta(hours=1))
    outcome = interrupted_recover.delay(older_than_seconds=120).get()
    assert any("completed" in line for line in outcome)
    deployment.refresh_from_db()
    stuck.refresh_from_db()
    assert deployment.status == "completed"
    assert stuck.status == "failed"
    assert "worker stopped" in stuck.checks.get().detail
