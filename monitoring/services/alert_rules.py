"""Alert rules: the project's defaults, the rules in force for a model, and saving one (with
its audit event). Who may edit them is monitoring/rules.py."""

from __future__ import annotations

import logging
import math

from django.db import IntegrityError, transaction
from django.db.models import F, Q

from core import audit
from core.errors import ApplicationError, Conflict
from core.limits import MAX_INT, MAX_SMALLINT
from monitoring import rules
from monitoring.models import (
    AlertMetric,
    AlertRule,
    Severity,
)
from predictions import traffic
from registry.models import RegisteredModel, Stage

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
    # The threshold is in days past the review date (0: as soon as it passes).
    dict(metric=AlertMetric.REVIEW_OVERDUE, statistic="", threshold=0.0,
         severity=Severity.WARNING, window_minutes=60, min_rows=1),
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
