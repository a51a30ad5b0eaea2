"""Governance fixtures: versions with real validation runs, and the people who act on them."""

from __future__ import annotations

import pytest

from governance import services
from governance.models import Policy
from governance.selectors import latest_validation
from tests import helpers


@pytest.fixture
def policy(db):
    from governance.policies import project_default

    return project_default()


@pytest.fixture
def validated(data_scientist, churn_model):
    """validated("1.0.0", stage="staging", metrics=...) -> a registered, validated version."""

    def make(version: str, *, stage: str = "experiment", **meta):
        row = helpers.register_direct("churn_prediction", version, actor=data_scientist,
                                      meta=helpers.metadata(**meta))
        # Transactional tests ran the registration's own validation on commit.
        run = latest_validation(row) or services.validation_request_now(
            row, trigger="registration")
        assert run.status == "passed", [(c.name, c.status, c.detail) for c in run.checks.all()]
        if stage != "experiment":
            helpers.force_stage(row, stage)
        return row

    return make


@pytest.fixture
def promotion(api, data_scientist, validated):
    """1.0.0 in production, 1.1.0 in staging with a pending request by the data scientist."""
    helpers_state = {}
    helpers_state["old"] = validated("1.0.0", stage="production",
                                     metrics={"accuracy": 0.80, "f1_score": 0.75})
    helpers_state["new"] = validated("1.1.0", stage="staging",
                                     metrics={"accuracy": 0.82, "f1_score": 0.77})
    response = api(data_scientist).post(
        "/api/v1/models/churn_prediction/versions/1.1.0/transitions/",
        {"to_stage": "production", "reason": "Better on November data"}, format="json")
    assert response.status_code == 202, response.json()
    helpers_state["request_id"] = response.json()["request"]["id"]
    return helpers_state


@pytest.fixture
def second_approver(db, django_user_model):
    from core import roles
    from tests.conftest import _person

    return _person(django_user_model, "bea", roles.APPROVER, is_staff=True)


@pytest.fixture
def strict_policy(policy):
    def set_(**changes):
        Policy.objects.filter(pk=policy.pk).update(**changes)
        policy.refresh_from_db()
        return policy

    return set_
