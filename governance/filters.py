import django_filters

from core.filters import DateTimeFilter
from core.models import AuditEvent
from governance.models import (
    Alert,
    AlertMetric,
    AlertRule,
    AlertStatus,
    ApprovalRequest,
    Deployment,
    DeploymentStatus,
    RequestStatus,
    Severity,
)
from registry.models import Stage


class ApprovalRequestFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=RequestStatus.choices)
    model = django_filters.CharFilter(field_name="version__model__name")
    to_stage = django_filters.ChoiceFilter(choices=Stage.choices)
    requested_by = django_filters.CharFilter(field_name="requested_by__username")

    class Meta:
        model = ApprovalRequest
        fields = ["status", "model", "to_stage", "requested_by"]


class DeploymentFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=DeploymentStatus.choices)
    model = django_filters.CharFilter(field_name="model__name")
    to_stage = django_filters.ChoiceFilter(choices=Stage.choices)

    class Meta:
        model = Deployment
        fields = ["status", "model", "to_stage"]


class AuditEventFilter(django_filters.FilterSet):
    model = django_filters.CharFilter(field_name="model_name")
    actor = django_filters.CharFilter(field_name="actor_name")
    action = django_filters.CharFilter(method="filter_action",
                                       help_text="An action, or a prefix ending in '.' "
                                       "(e.g. `deployment.`).")
    since = DateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = DateTimeFilter(field_name="occurred_at", lookup_expr="lt")
    request_id = django_filters.CharFilter()

    class Meta:
        model = AuditEvent
        fields = ["model", "actor", "action", "since", "until", "request_id"]

    def filter_action(self, queryset, name, value):
        if value.endswith("."):
            return queryset.filter(action__startswith=value)
        return queryset.filter(action=value)


class AlertFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=AlertStatus.choices)
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices)
    model = django_filters.CharFilter(field_name="model__name")
    metric = django_filters.ChoiceFilter(field_name="rule__metric", choices=AlertMetric.choices)

    class Meta:
        model = Alert
        fields = ["status", "severity", "model", "metric"]


class AlertRuleFilter(django_filters.FilterSet):
    model = django_filters.CharFilter(field_name="model__name",
                                      help_text="A model's own rules; `default` for the "
                                      "project defaults.", method="filter_model")
    metric = django_filters.ChoiceFilter(choices=AlertMetric.choices)

    class Meta:
        model = AlertRule
        fields = ["model", "metric"]

    def filter_model(self, queryset, name, value):
        if value == "default":
            return queryset.filter(model__isnull=True)
        return queryset.filter(model__name=value)
