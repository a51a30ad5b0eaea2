"""Who may record a review of a production version, stated once (the service enforces it, the
admin shows its button by it)."""

from __future__ import annotations

from core import roles
from registry import access


def review_refusal(actor, version) -> str | None:
    """An approver or admin of the model's team who did not register the version (four eyes,
    as for its approval)."""
    if not roles.has_role(actor, roles.APPROVE_ROLES):
        return "Reviews are recorded by approvers and admins."
    if not access.may_act(actor, version.model):
        return (f"{version.model.name} belongs to the team {version.model.team.name}; only "
                "its members and admins may review its versions.")
    if version.created_by_id == actor.pk:
        return "You registered this version; another approver reviews it."
    return None
