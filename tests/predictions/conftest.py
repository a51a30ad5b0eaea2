"""Serving fixtures: a validated model in production, a service account with a token."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from core import roles
from governance import services as governance
from tests import helpers
from tests.conftest import _person


@pytest.fixture
def served(data_scientist, churn_model):
    """served("1.0.0", data=..., stage="production") -> a validated version in `stage`."""

    def make(version="1.0.0", *, stage="production", **kwargs):
        row = helpers.register_direct("churn_prediction", version, actor=data_scientist,
                                      **kwargs)
        run = governance.validation_request_now(row)
        assert run.status == "passed", run.summary
        return helpers.force_stage(row, stage)

    return make


@pytest.fixture
def service_account(db, django_user_model):
    return _person(django_user_model, "loans-service", roles.SERVICE)


@pytest.fixture
def service_token(service_account, admin_user):
    from predictions import services

    _token, plain = services.api_token_create(user=service_account, name="loans service",
                                              actor=admin_user)
    return plain


@pytest.fixture
def service(service_token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {service_token}")
    return client


@pytest.fixture
def group_limit(db):
    def set_(role: str, per_hour: int):
        from predictions.models import RateLimit

        RateLimit.objects.update_or_create(group=Group.objects.get(name=role),
                                           defaults={"requests_per_hour": per_hour})

    return set_
