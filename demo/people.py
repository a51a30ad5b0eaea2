"""The demo's people. Passwords are random and printed once, never stored."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from core import roles

DEMO_PEOPLE = {
    # username: (first name, last name, role, staff)
    "dana": ("Dana", "Scientist", roles.DATA_SCIENTIST, False),
    "april": ("April", "Approver", roles.APPROVER, True),
    "vic": ("Vic", "Viewer", roles.VIEWER, False),
    # The compliance officer: a viewer (reads every team's models) who uses the admin.
    "cora": ("Cora", "Compliance", roles.VIEWER, True),
    # A service account: it logs in with an API token (create_api_token), never a password.
    "loans-service": ("Loans", "Service", roles.SERVICE, False),
}


def _password() -> str:
    return secrets.token_urlsafe(12)


def ensure_demo_people(log=print) -> dict:
    """The demo's data scientist, approver and viewer; new ones get a printed password."""
    roles.ensure_groups()
    User = get_user_model()
    people = {}
    for username, (first, last, role, staff) in DEMO_PEOPLE.items():
        user, created = User.objects.get_or_create(
            username=username,
            defaults={"first_name": first, "last_name": last, "is_staff": staff,
                      "email": f"{username}@library.example"},
        )
        if created and role == roles.SERVICE:
            user.set_unusable_password()
            user.save(update_fields=["password"])
            log(f"  created {role} account {username!r} (it calls the prediction API with an "
                "API token)")
        elif created:
            password = _password()
            user.set_password(password)
            user.save(update_fields=["password"])
            log(f"  created {role} {username!r} with password {password}")
        user.groups.add(Group.objects.get(name=role))
        people[username] = user
    return people
