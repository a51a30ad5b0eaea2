"""Compliance's writes: the periodic review of a production version."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from compliance import rules
from core import audit
from core.errors import ApplicationError, Conflict
from governance import policies
from governance.models import Review
from monitoring.services import review_alert_resolve
from registry import services as registry_services
from registry.models import ModelVersion, RegisteredModel, Stage

MAX_COMMENT = 10_000


def version_review_record(*, version: ModelVersion, actor, comment: str) -> Review:
    """Record a periodic review of a production version and set its next review date (the
    effective policy's `review_interval_days` from now; none when the policy asks for no
    periodic review). The reviewer is an approver or admin of the model's team other than
    whoever registered the version (four eyes, as for its approval). An open review-overdue
    alert of the model is resolved by the same transaction."""
    model = version.model
    refusal = rules.review_refusal(actor, version)
    if refusal:
        raise audit.denied(actor=actor, subject=version, attempted="version.review",
                           message=refusal)
    comment = (comment or "").strip()
    if not comment:
        raise ApplicationError("say what the review found", field="comment")
    if len(comment) > MAX_COMMENT:
        raise ApplicationError(f"at most {MAX_COMMENT} characters", field="comment")
    with transaction.atomic(durable=True):
        # The model's lock orders this with deployments (which move production) and sweeps.
        RegisteredModel.objects.select_for_update().get(pk=model.pk)
        version = ModelVersion.objects.select_for_update(of=("self",)).select_related(
            "model").get(pk=version.pk)
        if version.stage != Stage.PRODUCTION:
            raise Conflict(f"{version} is in {version.stage}; only a production version is "
                           "reviewed", code="not_in_production")
        now = timezone.now()
        before = version.review_due_at
        next_due = policies.review_due(policies.effective_policy(version.model), now)
        review = Review.objects.create(version=version, reviewer=actor, comment=comment,
                                       next_review_at=next_due)
        registry_services.version_review_due_set(version=version, review_due_at=next_due)
        audit.record(action="version.reviewed", actor=actor, subject=version, reason=comment,
                     before={"review_due_at": before.isoformat() if before else None},
                     after={"review": review.pk,
                            "review_due_at": next_due.isoformat() if next_due else None})
        review_alert_resolve(model=version.model, actor=actor,
                             reason=f"reviewed by {actor.get_username()}: {comment}"[:300])
    return review
