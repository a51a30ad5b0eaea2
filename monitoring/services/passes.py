"""Monitoring passes: each served version's traffic (predictions.traffic.window), its figures
(monitoring.statistics) against the version's reference profile, judged by every rule in one
transaction, which opens, updates or resolves the alerts."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.accounts import system_user
from core.errors import scrub_paths
from governance import profiles
from governance.models import ReferenceProfile, Rollout, RolloutStatus
from monitoring import statistics
from monitoring.models import (
    ACTIVE_ALERT,
    NOT_FROM_TRAFFIC,
    Alert,
    AlertMetric,
    AlertRule,
    MonitoringRun,
    RunStatusMonitoring,
)
from monitoring.services.alert_rules import FAMILY, PARTS, PRODUCTION, effective_rules
from monitoring.services.alerts import Measure, alert_close, alert_open, alert_title
from predictions import traffic
from registry.models import ModelVersion, RegisteredModel

logger = logging.getLogger(__name__)
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
            rule__in=list(keep)).exclude(rule__metric__in=NOT_FROM_TRAFFIC):
        alert_close(alert, actor=system_user(), reason=reason)


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
                alert_open(rule, model, worst, evidence, now)
            else:
                active.count += 1
                active.last_seen, active.value, active.evidence = now, worst.value, evidence
                active.title = alert_title(rule, worst)[:300]
                active.clear_runs = 0
                active.save(update_fields=["count", "last_seen", "value", "evidence", "title",
                                           "clear_runs"])
        elif active is not None and any(m.value is not None for _, m in judged):
            # A pass with enough data and no breach; a pass with no data is no evidence.
            active.clear_runs += 1
            if active.clear_runs >= rule.resolve_after_runs:
                alert_close(active, actor=system_user(),
                             reason=f"clear for {active.clear_runs} passes in a row")
            else:
                active.save(update_fields=["clear_runs"])
    return firing
