"""The monitoring REST API: alerts, alert rules, a model's monitoring at a glance."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core import roles
from core.errors import ApplicationError
from core.permissions import AuditedDoorMixin
from monitoring import selectors, services
from monitoring.filters import AlertFilter, AlertRuleFilter
from monitoring.serializers import (
    AlertActionInputSerializer,
    AlertRuleInputSerializer,
    AlertRuleSerializer,
    AlertSerializer,
    MonitoringRunSerializer,
)
from registry import selectors as registry_selectors


class MonitoringApiMixin(AuditedDoorMixin):
    # Who gets past the door; each service then checks the particular action.
    write_roles = roles.READ_ROLES



class AlertListApi(MonitoringApiMixin, generics.ListAPIView):
    """Alerts, newest activity first: `status`, `severity`, `model`, `metric`."""

    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    # `severity_rank`: critical first with `-severity_rank`; the names sort alphabetically.
    ordering_fields = ["last_seen", "first_seen", "severity_rank", "id"]
    ordering = ["-last_seen"]

    def get_queryset(self):
        return selectors.alert_list(user=self.request.user)


class AlertDetailApi(MonitoringApiMixin, generics.RetrieveAPIView):
    serializer_class = AlertSerializer

    def get_queryset(self):
        return selectors.alert_list(user=self.request.user)


class AlertActionApi(MonitoringApiMixin, APIView):
    """Acknowledge (someone is on it) or resolve (with a comment saying what was done)."""

    action = ""

    @extend_schema(request=AlertActionInputSerializer, responses=AlertSerializer)
    def post(self, request, pk):
        alert = generics.get_object_or_404(selectors.alert_list(user=request.user), pk=pk)
        payload = AlertActionInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        comment = payload.validated_data["comment"]
        if self.action == "acknowledge":
            services.alert_acknowledge(alert=alert, actor=request.user, comment=comment)
        else:
            services.alert_resolve(alert=alert, actor=request.user, comment=comment)
        return Response(AlertSerializer(selectors.alert_list(user=request.user).get(pk=pk)).data)


def _rule_changes(request, partial: bool) -> dict:
    payload = AlertRuleInputSerializer(data=request.data, partial=partial)
    payload.is_valid(raise_exception=True)
    changes = dict(payload.validated_data)
    if "model" in changes:
        changes["model"] = (registry_selectors.model_get(changes["model"], user=request.user)
                            if changes["model"] else None)
    return changes


class AlertRuleListApi(MonitoringApiMixin, generics.ListAPIView):
    """Alert rules: the project defaults (`model` null) and each model's own, which replace
    the default with the same metric and statistic. POST adds a rule."""

    serializer_class = AlertRuleSerializer
    filterset_class = AlertRuleFilter
    ordering_fields = ["id", "metric"]
    ordering = ["id"]

    def get_queryset(self):
        return selectors.alert_rules(user=self.request.user)

    @extend_schema(request=AlertRuleInputSerializer, responses={201: AlertRuleSerializer})
    def post(self, request):
        changes = _rule_changes(request, partial=False)
        if "metric" not in changes or "threshold" not in changes:
            raise ApplicationError("a rule needs a metric and a threshold",
                                   field="metric" if "metric" not in changes else "threshold")
        rule = services.alert_rule_save(actor=request.user, **changes)
        return Response(AlertRuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class AlertRuleDetailApi(MonitoringApiMixin, APIView):
    @extend_schema(responses=AlertRuleSerializer)
    def get(self, request, pk):
        return Response(AlertRuleSerializer(
            generics.get_object_or_404(selectors.alert_rules(user=request.user), pk=pk)).data)

    @extend_schema(request=AlertRuleInputSerializer, responses=AlertRuleSerializer)
    def patch(self, request, pk):
        rule = generics.get_object_or_404(selectors.alert_rules(user=request.user), pk=pk)
        changes = _rule_changes(request, partial=True)
        rule = services.alert_rule_save(actor=request.user, rule=rule, **changes)
        return Response(AlertRuleSerializer(rule).data)


class ModelMonitoringApi(MonitoringApiMixin, APIView):
    """A model's monitoring at a glance: its active alerts and its recent passes (newest
    first; `?limit=` up to 500, default 50) with their figures, for trends."""

    @extend_schema(parameters=[OpenApiParameter("limit", int)], responses=OpenApiTypes.OBJECT)
    def get(self, request, name):
        model = registry_selectors.model_get(name, user=request.user)
        try:
            limit = min(500, max(1, int(request.query_params.get("limit", 50))))
        except ValueError:
            raise ApplicationError("a whole number", field="limit") from None
        runs = selectors.monitoring_runs(model)[:limit]
        alerts = selectors.alert_list(user=request.user).filter(model=model, status__in=["open", "acknowledged"])
        return Response({
            "model": model.name,
            "window_minutes": settings.MONITORING_WINDOW_MINUTES,
            "alerts": AlertSerializer(alerts, many=True).data,
            "runs": MonitoringRunSerializer(runs, many=True).data,
        })
