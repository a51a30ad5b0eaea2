"""Named reads of monitoring: alerts and rules a person may see, a model's passes."""

from __future__ import annotations

from django.db.models import Case, IntegerField, Q, Value, When

from monitoring.models import SEVERITY_ORDER, Alert, AlertRule, MonitoringRun
from registry import access


def severity_rank():
    """critical 2, warning 1, info 0: the severity names themselves sort alphabetically."""
    return Case(*(When(severity=name, then=Value(order)) for name, order in
                  SEVERITY_ORDER.items()), default=Value(0), output_field=IntegerField())


def alert_list(*, user):
    """The alerts of the models `user` sees, with `severity_rank` to order by importance."""
    rank = severity_rank()
    return Alert.objects.filter(model__in=access.visible_models(user)).select_related(
        "model__team", "rule__model", "acknowledged_by", "resolved_by"
    ).annotate(severity_rank=rank)


def alert_rules(*, user):
    """The project defaults and the rules of the models `user` sees."""
    return AlertRule.objects.filter(
        Q(model__isnull=True) | Q(model__in=access.visible_models(user))
    ).select_related("model__team")


def monitoring_runs(model):
    return MonitoringRun.objects.filter(model=model).select_related("version").order_by(
        "-created_at", "-id")
