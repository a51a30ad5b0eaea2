"""With the broker (Redis) down, governance writes still commit; the periodic recovery does
what their lost messages would have done."""

from __future__ import annotations

import pytest

from governance import services
from governance.models import Deployment
from tests import helpers
from tests.processes import reset_connection_pools

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


def test_a_transition_commits_while_the_broker_is_down_and_recovery_finishes_it(
    api, data_scientist, churn_model, dead_broker, caplog
):
    version = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    response = api(data_scientist).post(
        "/api/v1/models/churn_prediction/versions/1.0.0/transitions/",
        {"to_stage": "staging", "reason": "try it"}, format="json")
    assert response.status_code == 202, response.json()
    deployment = Deployment.objects.get(version=version)
    assert deployment.status == "pending"  # its message was lost with the broker
    assert "Connection refused" in caplog.text  # the lost message is logged
    services.deployment_recover(older_than_seconds=0)  # the beat task's sweep
    version.refresh_from_db()
    assert version.stage == "staging"
