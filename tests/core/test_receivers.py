"""Changes of a person's rights are audited with who made them (core.receivers)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group

from core.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_a_role_change_in_the_admin_is_audited_with_who_did_it(client, admin_user, viewer):
    client.force_login(admin_user)
    approver_group = Group.objects.get(name="approver")
    response = client.post(f"/admin/auth/user/{viewer.pk}/change/", {
        "username": "vic", "password": viewer.password, "email": viewer.email,
        "is_active": "on", "groups": [Group.objects.get(name="viewer").pk, approver_group.pk],
        "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01", "initial-date_joined_1": "00:00:00",
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    event = AuditEvent.objects.filter(action="role.granted", object_repr="vic").last()
    assert json.loads(event.after) == {"roles": ["approver"]}
    assert event.actor_name == "ada"


def test_making_someone_a_superuser_is_audited_with_who_did_it(client, admin_user, viewer):
    client.force_login(admin_user)
    response = client.post(f"/admin/auth/user/{viewer.pk}/change/", {
        "username": "vic", "password": viewer.password, "email": viewer.email,
        "is_active": "on", "is_staff": "on", "is_superuser": "on",
        "groups": [Group.objects.get(name="viewer").pk],
        "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01", "initial-date_joined_1": "00:00:00",
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    event = AuditEvent.objects.filter(action="privileges.changed", object_repr="vic").last()
    assert json.loads(event.before) == {"is_superuser": False, "is_staff": False}
    assert json.loads(event.after) == {"is_superuser": True, "is_staff": True}
    assert event.actor_name == "ada"
