"""Canary and shadow rollouts: start one (four eyes), move its share, end it."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from core import audit, roles
from core.errors import ApplicationError, Conflict
from governance import rules
from governance.models import (
    Rollout,
    RolloutMode,
    RolloutStatus,
    RunStatus,
)
from governance.rules import PRODUCTION, STAGING
from governance.selectors import latest_validation
from governance.services import common
from registry import access
from registry.models import ModelVersion, RegisteredModel

logger = logging.getLogger(__name__)


def _check_steps(steps) -> list[int]:
    if (not isinstance(steps, list) or not steps
            or not all(isinstance(p, int) and not isinstance(p, bool) for p in steps)
            or any(p < 1 or p > 100 for p in steps) or steps != sorted(set(steps))):
        raise ApplicationError("increasing whole percentages between 1 and 100, e.g. "
                               "[10, 25, 50, 100]", field="steps")
    return steps


def rollout_start(*, version: ModelVersion, mode: str, actor, steps=None,
                  reason: str = "") -> Rollout:
    if mode not in RolloutMode.values:
        raise ApplicationError(f"must be one of {', '.join(RolloutMode.values)}", field="mode")
    version = ModelVersion.objects.select_related("model").get(pk=version.pk)
    refusal = rules.rollout_refusal(actor, version)
    if refusal:
        raise audit.denied(actor=actor, subject=version, attempted=f"rollout.{mode}",
                           message=refusal)
    access.require_action(actor, version.model, "do this", subject=version,
                          attempted=f"rollout.{mode}")
    steps = _check_steps(steps if steps is not None else [10, 25, 50, 100])
    with transaction.atomic(durable=True):
        # Checked under the locks a deployment takes too: the candidate cannot move between
        # the check and the rollout's creation.
        version = common.lock_for_change(version)
        if version.stage != STAGING:
            raise Conflict(f"{version} is in {version.stage}; a rollout candidate comes from "
                           "staging", code="invalid_candidate")
        latest = latest_validation(version)
        if latest is None or latest.status != RunStatus.PASSED:
            raise Conflict(f"{version} has not passed validation", code="not_validated")
        if not ModelVersion.objects.filter(model_id=version.model_id,
                                           stage=PRODUCTION).exists():
            raise Conflict(f"{version.model.name} has no production version to share "
                           "traffic with", code="no_production")
        if Rollout.objects.filter(model_id=version.model_id,
                                  status=RolloutStatus.ACTIVE).exists():
            raise Conflict(f"{version.model.name} already has an active rollout",
                           code="rollout_active")
        rollout = Rollout.objects.create(
            model=version.model, candidate=version, mode=mode, steps=steps, step=0,
            percent=steps[0] if mode == RolloutMode.CANARY else 0, started_by=actor,
            reason=reason)
        audit.record(action="rollout.started", actor=actor, subject=rollout,
                     model_name=version.model.name, reason=reason,
                     after={"candidate": version.version, "mode": mode,
                            "percent": rollout.percent, "steps": steps})
        common.serving_changed()
    return rollout


def _active_rollout(model: RegisteredModel) -> Rollout:
    RegisteredModel.objects.select_for_update().get(pk=model.pk)  # see lock_for_change
    rollout = (Rollout.objects.select_for_update(of=("self",))
               .select_related("candidate", "model")
               .filter(model=model, status=RolloutStatus.ACTIVE).first())
    if rollout is None:
        raise Conflict(f"{model.name} has no active rollout", code="no_rollout")
    return rollout


def rollout_advance(*, model: RegisteredModel, actor, percent: int | None = None) -> Rollout:
    """Move a canary to its next step (or to `percent`)."""
    active = (Rollout.objects.select_related("candidate").filter(
        model=model, status=RolloutStatus.ACTIVE).first())
    refusal = rules.rollout_refusal(actor, active.candidate) if active else None
    if refusal:
        raise audit.denied(actor=actor, subject=model, attempted="rollout.advance",
                           message=refusal)
    access.require_action(actor, model, "do this", subject=model, attempted="rollout.advance")
    with transaction.atomic(durable=True):
        rollout = _active_rollout(model)
        if rollout.mode != RolloutMode.CANARY:
            raise Conflict("a shadow rollout has no traffic share to change",
                           code="not_a_canary")
        before = rollout.percent
        if percent is None:
            # The next step is the first above the current share (it may have been set by hand).
            above = [i for i, share in enumerate(rollout.steps) if share > rollout.percent]
            if not above:
                raise Conflict(f"the canary is at its last step ({before}%): promote the "
                               "candidate or abort", code="last_step")
            rollout.step = above[0]
            rollout.percent = rollout.steps[rollout.step]
        else:
            if isinstance(percent, bool) or not isinstance(percent, int) or not 0 < percent <= 100:
                raise ApplicationError("a whole percentage from 1 to 100", field="percent")
            rollout.percent = percent
            rollout.step = max(0, sum(1 for share in rollout.steps if share <= percent) - 1)
        rollout.save(update_fields=["step", "percent", "updated_at"])
        audit.record(action="rollout.advanced", actor=actor, subject=rollout,
                     model_name=model.name, before={"percent": before},
                     after={"percent": rollout.percent})
        common.serving_changed()
    return rollout


def rollout_abort(*, model: RegisteredModel, actor, reason: str) -> Rollout:
    if not roles.has_role(actor, rules.ROLLOUT_END_ROLES):
        raise audit.denied(actor=actor, subject=model, attempted="rollout.abort",
                           message="Your role cannot end a rollout.")
    access.require_action(actor, model, "do this", subject=model,
                          attempted="rollout.abort")
    if not reason.strip():
        raise ApplicationError("say why the rollout ends", field="reason")
    with transaction.atomic(durable=True):
        rollout = _active_rollout(model)
        rollout_close(rollout, RolloutStatus.ABORTED, actor, reason)
        common.serving_changed()
    return rollout


def rollout_close(rollout: Rollout, status: str, actor, reason: str) -> None:
    rollout.status = status
    rollout.ended_at = timezone.now()
    rollout.save(update_fields=["status", "ended_at", "updated_at"])
    audit.record(action=f"rollout.{status}", actor=actor, subject=rollout,
                 model_name=rollout.model.name, reason=reason,
                 before={"status": "active", "percent": rollout.percent},
                 after={"status": status})
