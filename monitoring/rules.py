"""Who may act on alerts and change alert rules, stated once (the services enforce it, the
admin shows or hides its buttons by it). Teams are one more rule for both: registry.access."""

from __future__ import annotations

from core import roles
from registry import access

# Besides a model's owner, for its own alerts and rules.
ALERT_ROLES = roles.APPROVE_ROLES


def _owns(actor, model) -> bool:
    return roles.has_role(actor, roles.REGISTER_ROLES) and model.owner_id == actor.pk


def alert_action_refusal(actor, alert) -> str | None:
    """Who may acknowledge or resolve an alert: approvers, admins and the model's owner, of
    the model's team."""
    if not access.may_act(actor, alert.model):
        return f"{alert.model.name} belongs to another team."
    if not (roles.has_role(actor, ALERT_ROLES) or _owns(actor, alert.model)):
        return "Alerts are acknowledged and resolved by the model's owner, approvers and admins."
    return None


def rule_edit_refusal(actor, model) -> str | None:
    """Who may add or change a rule: the project defaults are the admins'; a model's rules its
    owner's, its team's approvers' and the admins'."""
    if model is None:
        if not roles.has_role(actor, roles.ADMIN_ROLES):
            return "Project default rules are the admins'."
        return None
    if not access.may_act(actor, model):
        return f"{model.name} belongs to another team."
    if not (roles.has_role(actor, ALERT_ROLES) or _owns(actor, model)):
        return "A model's rules are its owner's, the approvers' and the admins'."
    return None
