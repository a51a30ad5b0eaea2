"""Who may do what in a version's lifecycle, stated once.

The transition table, and the rules for asking for a move, deciding on a request (four
eyes), and starting or steering a rollout. The services enforce them (and audit a refusal),
the admin uses them to show or hide a button and say why, the notifications to choose whom
to ask. Each `*_refusal` function answers None when the actor may, else the reason in words.
Teams are one more rule for all of them: registry.access.
"""

from __future__ import annotations

from dataclasses import dataclass

from core import roles
from registry import access
from registry.models import Stage

EXPERIMENT, STAGING, PRODUCTION, ARCHIVED = (
    Stage.EXPERIMENT, Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED,
)


@dataclass(frozen=True)
class Move:
    kind: str
    roles: frozenset[str]
    needs_reason: bool = False
    needs_validation: bool = False


TRANSITIONS: dict[tuple[str, str], Move] = {
    (EXPERIMENT, STAGING): Move("promotion", roles.REGISTER_ROLES),
    (STAGING, PRODUCTION): Move("promotion", roles.REGISTER_ROLES, needs_validation=True),
    (PRODUCTION, ARCHIVED): Move(
        "retirement", frozenset({roles.APPROVER, roles.ADMIN}), needs_reason=True
    ),
    (ARCHIVED, PRODUCTION): Move(
        "rollback", frozenset({roles.DATA_SCIENTIST, roles.APPROVER, roles.ADMIN}),
        needs_reason=True, needs_validation=True,
    ),
    (EXPERIMENT, ARCHIVED): Move("archive", roles.ADMIN_ROLES, needs_reason=True),
    (STAGING, ARCHIVED): Move("archive", roles.ADMIN_ROLES, needs_reason=True),
}

# A rollout candidate is loaded into the web processes (it answers or shadows real traffic),
# so starting one is a four-eyes decision in either mode: an approver who is not its author.
ROLLOUT_ROLES = roles.APPROVE_ROLES
# Ending a rollout only takes traffic away from the candidate: its author may too.
ROLLOUT_END_ROLES = roles.REGISTER_ROLES | roles.APPROVE_ROLES


def allowed_moves(from_stage: str) -> str:
    moves = [f"{to} ({', '.join(sorted(move.roles))})"
             for (source, to), move in TRANSITIONS.items() if source == from_stage]
    return f"from {from_stage}: " + ("; ".join(moves) if moves else "none")


def move_refusal(actor, move: Move, from_stage: str, to_stage: str, *,
                 forced: bool = False) -> str | None:
    """Who may ask for a move (an admin's forced move: admins only)."""
    needed = roles.ADMIN_ROLES if forced else move.roles
    if not roles.has_role(actor, needed):
        return f"Moving {from_stage} → {to_stage} needs the role {' or '.join(sorted(needed))}."
    return None


def decision_refusal(actor, request) -> str | None:
    """Who may approve or reject a request: an approver (or admin) of the model's team who is
    neither the requester nor the version's author."""
    if not roles.has_role(actor, roles.APPROVE_ROLES):
        return "Only approvers and admins decide."
    if not access.may_act(actor, request.version.model):
        return (f"{request.version.model.name} belongs to the team "
                f"{request.version.model.team.name}; its own approvers decide.")
    if actor.pk == request.requested_by_id:
        return "Four eyes: you asked for this move, so someone else must decide."
    if actor.pk == request.version.created_by_id:
        return "Four eyes: you registered this version, so someone else must decide."
    return None


def already_decided(person, request) -> bool:
    """One decision per person per request."""
    return request.decisions.filter(approver=person).exists()


def rollout_refusal(actor, candidate) -> str | None:
    """Who may start a rollout of a candidate, or change its share of traffic."""
    if not roles.has_role(actor, ROLLOUT_ROLES):
        return f"A rollout needs the role {' or '.join(sorted(ROLLOUT_ROLES))}."
    if actor.pk == candidate.created_by_id:
        return ("Four eyes: you registered this version, so someone else must give it real "
                "traffic.")
    return None
