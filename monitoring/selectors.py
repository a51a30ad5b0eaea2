"""Named reads of monitoring: alerts and rules a person may see, a model's passes."""

from __future__ import annotations

from django.db.models import Case, Count, IntegerField, Max, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce

from governance.models import Deployment, DeploymentStatus
from monitoring.models import ACTIVE_ALERT, SEVERITY_ORDER, Alert, AlertRule, MonitoringRun
from registry import access
from registry.models import ModelVersion, Stage


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


def active_alerts(*, user):
    """The open and acknowledged alerts of the models `user` sees, the most severe first."""
    return alert_list(user=user).filter(ACTIVE_ALERT).order_by("-severity_rank", "-last_seen")


def active_alert_counts(*, user) -> dict[str, int]:
    """{severity: number of active alerts} for every severity, the most severe first."""
    counts = dict(alert_list(user=user).filter(ACTIVE_ALERT).order_by()
                  .values_list("severity").annotate(n=Count("pk")))
    return {severity: counts.get(severity, 0)
            for severity in sorted(SEVERITY_ORDER, key=SEVERITY_ORDER.get, reverse=True)}


def production_overview(*, user):
    """The production version of each model `user` sees, with its monitoring state (the last
    pass over it, the model's active alerts and their worst severity) and the last completed
    change of the model's production (a promotion, a rollback): one query, whatever the
    number of models."""
    last_pass = MonitoringRun.objects.filter(version=OuterRef("pk")).order_by("-created_at",
                                                                            "-id")
    active = Alert.objects.filter(ACTIVE_ALERT, model=OuterRef("model")).order_by().values(
        "model")
    deployed = Deployment.objects.filter(
        Q(to_stage=Stage.PRODUCTION) | Q(from_stage=Stage.PRODUCTION), model=OuterRef("model"),
        status=DeploymentStatus.COMPLETED).order_by("-completed_at", "-id")
    return (ModelVersion.objects.filter(stage=Stage.PRODUCTION,
                                        model__in=access.visible_models(user))
            .select_related("model")
            .annotate(
                last_pass_status=Subquery(last_pass.values("status")[:1]),
                last_pass_at=Subquery(last_pass.values("created_at")[:1]),
                active_alerts=Coalesce(Subquery(active.annotate(n=Count("pk")).values("n")),
                                       0),
                worst_severity_rank=Subquery(active.annotate(
                    worst=Max(severity_rank())).values("worst")),
                last_deployment_id=Subquery(deployed.values("pk")[:1]),
                last_deployment_kind=Subquery(deployed.values("kind")[:1]),
                last_deployment_at=Subquery(deployed.values("completed_at")[:1]),
            ).order_by("model__name"))
