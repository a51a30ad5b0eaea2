"""The first admin account: a random password, printed once, never stored."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from core import roles


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
