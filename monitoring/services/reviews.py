"""Review-overdue alerts: a production version past its review date (its `review_due_at`,
set from the policy's `review_interval_days` when it is deployed and after each review) has
one active alert, opened by the hourly sweep through the ordinary alert lifecycle (audit
event, e-mail and webhook deliveries). A recorded review (compliance.services) resolves it; so
does the sweep once no production version of the model is overdue (it left production, or its
date moved). Monitoring passes leave these alerts alone (monitoring.models.NOT_FROM_TRAFFIC).
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core import audit
from core.accounts import system_user
from monitoring.models import ACTIVE_ALERT, Alert, AlertMetric
from monitoring.services.alert_rules import PRODUCTION, effective_rules
from monitoring.services.alerts import _deliveries_create, alert_close
from registry.models import ModelVersion, RegisteredModel

logger = logging.getLogger(__name__)
DAY_SECONDS = 86_400


def _title(version: ModelVersion, days: float) -> str:
    return (f"Review of {version.model.name} {version.version} overdue since "
            f"{timezone.localtime(version.review_due_at):%Y-%m-%d} ({days:.0f} days)")[:300]


def review_overdue_sweep(*, now=None) -> list[str]:
    """Every model with a production version past its review date gets (or keeps) one active
    review-overdue alert; every other model's is resolved. Safe to run again: an active alert
    is updated, never doubled."""
    now = now or timezone.now()
    overdue = ModelVersion.objects.filter(stage=PRODUCTION, review_due_at__lte=now)
    alerting = Alert.objects.filter(ACTIVE_ALERT, rule__metric=AlertMetric.REVIEW_OVERDUE)
    model_ids = (RegisteredModel.objects.filter(
        Q(pk__in=overdue.values("model_id")) | Q(pk__in=alerting.values("model_id")))
        .order_by("name").values_list("pk", flat=True))
    return [outcome for model_id in model_ids
            if (outcome := review_alert_sync(model_id=model_id, now=now))]


def review_alert_sync(*, model_id: int, now=None) -> str:
    """Bring one model's review-overdue alert in line with its production version's date."""
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        model = RegisteredModel.objects.select_for_update().select_related("owner").get(
            pk=model_id)
        active = Alert.objects.select_for_update(of=("self",)).filter(
            ACTIVE_ALERT, model=model, rule__metric=AlertMetric.REVIEW_OVERDUE).first()
        version = ModelVersion.objects.select_related("model").filter(
            model=model, stage=PRODUCTION, review_due_at__lte=now).first()
        rule = next((r for r in effective_rules(model)
                     if r.metric == AlertMetric.REVIEW_OVERDUE), None)
        days = ((now - version.review_due_at).total_seconds() / DAY_SECONDS
                if version is not None else None)
        if version is None or rule is None or days <= rule.threshold:
            if active is None:
                return ""
            alert_close(active, actor=system_user(),
                        reason="no production version of the model is past its review date"
                        if rule is not None else "the review-overdue rule is switched off")
            return f"{model.name}: review alert #{active.pk} resolved"
        evidence = {"version": version.version, "review_due_at": version.review_due_at.isoformat(),
                    "days_overdue": round(days, 1)}
        title = _title(version, days)
        if active is None:
            alert = Alert.objects.create(
                rule=rule, model=model, severity=rule.severity, title=title,
                value=round(days, 1), threshold=rule.threshold, evidence=evidence,
                first_seen=now, last_seen=now)
            audit.record(action="alert.opened", actor=system_user(), subject=alert,
                         model_name=model.name, reason=title,
                         after={"status": "open", "rule": str(rule), "value": alert.value,
                                "severity": alert.severity, "version": version.version})
            _deliveries_create(alert, "opened")
            return f"{model.name}: review alert #{alert.pk} opened"
        active.count += 1
        active.last_seen, active.value, active.evidence, active.title = (
            now, round(days, 1), evidence, title)
        active.save(update_fields=["count", "last_seen", "value", "evidence", "title"])
        return f"{model.name}: review alert #{active.pk} still open"


def review_alert_resolve(*, model: RegisteredModel, actor, reason: str) -> Alert | None:
    """Inside the transaction that records a review: resolve the model's active
    review-overdue alert, if it has one, as `actor` (the reviewer)."""
    active = Alert.objects.select_for_update(of=("self",)).select_related("model").filter(
        ACTIVE_ALERT, model=model, rule__metric=AlertMetric.REVIEW_OVERDUE).first()
    if active is not None:
        alert_close(active, actor=actor, reason=reason)
    return active
