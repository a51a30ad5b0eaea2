"""Accounts the project itself needs: the system actor of automatic changes, and the first
admin (a random password, printed once, never stored)."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from core import roles

SYSTEM = "system"


def system_user():
    """Who acts when nothing human does (a monitoring pass, a recovery): an inactive account
    that a migration creates (core/0002)."""
    return get_user_model().objects.get(username=SYSTEM)


def ensure_admin(username: str = "admin", log=print) -> None:
    User = get_user_model()
    roles.ensure_groups()
    if User.objects.filter(username=username).exists():
        log(f"The admin account {username!r} exists; its password was printed when it was "
            f"created (reset it with: python manage.py changepassword {username}).")
        return
    password = secrets.token_urlsafe(12)
    user = User.objects.create_superuser(username=username, email=f"{username}@localhost",
                                         password=password)
    user.groups.add(Group.objects.get(name=roles.ADMIN))
    log(f"Created the admin account {username!r} with password: {password}")
