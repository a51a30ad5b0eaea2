"""Validation runs over the REST API: listed, started, and the sandbox log for admins only."""

from __future__ import annotations

import json

import pytest

from core.models import AuditEvent
from governance.models import ValidationRun
from registry.models import ModelVersion
from tests import helpers
from tests.helpers import Unchanged

pytestmark = pytest.mark.django_db(transaction=True)  # registration validates on commit


def test_the_api_lists_runs_and_starts_a_new_one(api, data_scientist, viewer, churn_model):
    helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    url = "/api/v1/models/churn_prediction/versions/1.0.0/validations/"
    started = api(data_scientist).post(url)
    assert started.status_code == 202
    runs = api(viewer).get(url).json()["results"]
    assert runs[0]["status"] == "passed"
    assert [c["name"] for c in runs[0]["checks"]][:2] == ["checksum", "load"]
    with Unchanged():
        assert api(viewer).post(url).status_code == 403
    # One run at registration, one asked for; the viewer's attempt added none.
    assert ModelVersion.objects.get(version="1.0.0").validation_runs.count() == 2
    event = AuditEvent.objects.filter(action="permission.denied").last()
    assert event.actor_name == "vic"
    assert json.loads(event.after)["attempted"] == "validation.start"


def test_only_admins_download_the_sandbox_log(api, data_scientist, viewer, admin_user,
                                              churn_model):
    version = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist,
                                      data=helpers.hostile_bytes("raise ValueError('in my words')"))
    run = ValidationRun.objects.get(version=version, trigger="registration")
    url = f"/api/v1/models/churn_prediction/versions/1.0.0/validations/{run.pk}/log"
    for person in (data_scientist, viewer):
        assert api(person).get(url).status_code == 403
    response = api(admin_user).get(url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert "in my words" in response.content.decode()
