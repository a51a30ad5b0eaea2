"""MLflow fixtures: churn_prediction owned by the team `loans` (dana, april) with version 1
(1.0.0) in production and version 2 (1.1.0) in staging, validated; sam is in `growth`."""

from __future__ import annotations

import pytest

from core import roles
from registry import services
from registry.models import Team
from tests import helpers
from tests.conftest import _person

MODEL = "churn_prediction"
MLFLOW = "/api/2.0/mlflow/"


@pytest.fixture
def loans(data_scientist, approver, other_data_scientist, db):
    team = Team.objects.create(name="loans")
    team.members.add(data_scientist, approver)
    Team.objects.create(name="growth").members.add(other_data_scientist)
    return team


@pytest.fixture
def versions(loans, data_scientist):
    services.model_create(name=MODEL, task_type="classification", owner=data_scientist,
                          actor=data_scientist, team_name="loans")
    old = helpers.register_direct(MODEL, "1.0.0", actor=data_scientist)
    helpers.force_stage(old, "production")
    new = helpers.register_direct(MODEL, "1.1.0", actor=data_scientist,
                                  data=helpers.sklearn_bytes(seed=1))
    helpers.force_stage(new, "staging")
    helpers.mark_validated(new)
    return {"old": old, "new": new}


@pytest.fixture
def service_account(db, django_user_model):
    return _person(django_user_model, "loans-service", roles.SERVICE)


@pytest.fixture
def service_token(service_account, admin_user):
    from predictions import services as predictions

    return predictions.api_token_create(user=service_account, name="mlflow",
                                        actor=admin_user)[1]


@pytest.fixture
def granted(versions, service_account, admin_user):
    """The service account may read churn_prediction (a reader grant, not a team)."""
    model = versions["old"].model
    services.model_update(model=model, actor=admin_user, readers=[service_account])
    return service_account
