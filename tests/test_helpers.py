"""The "nothing changed" helper watches every table of the project's apps, not a chosen few."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import transaction

from core import audit, roles
from monitoring.models import Webhook
from registry.models import DEFAULT_TEAM, RegisteredModel, Team
from tests.helpers import Unchanged


def _membership(person, model):
    Team.objects.get(name=DEFAULT_TEAM).members.add(person)


def _role(person, model):
    person.groups.add(Group.objects.get(name=roles.APPROVER))


def _webhook(person, model):
    Webhook.objects.create(name="left behind", url="https://hooks.example/", secret="s")


def _edit(person, model):
    RegisteredModel.objects.filter(pk=model.pk).update(description="quietly changed")


def _event(person, model):
    with transaction.atomic():
        audit.record(action="model.updated", actor=person, subject=model)


@pytest.mark.parametrize(("change", "table"), [
    (_membership, "registry_team_members"),  # an m2m through table
    (_role, "auth_user_groups"),
    (_webhook, "governance_webhook"),  # monitoring's
    (_edit, "registry_registeredmodel"),  # a changed row, not only a new one
    (_event, "governance_auditevent"),
])
def test_a_row_left_behind_anywhere_is_caught(outsider, churn_model, change, table):
    with pytest.raises(AssertionError, match=table):
        with Unchanged():
            change(outsider, churn_model)


def test_a_block_that_raises_is_checked_too(outsider, churn_model):
    with pytest.raises(AssertionError, match="governance_webhook"):
        with Unchanged():
            _webhook(outsider, churn_model)
            raise PermissionError("refused, but something was written first")


def test_the_refusals_own_audit_event_is_allowed(outsider, churn_model):
    from core.errors import Forbidden

    with Unchanged(), pytest.raises(Forbidden):
        raise audit.denied(actor=outsider, subject=churn_model, attempted="model.update",
                           message="no")
    with pytest.raises(AssertionError, match="governance_auditevent"), Unchanged(allow_actions=()):
        raise audit.denied(actor=outsider, subject=churn_model, attempted="model.update",
                           message="no")
