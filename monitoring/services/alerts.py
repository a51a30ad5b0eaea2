"""Alerts: opened and closed by passes and the integrity sweep, acknowledged and resolved by
people; each change queues its deliveries."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core import audit
from core.accounts import system_user
from core.errors import ApplicationError, Conflict
from core.queue import enqueue_on_commit
from governance.services import serving_changed
from monitoring import rules
from monitoring.models import (
    ACTIVE_ALERT,
    SEVERITY_ORDER,
    Alert,
    AlertDelivery,
    AlertMetric,
    AlertRule,
    AlertStatus,
    Webhook,
)
from monitoring.services.alert_rules import effective_rules
from registry.models import ModelVersion, RegisteredModel

logger = logging.getLogger(__name__)


@dataclass
class Measure:
    value: float | None  # None: not judged (no data, too few rows, nothing to compare)
    evidence: dict


def alert_title(rule: AlertRule, worst: Measure) -> str:
    if rule.metric == AlertMetric.FEATURE_DRIFT:
        names = ", ".join(sorted(worst.evidence["features"])) or "a feature"
        return f"Feature drift in {names} ({rule.statistic} {worst.value:.3g} > {rule.threshold:g})"
    if rule.metric == AlertMetric.PREDICTION_DRIFT:
        return f"Prediction drift ({rule.statistic} {worst.value:.3g} > {rule.threshold:g})"
    if rule.metric == AlertMetric.PERFORMANCE_DROP:
        e = worst.evidence
        return (f"Live {e['metric']} {e['live']:.3g} vs {e['registered']:.3g} registered "
                f"(worse by {worst.value:.3g} > {rule.threshold:g})")
    if rule.metric == AlertMetric.LATENCY_P99:
        return f"p99 latency {worst.value:.0f} ms > {rule.threshold:g} ms"
    return f"Error rate {worst.value:.1%} > {rule.threshold:.1%}"


def alert_open(rule, model, worst: Measure, evidence: dict, now) -> Alert:
    alert = Alert.objects.create(
        rule=rule, model=model, severity=rule.severity, title=alert_title(rule, worst)[:300],
        value=worst.value, threshold=rule.threshold, evidence=evidence, first_seen=now,
        last_seen=now)
    audit.record(action="alert.opened", actor=system_user(), subject=alert,
                 model_name=model.name, reason=alert.title,
                 after={"status": "open", "rule": str(rule), "value": worst.value,
                        "severity": alert.severity})
    _deliveries_create(alert, "opened")
    return alert


def alert_close(alert: Alert, *, actor, reason: str) -> None:
    before = alert.status
    alert.status = AlertStatus.RESOLVED
    alert.resolved_by = actor
    alert.resolved_at = timezone.now()
    alert.resolution = reason[:300]
    alert.save(update_fields=["status", "resolved_by", "resolved_at", "resolution",
                              "clear_runs"])
    audit.record(action="alert.resolved", actor=actor, subject=alert,
                 model_name=alert.model.name, reason=reason,
                 before={"status": before}, after={"status": "resolved"})
    _deliveries_create(alert, "resolved")


def alert_acknowledge(*, alert: Alert, actor, comment: str = "") -> Alert:
    """Someone is on it: the alert stays active (and updated) but stops asking for a person."""
    refusal = rules.alert_action_refusal(actor, alert)
    if refusal:
        raise audit.denied(actor=actor, subject=alert, attempted="alert.acknowledge", message=refusal)
    with transaction.atomic(durable=True):
        alert = Alert.objects.select_for_update(of=("self",)).select_related("model").get(
            pk=alert.pk)
        if alert.status != AlertStatus.OPEN:
            raise Conflict(f"alert #{alert.pk} is {alert.status}; only an open alert is "
                           "acknowledged", code="alert_not_open")
        alert.status = AlertStatus.ACKNOWLEDGED
        alert.acknowledged_by, alert.acknowledged_at = actor, timezone.now()
        alert.save(update_fields=["status", "acknowledged_by", "acknowledged_at"])
        audit.record(action="alert.acknowledged", actor=actor, subject=alert,
                     model_name=alert.model.name, reason=comment,
                     before={"status": "open"}, after={"status": "acknowledged"})
    return alert


def alert_resolve(*, alert: Alert, actor, comment: str) -> Alert:
    refusal = rules.alert_action_refusal(actor, alert)
    if refusal:
        raise audit.denied(actor=actor, subject=alert, attempted="alert.resolve", message=refusal)
    if not comment.strip():
        raise ApplicationError("say what was done about it", field="comment")
    with transaction.atomic(durable=True):
        alert = Alert.objects.select_for_update(of=("self",)).select_related("model").get(
            pk=alert.pk)
        if alert.status == AlertStatus.RESOLVED:
            raise Conflict(f"alert #{alert.pk} is already resolved", code="alert_resolved")
        alert_close(alert, actor=actor, reason=comment)
    return alert


def _deliveries_create(alert: Alert, event: str) -> None:
    """Inside the alert's transaction: one delivery per recipient, sent after commit."""
    targets = []
    owner_email = alert.model.owner.email
    if owner_email:
        targets.append(("email", None, owner_email))
    rank = SEVERITY_ORDER[alert.severity]
    for hook in Webhook.objects.filter(Q(model__isnull=True) | Q(model=alert.model),
                                       enabled=True):
        if SEVERITY_ORDER[hook.min_severity] <= rank:
            targets.append(("webhook", hook, hook.url))
    for channel, hook, target in targets:
        delivery = AlertDelivery.objects.create(alert=alert, event=event, channel=channel,
                                                webhook=hook, target=target[:500],
                                                next_attempt_at=timezone.now())
        enqueue_on_commit("monitoring.delivery_attempt", delivery.pk)



# --- artifact integrity -----------------------------------------------------------------------


def integrity_alert_sync(*, version_id: int) -> Alert | None:
    """Bring the model's integrity alert in line with its versions' flags (registry sets
    them): a flagged version opens (or updates) a critical alert naming the file and both
    hashes; once no version of the model is flagged, the alert resolves. Web processes
    notice at once (the serving generation) and stop serving a flagged version."""
    version = ModelVersion.objects.select_related("model").get(pk=version_id)
    model = version.model
    with transaction.atomic(durable=True):
        RegisteredModel.objects.select_for_update().get(pk=model.pk)
        rule = next((r for r in effective_rules(model) if r.metric == AlertMetric.INTEGRITY),
                    None)
        active = Alert.objects.select_for_update().filter(
            ACTIVE_ALERT, model=model, rule__metric=AlertMetric.INTEGRITY).first()
        flagged = list(ModelVersion.objects.filter(model=model,
                                                   integrity_failed_at__isnull=False))
        serving_changed()
        if not flagged:
            if active is not None:
                alert_close(active, actor=system_user(),
                             reason="every file matches its registered sha256 again")
            return active
        if rule is None:  # switched off for this model
            return None
        now = timezone.now()
        evidence = {"versions": {v.version: v.integrity_problem for v in flagged}}
        worst = flagged[0]
        problem = worst.integrity_problem
        state = ("is missing" if problem.get("missing") else
                 f"has sha256 {problem.get('actual_sha256')}, not the registered "
                 f"{problem.get('expected_sha256')}")
        title = f"{problem.get('file') or 'a file'} of {worst} {state}"[:300]
        if active is None:
            alert = Alert.objects.create(
                rule=rule, model=model, severity=rule.severity, title=title, value=len(flagged),
                threshold=rule.threshold, evidence=evidence, first_seen=now, last_seen=now)
            audit.record(action="alert.opened", actor=system_user(), subject=alert,
                         model_name=model.name, reason=title,
                         after={"status": "open", "rule": str(rule), "value": len(flagged),
                                "severity": alert.severity})
            _deliveries_create(alert, "opened")
            return alert
        active.count += 1
        active.last_seen, active.value, active.evidence, active.title = (
            now, len(flagged), evidence, title)
        active.save(update_fields=["count", "last_seen", "value", "evidence", "title"])
        return active
