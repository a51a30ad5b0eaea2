"""Teams and policies: only an admin adds or changes them in the admin, and nobody deletes
them (their history is in the audit trail)."""

import pytest

from governance.models import Policy
from registry.models import Team

PAGES = [
    ("/admin/registry/team/add/", "/admin/registry/team/{pk}/change/",
     "/admin/registry/team/{pk}/delete/", lambda: Team.objects.create(name="fraud")),
    ("/admin/governance/policy/add/", "/admin/governance/policy/{pk}/change/",
     "/admin/governance/policy/{pk}/delete/", lambda: Policy.objects.first()),
]


@pytest.mark.parametrize("add, change, delete, row", PAGES)
def test_an_approver_may_neither_add_nor_change(client, approver, add, change, delete, row):
    obj = row()
    client.force_login(approver)
    assert client.get(add).status_code == 403
    answer = client.post(change.format(pk=obj.pk), {"name": "renamed"})
    assert answer.status_code == 403
    obj.refresh_from_db()
    assert getattr(obj, "name", "fraud") != "renamed"


@pytest.mark.parametrize("add, change, delete, row", PAGES)
def test_an_admin_adds_and_changes_but_deletes_nothing(client, admin_user, add, change,
                                                       delete, row):
    obj = row()
    client.force_login(admin_user)
    assert client.get(add).status_code == 200
    assert client.get(change.format(pk=obj.pk)).status_code == 200
    assert client.post(delete.format(pk=obj.pk), {"post": "yes"}).status_code == 403
    assert type(obj).objects.filter(pk=obj.pk).exists()
