"""Monitoring: passes over each served version's traffic, the rules that judge them, the alerts
they open, update and resolve, and the notifications that tell people.

A pass reads a version's traffic (predictions.traffic.window), computes its figures
(monitoring.statistics) against the version's reference profile (governance), and judges
every rule in one transaction. An alert is one per rule and model; its deliveries (e-mail,
webhooks) are rows sent after commit, retried with backoff, claimed by compare-and-set.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from core import audit, roles
from core.accounts import system_user
from core.errors import ApplicationError, Conflict, scrub_paths
from core.limits import MAX_INT, MAX_SMALLINT
from core.queue import enqueue_on_commit
from governance import profiles
from governance.models import ReferenceProfile, Rollout, RolloutStatus
from governance.services import serving_changed
from monitoring import notifications, rules, statistics, webhook_targets
from monitoring.models import (
    ACTIVE_ALERT,
    SEVERITY_ORDER,
    Alert,
    AlertDelivery,
    AlertMetric,
    AlertRule,
    AlertStatus,
    DeliveryStatus,
    MonitoringRun,
    RunStatusMonitoring,
    Severity,
    Webhook,
)
from predictions import traffic
from registry.models import ModelVersion, RegisteredModel, Stage

logger = logging.getLogger(__name__)
PRODUCTION = Stage.PRODUCTION


# Which figures each rule reads, and which parts of the traffic those figures need.
FAMILY = {
    AlertMetric.FEATURE_DRIFT: "drift", AlertMetric.PREDICTION_DRIFT: "drift",
    AlertMetric.PERFORMANCE_DROP: "performance", AlertMetric.LATENCY_P99: "latency",
    AlertMetric.ERROR_RATE: "errors",
}
PARTS = {"drift": {traffic.INPUTS, traffic.OUTPUTS}, "performance": {traffic.FEEDBACK},
         "latency": {traffic.LATENCY}, "errors": {traffic.ERRORS}}
DRIFT_STATISTICS = ("psi", "ks", "js")
PERFORMANCE_METRICS = ("accuracy", "precision", "recall", "f1_score", "auc_roc", "mae", "rmse")
# The project's default rules (created on migrate, and before a pass if missing).
DEFAULT_RULES = [
    dict(metric=AlertMetric.FEATURE_DRIFT, statistic="psi", threshold=0.2,
         severity=Severity.WARNING, window_minutes=60, min_rows=200),
    dict(metric=AlertMetric.PREDICTION_DRIFT, statistic="psi", threshold=0.2,
         severity=Severity.WARNING, window_minutes=60, min_rows=200),
    dict(metric=AlertMetric.PERFORMANCE_DROP, statistic="accuracy", threshold=0.05,
         severity=Severity.CRITICAL, window_minutes=1440, min_rows=50),
    dict(metric=AlertMetric.LATENCY_P99, statistic="", threshold=200.0,
         severity=Severity.WARNING, window_minutes=60, min_rows=20),
    dict(metric=AlertMetric.ERROR_RATE, statistic="", threshold=0.01,
         severity=Severity.CRITICAL, window_minutes=60, min_rows=20),
    dict(metric=AlertMetric.INTEGRITY, statistic="", threshold=0.0,
         severity=Severity.CRITICAL, window_minutes=1, min_rows=1),
]
RULE_FIELDS = ["model", "metric", "statistic", "threshold", "severity", "window_minutes",
               "min_rows", "resolve_after_runs", "enabled"]


def ensure_default_rules(**_kwargs) -> None:
    """The project's default rules (migrate runs it, after monitoring's migrations)."""
    for spec in DEFAULT_RULES:
        AlertRule.objects.get_or_create(model=None, metric=spec["metric"],
                                        statistic=spec["statistic"], defaults=spec)


def effective_rules(model: RegisteredModel) -> list[AlertRule]:
    """The model's own rules, and the project defaults it has not replaced or switched off."""
    merged = {}
    for rule in AlertRule.objects.filter(Q(model__isnull=True) | Q(model=model)).order_by(
            F("model").asc(nulls_first=True), "id"):
        merged[(rule.metric, rule.statistic)] = rule  # the model's own comes last and wins
    return [rule for rule in merged.values() if rule.enabled]


def check_rule(values: dict) -> None:
    metric, statistic = values.get("metric"), values.get("statistic", "")
    if metric not in AlertMetric.values:
        raise ApplicationError(f"must be one of {', '.join(AlertMetric.values)}", field="metric")
    if metric in (AlertMetric.FEATURE_DRIFT, AlertMetric.PREDICTION_DRIFT):
        if statistic not in DRIFT_STATISTICS:
            raise ApplicationError(f"a drift rule reads one of {', '.join(DRIFT_STATISTICS)}",
                                   field="statistic")
    elif metric == AlertMetric.PERFORMANCE_DROP:
        if statistic not in PERFORMANCE_METRICS:
            raise ApplicationError(f"one of {', '.join(PERFORMANCE_METRICS)}",
                                   field="statistic")
    elif statistic:
        raise ApplicationError(f"a {metric} rule has no statistic", field="statistic")
    threshold = values.get("threshold")
    if (isinstance(threshold, bool) or not isinstance(threshold, int | float)
            or not math.isfinite(threshold) or threshold < 0):
        raise ApplicationError("a number, 0 or more", field="threshold")
    if values.get("severity") not in Severity.values:
        raise ApplicationError(f"one of {', '.join(Severity.values)}", field="severity")
    for key, high in (("window_minutes", MAX_INT), ("min_rows", MAX_INT),
                      ("resolve_after_runs", MAX_SMALLINT)):
        value = values.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
            raise ApplicationError(f"a whole number from 1 to {high}", field=key)


def _rule_snapshot(rule: AlertRule) -> dict:
    return {key: (rule.model.name if key == "model" and rule.model_id else
                  None if key == "model" else getattr(rule, key)) for key in RULE_FIELDS}


def alert_rule_save(*, actor, rule: AlertRule | None = None, **changes) -> AlertRule:
    """Create a rule (rule=None) or change one. Project defaults are the admins'; a model's
    rules its owner's, the approvers' and the admins'."""
    model = changes.get("model", rule.model if rule else None)
    refusal = rules.rule_edit_refusal(actor, model)
    if refusal:
        raise audit.denied(actor=actor, subject=rule or model, attempted="alert_rule.change",
                           message=refusal)
    unknown = set(changes) - set(RULE_FIELDS)
    if unknown:
        raise ApplicationError("not a rule field", field=sorted(unknown)[0])
    if rule is not None and "model" in changes and changes["model"] != rule.model:
        raise ApplicationError("a rule stays with its model; make a new one", field="model")
    with transaction.atomic(durable=True):
        if rule is None:
            values = {"statistic": "", "severity": Severity.WARNING, "window_minutes": 60,
                      "min_rows": 100, "resolve_after_runs": 3, "enabled": True, **changes}
            check_rule(values)
            before = None
            rule = AlertRule(**values)
        else:
            rule = AlertRule.objects.select_for_update().get(pk=rule.pk)
            before = _rule_snapshot(rule)
            for key, value in changes.items():
                setattr(rule, key, value)
            check_rule({k: getattr(rule, k) for k in RULE_FIELDS})
        try:
            with transaction.atomic():
                rule.save()
        except IntegrityError:
            raise Conflict("there is already such a rule for this scope; change it instead",
                           field="metric") from None
        changed_before, changed_after = audit.changes(before, _rule_snapshot(rule))
        audit.record(action="alert_rule.created" if before is None else "alert_rule.changed",
                     actor=actor, subject=rule,
                     model_name=rule.model.name if rule.model_id else "",
                     before=changed_before, after=changed_after)
    return rule


def webhook_save(*, actor, webhook: Webhook | None = None, **changes) -> Webhook:
    if not roles.has_role(actor, roles.ADMIN_ROLES):
        raise audit.denied(actor=actor, subject=webhook, attempted="webhook.change", message="Only admins manage webhooks.")
    fields = ["name", "url", "secret", "model", "min_severity", "enabled"]
    unknown = set(changes) - set(fields)
    if unknown:
        raise ApplicationError("not a webhook field", field=sorted(unknown)[0])
    if "url" in changes or webhook is None:  # an old URL refused now can still be switched off
        webhook_targets.url_check(str(changes.get("url", "")))
    with transaction.atomic(durable=True):
        created = webhook is None
        webhook = webhook or Webhook()
        before = None if created else {f: str(getattr(webhook, f)) for f in fields
                                       if f != "secret"}
        for key, value in changes.items():
            setattr(webhook, key, value)
        webhook.save()
        after = {f: str(getattr(webhook, f)) for f in fields if f != "secret"}
        audit.record(action="webhook.created" if created else "webhook.changed", actor=actor,
                     subject=webhook, before=before,
                     after={**after, "secret_changed": "secret" in changes})
    return webhook


def models_to_monitor() -> list[int]:
    """Models with a production version or an active rollout, and those with an active
    alert (which a pass resolves once they serve nothing)."""
    serving = ModelVersion.objects.filter(stage=PRODUCTION).values("model_id")
    rolling = Rollout.objects.filter(status=RolloutStatus.ACTIVE).values("model_id")
    alerting = Alert.objects.filter(ACTIVE_ALERT).values("model_id")
    return list(RegisteredModel.objects.filter(
        Q(pk__in=serving) | Q(pk__in=rolling) | Q(pk__in=alerting))
        .order_by("name").values_list("pk", flat=True))


def monitored_versions(model: RegisteredModel) -> list[tuple[ModelVersion, str]]:
    """The production version, and a canary or shadow candidate, with how each serves."""
    out = [(v, "production") for v in ModelVersion.objects.filter(
        model=model, stage=PRODUCTION).select_related("model")]
    rollout = Rollout.objects.select_related("candidate__model").filter(
        model=model, status=RolloutStatus.ACTIVE).first()
    if rollout is not None:
        out.append((rollout.candidate, rollout.mode))
    return out


def _figures(version: ModelVersion, profile, families: set[str], since, until) -> dict:
    # Errors are one cheap count, and the volume line of every window shows them.
    parts = set().union(traffic.ERRORS, *(PARTS[family] for family in families))
    seen = traffic.window(version, since, until, parts=parts,
                          max_rows=settings.MONITORING_MAX_ROWS)
    out = {"volume": {"requests": seen.requests, "rows": seen.rows, "failed": seen.failed,
                      "rejected": seen.rejected}}
    if "drift" in families:
        if profile is None:
            out["drift"] = {"skipped": "no reference sample: add one to the version"}
        elif not seen.logged_rows:
            out["drift"] = {"skipped": "no data", "n": 0}
        else:
            features = {}
            for name, reference in profile.features.items():
                if name in seen.columns:
                    features[name] = statistics.drift(reference, seen.columns[name])
            predicted = (statistics.drift(profile.predictions, seen.predictions)
                         if profile.predictions and seen.predictions is not None else None)
            out["drift"] = {"n": seen.logged_rows, "truncated": seen.truncated,
                            "features": features, "predictions": predicted}
    if "performance" in families:
        labelled = seen.labelled
        if labelled is None:
            out["performance"] = {"skipped": "no feedback", "n": 0}
        else:
            if profiles.categorical_predictions(version.model.task_type):
                live = statistics.classification_performance(
                    labelled.actual, labelled.predicted, labelled.probabilities)
            else:
                live = statistics.regression_performance(labelled.actual, labelled.predicted)
            live["registered"] = {k: version.metrics[k] for k in live
                                  if k in version.metrics}
            out["performance"] = live
    if "latency" in families:
        out["latency"] = (statistics.latency_figures(seen.latency_ms)
                          if seen.latency_ms is not None and seen.latency_ms.size
                          else {"skipped": "no data", "n": 0})
    if "errors" in families:
        attempts = seen.requests + seen.failed
        out["errors"] = {"n": attempts, "failed": seen.failed, "rejected": seen.rejected,
                         "error_rate": seen.failed / attempts if attempts else None,
                         "rejected_rate": (seen.rejected / (attempts + seen.rejected)
                                           if attempts + seen.rejected else None)}
    return out


@dataclass
class Measure:
    value: float | None  # None: not judged (no data, too few rows, nothing to compare)
    evidence: dict


def _measure(rule: AlertRule, version: ModelVersion, figures: dict) -> Measure:
    family = figures.get(FAMILY[rule.metric]) or {}
    n = family.get("n") or 0
    if family.get("skipped") or n < rule.min_rows:
        return Measure(None, {"not_judged": family.get("skipped") or
                              f"{n} rows, fewer than the rule's {rule.min_rows}"})
    if rule.metric == AlertMetric.FEATURE_DRIFT:
        values = {name: statistics.statistic_value(f, rule.statistic)
                  for name, f in family["features"].items() if f}
        values = {name: v for name, v in values.items() if v is not None}
        if not values:
            return Measure(None, {"not_judged": f"no feature has a {rule.statistic}"})
        drifting = {name: family["features"][name] for name, v in values.items()
                    if v > rule.threshold}
        return Measure(max(values.values()), {"n": n, "features": drifting})
    if rule.metric == AlertMetric.PREDICTION_DRIFT:
        figures_ = family.get("predictions")
        value = statistics.statistic_value(figures_, rule.statistic) if figures_ else None
        if value is None:
            return Measure(None, {"not_judged": "no prediction distribution to compare with"})
        return Measure(value, {"n": n, "predictions": figures_})
    if rule.metric == AlertMetric.PERFORMANCE_DROP:
        live, registered = family.get(rule.statistic), version.metrics.get(rule.statistic)
        if live is None or not isinstance(registered, int | float):
            return Measure(None, {"not_judged": f"no registered or live {rule.statistic}"})
        drop = statistics.performance_drop(rule.statistic, live, registered)
        return Measure(drop, {"n": n, "metric": rule.statistic, "live": live,
                              "registered": registered})
    if rule.metric == AlertMetric.LATENCY_P99:
        return Measure(family["p99_ms"], {"n": n, "p50_ms": family["p50_ms"],
                                          "p99_ms": family["p99_ms"]})
    return Measure(family["error_rate"], {"n": n, "failed": family["failed"],
                                          "rejected": family["rejected"]})


def _alert_title(rule: AlertRule, worst: Measure) -> str:
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


def monitoring_pass(*, model: RegisteredModel, now=None) -> list[MonitoringRun]:
    """One monitoring pass over a model: figures for each served version, one run each,
    then every rule judged (alerts opened, updated or resolved) in one transaction."""
    now = now or timezone.now()
    # (Integrity alerts are opened by the files' checks, not judged from traffic.)
    rules = [rule for rule in effective_rules(model) if rule.metric in FAMILY]
    windows: dict[int, set[str]] = {settings.MONITORING_WINDOW_MINUTES: set(PARTS)}
    for rule in rules:
        windows.setdefault(rule.window_minutes, set()).add(FAMILY[rule.metric])
    measured, broken = [], []
    for version, route in monitored_versions(model):
        started = time.perf_counter()
        try:
            profile = ReferenceProfile.objects.filter(version=version).first()
            figures = {str(minutes): _figures(version, profile, families,
                                              now - timedelta(minutes=minutes), now)
                       for minutes, families in sorted(windows.items())}
        except Exception as exc:  # one version's odd data must not stop the others' pass
            logger.exception("monitoring of %s failed", version)
            broken.append((version, route, scrub_paths(f"{type(exc).__name__}: {exc}")))
            continue
        measured.append((version, route, figures, (time.perf_counter() - started) * 1000))
    with transaction.atomic(durable=True):
        RegisteredModel.objects.select_for_update().get(pk=model.pk)  # one pass at a time
        firing = _judge(model, rules, measured, now)
        runs = [MonitoringRun.objects.create(
            model=model, version=version, route=route, status=RunStatusMonitoring.FAILED,
            summary=f"the pass failed: {error}"[:500], created_at=now)
            for version, route, error in broken]
        if not measured and not broken:
            _retire_alerts(model, "the model no longer serves any version")
        for version, route, figures, duration in measured:
            volume = figures[str(settings.MONITORING_WINDOW_MINUTES)]["volume"]
            quiet = not any(f["volume"]["requests"] or f["volume"]["failed"]
                            or f["volume"]["rejected"] for f in figures.values())
            status = (RunStatusMonitoring.NO_DATA if quiet else
                      RunStatusMonitoring.ALERTING if version.pk in firing else
                      RunStatusMonitoring.OK)
            summary = ("no traffic in the window" if quiet else
                       f"{volume['requests']} requests; alerting: "
                       f"{', '.join(sorted(firing[version.pk]))}" if version.pk in firing else
                       f"{volume['requests']} requests; no rule holds")
            runs.append(MonitoringRun.objects.create(
                model=model, version=version, route=route, status=status, figures=figures,
                summary=summary[:500], requests=volume["requests"],
                duration_ms=round(duration, 1), created_at=now))
    return runs


def _retire_alerts(model, reason: str, keep=()) -> None:
    """Resolve the model's active alerts whose rule is not (or no longer) judged for it."""
    for alert in Alert.objects.select_for_update().filter(ACTIVE_ALERT, model=model).exclude(
            rule__in=list(keep)).exclude(rule__metric=AlertMetric.INTEGRITY):
        _alert_close(alert, actor=system_user(), reason=reason)


def _judge(model, rules, measured, now) -> dict[int, set[str]]:
    """Open, update or resolve each rule's alert. Returns {version id: {rule names}} that
    hold, for the runs' status."""
    firing: dict[int, set[str]] = {}
    if measured:  # a rule switched off or replaced since its alert opened: nothing judges it
        _retire_alerts(model, "its rule no longer applies to this model", keep=rules)
    for rule in rules:
        window = str(rule.window_minutes)
        judged = [(version, _measure(rule, version, figures[window]))
                  for version, _route, figures, _ in measured]
        held = [(v, m) for v, m in judged if m.value is not None and m.value > rule.threshold]
        active = Alert.objects.select_for_update().filter(ACTIVE_ALERT, rule=rule,
                                                          model=model).first()
        if held:
            for version, _ in held:
                firing.setdefault(version.pk, set()).add(rule.get_metric_display())
            worst_version, worst = max(held, key=lambda item: item[1].value)
            evidence = {"window_minutes": rule.window_minutes, "threshold": rule.threshold,
                        "statistic": rule.statistic, "version": worst_version.version,
                        "versions": {v.version: m.evidence for v, m in held}}
            if active is None:
                _alert_open(rule, model, worst, evidence, now)
            else:
                active.count += 1
                active.last_seen, active.value, active.evidence = now, worst.value, evidence
                active.title = _alert_title(rule, worst)[:300]
                active.clear_runs = 0
                active.save(update_fields=["count", "last_seen", "value", "evidence", "title",
                                           "clear_runs"])
        elif active is not None and any(m.value is not None for _, m in judged):
            # A pass with enough data and no breach; a pass with no data is no evidence.
            active.clear_runs += 1
            if active.clear_runs >= rule.resolve_after_runs:
                _alert_close(active, actor=system_user(),
                             reason=f"clear for {active.clear_runs} passes in a row")
            else:
                active.save(update_fields=["clear_runs"])
    return firing


def _alert_open(rule, model, worst: Measure, evidence: dict, now) -> Alert:
    alert = Alert.objects.create(
        rule=rule, model=model, severity=rule.severity, title=_alert_title(rule, worst)[:300],
        value=worst.value, threshold=rule.threshold, evidence=evidence, first_seen=now,
        last_seen=now)
    audit.record(action="alert.opened", actor=system_user(), subject=alert,
                 model_name=model.name, reason=alert.title,
                 after={"status": "open", "rule": str(rule), "value": worst.value,
                        "severity": alert.severity})
    _deliveries_create(alert, "opened")
    return alert


def _alert_close(alert: Alert, *, actor, reason: str) -> None:
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
        _alert_close(alert, actor=actor, reason=comment)
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


def delivery_attempt(delivery_id: int) -> AlertDelivery | None:
    """Send one due delivery once. Claimed by a compare-and-set, so two workers (or a retry
    and the periodic sweep) never send it twice at once; a sent one is never sent again."""
    now = timezone.now()
    claimed = AlertDelivery.objects.filter(
        pk=delivery_id, status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING],
        next_attempt_at__lte=now,
    ).update(status=DeliveryStatus.SENDING, attempts=F("attempts") + 1, next_attempt_at=now)
    if not claimed:
        return None
    delivery = AlertDelivery.objects.select_related("alert__model", "alert__rule",
                                                    "webhook").get(pk=delivery_id)
    try:
        response_status = notifications.alert_send(delivery)
        error = ""
    except notifications.DeliveryError as exc:
        response_status, error = exc.status, str(exc)
    except Exception as exc:  # a bad address or URL: retried, then failed, never stuck
        logger.exception("delivery %s raised", delivery_id)
        response_status, error = None, f"{type(exc).__name__}: {exc}"
    with transaction.atomic():
        if not error:
            delivery.status, delivery.sent_at = DeliveryStatus.SENT, timezone.now()
        elif delivery.attempts > len(settings.ALERT_DELIVERY_BACKOFF_SECONDS):
            delivery.status = DeliveryStatus.FAILED
        else:
            delivery.status = DeliveryStatus.RETRYING
            delivery.next_attempt_at = timezone.now() + timedelta(
                seconds=settings.ALERT_DELIVERY_BACKOFF_SECONDS[delivery.attempts - 1])
        delivery.last_error, delivery.response_status = scrub_paths(error)[:500], response_status
        delivery.save(update_fields=["status", "sent_at", "next_attempt_at", "last_error",
                                     "response_status"])
        if delivery.status == DeliveryStatus.FAILED:
            audit.record(action="alert.delivery_failed", actor=system_user(),
                         subject=delivery.alert, model_name=delivery.alert.model.name,
                         reason=error, after={"channel": delivery.channel,
                                              "target": delivery.target,
                                              "attempts": delivery.attempts})
    return delivery


def deliveries_due(*, stuck_after_seconds: int = 300) -> list[int]:
    """Deliveries to try now: due retries, and sends a dead worker left `sending`."""
    now = timezone.now()
    AlertDelivery.objects.filter(
        status=DeliveryStatus.SENDING,
        next_attempt_at__lte=now - timedelta(seconds=stuck_after_seconds),
    ).update(status=DeliveryStatus.RETRYING)
    return list(AlertDelivery.objects.filter(
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING], next_attempt_at__lte=now,
    ).values_list("pk", flat=True))





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
                _alert_close(active, actor=system_user(),
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


