"""Roles are Django groups. Each role also carries the model permissions the admin needs."""

from __future__ import annotations

VIEWER = "viewer"
DATA_SCIENTIST = "data_scientist"
APPROVER = "approver"
ADMIN = "admin"
# A service account calls the prediction API and reports ground truth; it reads nothing else.
SERVICE = "service"
ALL_ROLES = (VIEWER, DATA_SCIENTIST, APPROVER, ADMIN, SERVICE)

READ_ROLES = frozenset({VIEWER, DATA_SCIENTIST, APPROVER, ADMIN})
REGISTER_ROLES = frozenset({DATA_SCIENTIST, ADMIN})
APPROVE_ROLES = frozenset({APPROVER, ADMIN})
ADMIN_ROLES = frozenset({ADMIN})
PREDICT_ROLES = frozenset({SERVICE, VIEWER, DATA_SCIENTIST, APPROVER, ADMIN})
# Versions other than production (a candidate, an archived one) are for people assessing them.
PREDICT_ANY_VERSION_ROLES = frozenset({DATA_SCIENTIST, APPROVER, ADMIN})
FEEDBACK_ROLES = frozenset({SERVICE, DATA_SCIENTIST, ADMIN})

# role -> {app_label: permission codename prefixes}: what each role sees in the admin.
# (The API checks roles itself; these only open admin pages. Approvers and admins also need
# is_staff to log into the admin.)
_ADMIN_PERMISSIONS = {
    # Viewers are the compliance officers (TEAM_READ_ALL_ROLES): they read the prediction
    # logs too, which a prediction's trace shows.
    VIEWER: {"core": ("view",), "registry": ("view",), "governance": ("view",),
             "monitoring": ("view",), "predictions": ("view",), "compliance": ("view",)},
    DATA_SCIENTIST: {"core": ("view",), "registry": ("view",), "governance": ("view",),
                     "monitoring": ("view",)},
    APPROVER: {"core": ("view",), "registry": ("view",), "governance": ("view",),
               "monitoring": ("view",), "predictions": ("view",), "compliance": ("view",)},
    ADMIN: {
        "core": ("view",),
        "registry": ("view", "add", "change"),
        "governance": ("view", "add", "change"),
        "monitoring": ("view", "add", "change"),
        "predictions": ("view", "add", "change"),
        "compliance": ("view", "add", "change"),
        "auth": ("view", "change"),
    },
}


def user_roles(user) -> frozenset[str]:
    """The user's roles, cached on the user object for the request. Superusers hold all."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached = getattr(user, "_role_cache", None)
    if cached is None:
        if user.is_superuser:
            cached = frozenset(ALL_ROLES)
        else:
            cached = frozenset(
                user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True)
            )
        user._role_cache = cached
    return cached


def remember(user, group_names) -> None:
    """Cache the roles of `user` from its group names, read with the user (one query at
    authentication, registry.tokens) instead of a query of their own."""
    user._role_cache = (frozenset(ALL_ROLES) if user.is_superuser
                        else frozenset(group_names) & frozenset(ALL_ROLES))


def has_role(user, roles) -> bool:
    return bool(user_roles(user) & frozenset(roles))


def ensure_groups(**_kwargs) -> None:
    """Create the role groups and grant their admin permissions (idempotent, post_migrate)."""
    from django.contrib.auth.models import Group, Permission

    for role in ALL_ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        perms = []
        for app_label, prefixes in _ADMIN_PERMISSIONS.get(role, {}).items():
            for perm in Permission.objects.filter(content_type__app_label=app_label):
                if perm.codename.split("_", 1)[0] in prefixes:
                    perms.append(perm)
        group.permissions.add(*perms)
